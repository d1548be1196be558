/**
 * A client that goes away while loch waits for the upstream's response head cancels the
 * upstream exchange, end to end through `loch run` on every available driver: an HTTP/1.1
 * client that closes its connection, an h2c client that resets its stream (RST_STREAM) or
 * closes its connection. An HTTP/1.1 upstream sees its connection closed (never pooled); an
 * HTTP/2 upstream sees its stream reset with CANCEL while the session lives on (the next
 * request uses it). The upstreams never answer the slow path, so only the cancellation can end
 * their side before loch's 60 s read timeout; each wait below is bounded well under that.
 * Counted as a 4xx answer in loch_http_requests_total (nginx logs such a request as 499).
 */
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableDrivers, freePort, type Loch, startLoch, tempDir } from './harness.js';

const drivers = availableDrivers();

/** Polls `done` until it holds; fails after `ms` (a bound, not a measurement). */
async function eventually(what: string, done: () => boolean, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!done()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** An HTTP/1.1 upstream that answers /fast and never answers anything else; it counts what it saw. */
async function h1Upstream() {
  const state = { requests: 0, closed: 0, open: 0 };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    state.open++;
    socket.on('error', () => {});
    socket.on('close', () => {
      sockets.delete(socket);
      state.open--;
      state.closed++;
    });
    let buffered = '';
    socket.on('data', (b: Buffer) => {
      buffered += b.toString('latin1');
      for (let end = buffered.indexOf('\r\n\r\n'); end >= 0; end = buffered.indexOf('\r\n\r\n')) {
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        state.requests++;
        if (head.split(' ')[1] === '/fast') socket.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfast');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    state,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** An h2c upstream that answers /fast and never answers anything else; it records stream ends. */
async function h2Upstream() {
  const state = { sessions: 0, streams: 0, cancelled: 0, sessionsClosed: 0 };
  const server = http2.createServer();
  server.on('session', (session) => {
    state.sessions++;
    session.on('close', () => state.sessionsClosed++);
  });
  server.on('stream', (stream, headers) => {
    state.streams++;
    stream.on('error', () => {});
    stream.on('close', () => {
      if (stream.rstCode === http2.constants.NGHTTP2_CANCEL) state.cancelled++;
    });
    if (headers[':path'] === '/fast') {
      stream.respond({ ':status': 200 });
      stream.end('fast');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    state,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Sends a bodiless HTTP/1.1 GET on a raw socket (left open). */
function h1Client(port: number, path: string): net.Socket {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  socket.write(`GET ${path} HTTP/1.1\r\nHost: loch.test\r\n\r\n`);
  return socket;
}

/** One h2c GET to completion: status and body. */
function h2Get(session: http2.ClientHttp2Session, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': path, ':authority': 'loch.test' });
    let status = 0;
    let body = '';
    req.on('response', (h) => {
      status = Number(h[':status']);
    });
    req.setEncoding('utf8');
    req.on('data', (d: string) => {
      body += d;
    });
    req.on('end', () => resolve({ status, body }));
    req.on('error', reject);
    req.end();
  });
}

describe.each(drivers)(
  'a client gone before the response head cancels the upstream exchange on the %s driver',
  (driver) => {
    let loch: Loch;
    let up1: Awaited<ReturnType<typeof h1Upstream>>;
    let up2: Awaited<ReturnType<typeof h2Upstream>>;
    /** Server `web` (HTTP/1.1 upstream) and `web2` (HTTP/2 upstream). */
    let port: number;
    let port2: number;
    let adminPort: number;

    beforeAll(async () => {
      up1 = await h1Upstream();
      up2 = await h2Upstream();
      port = await freePort();
      port2 = await freePort();
      adminPort = await freePort();
      loch = await startLoch(
        tempDir('loch-abandon-'),
        `
[runtime]
workers = 1

[admin]
listener = { type = "socket", value = "127.0.0.1:${adminPort}" }

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${up1.port}" }]

[servers.web2]
listener = { type = "socket", value = "127.0.0.1:${port2}" }
upstream_http_version = "http2"

[[servers.web2.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${up2.port}" }]
`,
        { LOCH_DRIVER: driver },
      );
    });
    afterAll(async () => {
      await loch?.stop();
      await up1?.close();
      await up2?.close();
    });

    it('HTTP/1.1 -> HTTP/1.1: the client closes, the upstream connection is closed', async () => {
      const { state } = up1;
      const requests = state.requests;
      const closed = state.closed;
      const client = h1Client(port, '/slow');
      await eventually('the request upstream', () => state.requests > requests);
      client.destroy();
      await eventually('the upstream connection closed', () => state.closed > closed);
      // The next request gets a connection of its own (the cancelled one was not pooled) and an answer.
      const again = h1Client(port, '/fast');
      let text = '';
      again.on('data', (b: Buffer) => {
        text += b.toString('latin1');
      });
      await eventually('the next answer', () => text.endsWith('fast'));
      again.destroy();
    });

    it('HTTP/1.1 -> HTTP/1.1: a client that half-closes after its request counts as gone (as nginx)', async () => {
      const { state } = up1;
      const requests = state.requests;
      const closed = state.closed;
      const client = h1Client(port, '/slow-half');
      await eventually('the request upstream', () => state.requests > requests);
      client.end();
      await eventually('the upstream connection closed', () => state.closed > closed);
      client.destroy();
    });

    it('h2c -> HTTP/1.1: the client resets its stream, the upstream connection is closed, the session lives on', async () => {
      const { state } = up1;
      const session = http2.connect(`http://127.0.0.1:${port}`);
      session.on('error', () => {});
      try {
        const requests = state.requests;
        const closed = state.closed;
        const req = session.request({ ':path': '/slow-h2', ':authority': 'loch.test' });
        req.on('error', () => {});
        await eventually('the request upstream', () => state.requests > requests);
        req.close(http2.constants.NGHTTP2_CANCEL);
        await eventually('the upstream connection closed', () => state.closed > closed);
        expect(await h2Get(session, '/fast')).toEqual({ status: 200, body: 'fast' });
      } finally {
        session.close();
      }
    });

    it('h2c -> HTTP/2: the client resets its stream, the upstream stream is reset with CANCEL, its session lives on', async () => {
      const { state } = up2;
      const session = http2.connect(`http://127.0.0.1:${port2}`);
      session.on('error', () => {});
      try {
        // A first answer opens the upstream session the cancelled stream will share.
        expect(await h2Get(session, '/fast')).toEqual({ status: 200, body: 'fast' });
        const sessions = state.sessions;
        const streams = state.streams;
        const cancelled = state.cancelled;
        const req = session.request({ ':path': '/slow', ':authority': 'loch.test' });
        req.on('error', () => {});
        await eventually('the stream upstream', () => state.streams > streams);
        req.close(http2.constants.NGHTTP2_CANCEL);
        await eventually('the upstream stream reset with CANCEL', () => state.cancelled > cancelled);
        expect(await h2Get(session, '/fast')).toEqual({ status: 200, body: 'fast' });
        expect(state.sessions).toBe(sessions);
        expect(state.sessionsClosed).toBe(0);
      } finally {
        session.close();
      }
    });

    it('h2c -> HTTP/2: the client closes its connection, the upstream stream is reset with CANCEL', async () => {
      const { state } = up2;
      const session = http2.connect(`http://127.0.0.1:${port2}`);
      session.on('error', () => {});
      const streams = state.streams;
      const cancelled = state.cancelled;
      const req = session.request({ ':path': '/slow-close', ':authority': 'loch.test' });
      req.on('error', () => {});
      await eventually('the stream upstream', () => state.streams > streams);
      session.destroy();
      await eventually('the upstream stream reset with CANCEL', () => state.cancelled > cancelled);
      expect(state.sessionsClosed).toBe(0);
    });

    it('HTTP/1.1 -> HTTP/2: the client closes, the upstream stream is reset with CANCEL', async () => {
      const { state } = up2;
      const streams = state.streams;
      const cancelled = state.cancelled;
      const client = h1Client(port2, '/slow-h1');
      await eventually('the stream upstream', () => state.streams > streams);
      client.destroy();
      await eventually('the upstream stream reset with CANCEL', () => state.cancelled > cancelled);
    });

    it('counts abandoned requests as 4xx answers and logs them as 499', async () => {
      const text = await new Promise<string>((resolve, reject) => {
        const s = net.connect(adminPort, '127.0.0.1');
        let out = '';
        s.on('data', (b: Buffer) => {
          out += b.toString('latin1');
        });
        s.on('end', () => resolve(out));
        s.on('error', reject);
        s.write('GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n');
      });
      const count = (server: string, code: string): number =>
        text
          .split('\n')
          .filter(
            (l) =>
              l.startsWith('loch_http_requests_total{') &&
              l.includes(`server="${server}"`) &&
              l.includes(`code="${code}"`),
          )
          .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
      // The abandoned requests above (every other answer was a 200): three per server.
      expect([count('web', '4xx'), count('web2', '4xx')]).toEqual([3, 3]);
      // The access log names them with nginx's 499 and no bytes.
      await eventually('the access log lines', () => (loch.stdout().match(/ 499 0 /g) ?? []).length === 6);
      expect(loch.stdout()).toMatch(/ GET \/slow 499 0 /);
    });
  },
);
