/**
 * RFC 9112 framing cases over real loopback sockets, on every runtime driver: bytes in, status
 * lines and bodies out. Requests go to an HttpServer from a raw socket; responses come from a raw
 * upstream socket to an HttpClient, alone and relayed through an HttpServer (a proxy's path).
 * Assertions are on wire bytes and on what a caller sees, never on decoder internals, so these
 * cases outlive a rewrite of the HTTP core. Every server timeout here is a minute long: a test
 * that expects a prompt answer cannot pass by waiting for a timeout (each test gives up after 5 s).
 */
import * as net from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fixedBody, readText } from '../src/body.js';
import { HttpClient } from '../src/client.js';
import type { HttpConnectionContext } from '../src/context.js';
import { createRequest, createResponse } from '../src/message.js';
import type { HttpHandler } from '../src/server.js';
import { availableDrivers, connectTo, type InProcess, raw, startServer, statuses } from './server-harness.js';

const drivers = await availableDrivers();
const LONG = { idle: 60_000, head: 60_000, body: 60_000, write: 60_000 };
const FAST = { timeout: 5000 };

/** A raw client connection driven step by step (write, wait for output, see the close). */
class Step {
  private readonly socket: net.Socket;
  private text = '';
  private waiters: (() => void)[] = [];
  closed = false;

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.on('data', (b) => {
      this.text += b.toString('latin1');
      this.wake();
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  write(s: string): void {
    this.socket.write(Buffer.from(s, 'latin1'));
  }

  /** Waits until the output matches `re` (fails if the connection closes first); returns the output. */
  async until(re: RegExp): Promise<string> {
    while (!re.test(this.text)) {
      if (this.closed) throw new Error(`closed before ${re}; got ${JSON.stringify(this.text)}`);
      await new Promise<void>((r) => this.waiters.push(r));
    }
    return this.text;
  }

  /** Waits for the server to close the connection; returns everything it sent. */
  async end(): Promise<string> {
    while (!this.closed) await new Promise<void>((r) => this.waiters.push(r));
    return this.text;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

/** An upstream that answers each request head it reads with the next canned response. */
class RawUpstream {
  port = 0;
  responses: string[] = [];
  readonly requests: string[] = [];
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();

  async start(): Promise<void> {
    this.server = net.createServer((s) => {
      this.sockets.add(s);
      let buf = '';
      s.on('data', (b) => {
        buf += b.toString('latin1');
        for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
          this.requests.push(buf.slice(0, end + 4));
          buf = buf.slice(end + 4);
          const res = this.responses.shift();
          if (res !== undefined) s.write(Buffer.from(res, 'latin1'));
        }
      });
      s.on('error', () => {});
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.port = (this.server!.address() as net.AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server!.close(r));
  }
}

describe.each(drivers)('RFC 9112 requests on the %s driver', (driver) => {
  let srv: InProcess;
  beforeEach(async () => {
    srv = await startServer(driver, { timeouts: LONG });
  });
  afterEach(async () => {
    await srv.stop();
  });

  const post = (fields: string, body: string) =>
    `POST /len HTTP/1.1\r\nHost: t\r\n${fields}Connection: close\r\n\r\n${body}`;

  it('reads chunk sizes with leading zeros', FAST, async () => {
    const text = await raw(
      srv.port,
      post('Transfer-Encoding: chunked\r\n', '00000000000005\r\nhello\r\n0000000000000\r\n\r\n'),
    );
    expect(statuses(text)).toEqual([200]);
    expect(text).toMatch(/\r\n\r\n5 \d+$/);
  });

  it('answers 400 to an over-large chunk size and to endless leading zeros', FAST, async () => {
    const big = await raw(srv.port, post('Transfer-Encoding: chunked\r\n', '20000000000000\r\n'));
    expect(statuses(big)).toEqual([400]);
    // The zeros never end the line: the chunk line limit does, without waiting for more.
    const zeros = new Step(srv.port);
    zeros.write(post('Transfer-Encoding: chunked\r\n', '0'.repeat(4096)));
    expect(statuses(await zeros.end())).toEqual([400]);
  });

  it('takes HTAB as optional whitespace around Content-Length', FAST, async () => {
    const text = await raw(srv.port, post('Content-Length:\t2\t\r\n', 'ab'));
    expect(statuses(text)).toEqual([200]);
    expect(text).toMatch(/\r\n\r\n2 195$/);
    const mixed = await raw(srv.port, post('Content-Length: \t 3 \t \r\n', 'abc'));
    expect(mixed).toMatch(/\r\n\r\n3 294$/);
  });

  it('takes HTAB around Transfer-Encoding, Host and Connection', FAST, async () => {
    const te = await raw(
      srv.port,
      'POST /len HTTP/1.1\r\nHost:\tt\t\r\nTransfer-Encoding:\tchunked\t\r\nConnection:\tclose\t\r\n\r\n' +
        '2\r\nab\r\n0\r\n\r\n',
    );
    expect(statuses(te)).toEqual([200]);
    expect(te).toMatch(/\r\n\r\n2 195$/);
    // `Connection:\tclose\t` closes: the exchange above only returned because the server closed.
    // The pipelined one below is answered on the same connection, then closed the same way.
    const two = await raw(
      srv.port,
      'GET /hello HTTP/1.1\r\nHost:\tt\t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\nConnection:\tclose\t\r\n\r\n',
    );
    expect(statuses(two)).toEqual([200, 200]);
  });

  it('takes HTAB around Expect: 100-continue', FAST, async () => {
    const c = new Step(srv.port);
    try {
      c.write(
        'POST /len HTTP/1.1\r\nHost: t\r\nExpect:\t100-continue\t\r\nContent-Length: 2\r\nConnection: close\r\n\r\n',
      );
      await c.until(/^HTTP\/1\.1 100 Continue\r\n\r\n/);
      c.write('ab');
      const text = await c.end();
      expect(statuses(text)).toEqual([100, 200]);
      expect(text).toMatch(/\r\n\r\n2 195$/);
    } finally {
      c.destroy();
    }
  });

  it(
    'reads HTTP/1.2 as HTTP/1.1 (keep-alive, Host required) and answers 505 to other majors',
    FAST,
    async () => {
      const text = await raw(
        srv.port,
        'GET /hello HTTP/1.2\r\nHost: t\r\n\r\nGET /hello HTTP/1.9\r\nHost: t\r\nConnection: close\r\n\r\n',
      );
      expect(statuses(text)).toEqual([200, 200]);
      expect(text.match(/hello world/g)).toHaveLength(2);
      expect(statuses(await raw(srv.port, 'GET /hello HTTP/1.2\r\n\r\n'))).toEqual([400]);
      expect(statuses(await raw(srv.port, 'GET /hello HTTP/2.0\r\nHost: t\r\n\r\n'))).toEqual([505]);
      expect(statuses(await raw(srv.port, 'GET /hello HTTP/0.9\r\nHost: t\r\n\r\n'))).toEqual([505]);
      expect(statuses(await raw(srv.port, 'GET /hello HTTP/1.10\r\nHost: t\r\n\r\n'))).toEqual([400]);
    },
  );

  it('answers 400 and closes on a bare CR in a head without waiting for the rest', FAST, async () => {
    for (const partial of [
      'GET / HTTP/1.1\r\nHost: a\rX: y',
      'GET / HTTP/1.1\rHost: a',
      'GET /hello HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nX\r: y',
    ]) {
      const c = new Step(srv.port);
      try {
        // Never ended by the client, and the head timeout is a minute: only the bare CR ends it.
        c.write(partial);
        const text = await c.end();
        expect(statuses(text).at(-1), JSON.stringify(partial)).toBe(400);
      } finally {
        c.destroy();
      }
    }
  });

  it('answers 400 to a bare LF, as before', FAST, async () => {
    const c = new Step(srv.port);
    try {
      c.write('GET / HTTP/1.1\r\nHost: a\nX: y');
      expect(statuses(await c.end())).toEqual([400]);
    } finally {
      c.destroy();
    }
  });
});

describe.each(drivers)('RFC 9112 responses on the %s driver', (driver) => {
  const upstream = new RawUpstream();
  const clients: HttpClient[] = [];
  beforeAll(async () => {
    await upstream.start();
  });
  afterAll(async () => {
    await upstream.stop();
  });
  afterEach(async () => {
    upstream.responses = [];
    await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
  });

  async function client(): Promise<HttpClient> {
    const c = new HttpClient(await connectTo(driver, upstream.port), {
      authority: 'u',
      responseTimeout: 60_000,
      bodyTimeout: 60_000,
    });
    clients.push(c);
    return c;
  }

  /** Sends GET (or `method`) and reads the whole answer. */
  async function fetch(c: HttpClient, method = 'GET') {
    const res = await c.send(createRequest(method, '/'));
    return { status: res.status, version: res.version, body: await readText(res.body) };
  }

  it('reads Content-Length surrounded by tabs and keeps the connection', FAST, async () => {
    upstream.responses = [
      'HTTP/1.1 200 OK\r\nContent-Length:\t2\t\r\n\r\nok',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding:\tchunked\t\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
      'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext',
    ];
    const c = await client();
    expect(await fetch(c)).toMatchObject({ status: 200, body: 'ok' });
    expect(c.reusable).toBe(true);
    expect(await fetch(c)).toMatchObject({ status: 200, body: 'abc' });
    expect(c.reusable).toBe(true);
    expect(await fetch(c)).toMatchObject({ status: 200, body: 'next' });
  });

  it('reads an HTTP/1.2 status line as HTTP/1.1', FAST, async () => {
    upstream.responses = [
      'HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\nok',
      'HTTP/1.1 204 No Content\r\n\r\n',
    ];
    const c = await client();
    expect(await fetch(c)).toEqual({ status: 200, version: '1.1', body: 'ok' });
    expect(c.reusable).toBe(true);
    expect((await fetch(c)).status).toBe(204);
  });

  it('reads chunk sizes with leading zeros', FAST, async () => {
    upstream.responses = [
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00000000000005\r\nhello\r\n0000\r\n\r\n',
      'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz',
    ];
    const c = await client();
    expect((await fetch(c)).body).toBe('hello');
    expect((await fetch(c)).body).toBe('z');
  });

  it(
    'reads no body after HEAD, 204 and 304 whatever their framing fields, and 1xx before the answer',
    FAST,
    async () => {
      upstream.responses = [
        'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n',
        'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n',
        'HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n',
        'HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nend',
      ];
      const c = await client();
      expect(await fetch(c, 'HEAD')).toMatchObject({ status: 200, body: '' });
      expect(await fetch(c)).toMatchObject({ status: 204, body: '' });
      expect(await fetch(c)).toMatchObject({ status: 304, body: '' });
      expect(await fetch(c)).toMatchObject({ status: 200, body: 'end' });
      expect(c.reusable).toBe(true);
    },
  );

  it(
    'reads the final response after a 1xx that says close, and then does not reuse the connection',
    FAST,
    async () => {
      upstream.responses = [
        'HTTP/1.1 100 Continue\r\nConnection: close\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
      ];
      const c = await client();
      expect(await fetch(c)).toMatchObject({ status: 200, body: 'ok' });
      expect(c.reusable).toBe(false);
    },
  );

  it.each([
    [
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'ERR_HTTP_CONTENT_LENGTH_WITH_TRANSFER_ENCODING',
    ],
    [
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok',
      'ERR_HTTP_DUPLICATE_CONTENT_LENGTH',
    ],
    [
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!',
      'ERR_HTTP_DUPLICATE_CONTENT_LENGTH',
    ],
    ['HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok', 'ERR_HTTP_INVALID_CONTENT_LENGTH'],
    [
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n',
      'ERR_HTTP_INVALID_TRANSFER_ENCODING',
    ],
    ['HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n', 'ERR_HTTP_UNSUPPORTED_VERSION'],
    ['HTTP/1.1 200 OK\r\nX: a\rContent-Length: 0\r\n\r\n', 'ERR_HTTP_BARE_CR'],
  ])('fails %j with %s and never reuses the connection', FAST, async (response, code) => {
    upstream.responses = [response];
    const c = await client();
    await expect(fetch(c)).rejects.toMatchObject({ code });
    expect(c.reusable).toBe(false);
  });

  it(
    'reads a Transfer-Encoding without final chunked to the close, and an HTTP/1.0 one closes',
    FAST,
    async () => {
      upstream.responses = ['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nConnection: keep-alive\r\n\r\n'];
      const c = await client();
      const res = await c.send(createRequest('GET', '/'));
      expect(res.status).toBe(200);
      // Close-delimited: the body has no end until the upstream closes, so the client cannot reuse.
      expect(c.reusable).toBe(false);
      upstream.responses = [
        'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n2\r\nok\r\n0\r\n\r\n',
      ];
      const d = await client();
      expect((await fetch(d)).body).toBe('ok');
      // RFC 9112 §6.1: faulty framing in HTTP/1.0, so the connection is not reused.
      expect(d.reusable).toBe(false);
    },
  );
});

describe.each(drivers)('RFC 9112 responses relayed through an HttpServer on the %s driver', (driver) => {
  const upstream = new RawUpstream();
  let srv: InProcess;
  /** A minimal proxy: every request becomes a GET to the upstream; a failure is a 502. */
  const relay: HttpHandler<HttpConnectionContext> = {
    async call() {
      const c = new HttpClient(await connectTo(driver, upstream.port), { authority: 'u' });
      try {
        const res = await c.send(createRequest('GET', '/'));
        return createResponse(res.status, { body: fixedBody(await readText(res.body)) });
      } catch (e) {
        return createResponse(502, { body: fixedBody(String((e as { code?: string }).code)) });
      } finally {
        await c.close().catch(() => {});
      }
    },
  };
  beforeAll(async () => {
    await upstream.start();
    srv = await startServer(driver, { timeouts: LONG }, relay);
  });
  afterAll(async () => {
    await srv.stop();
    await upstream.stop();
  });

  it(
    'answers 200, not 502, for an upstream Content-Length surrounded by tabs or an HTTP/1.2 status line',
    FAST,
    async () => {
      upstream.responses = [
        'HTTP/1.1 200 OK\r\nContent-Length:\t2\t\r\n\r\nok',
        'HTTP/1.2 200 OK\r\nContent-Length: 3\r\n\r\nyes',
      ];
      const text = await raw(
        srv.port,
        'GET / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n',
      );
      expect(statuses(text)).toEqual([200, 200]);
      expect(text).toMatch(/content-length: 2\r\n(?:[^\r\n]+\r\n)*\r\nok/);
      expect(text).toMatch(/\r\n\r\nyes$/);
    },
  );

  it('answers 502 for a smuggling-shaped upstream response', FAST, async () => {
    upstream.responses = ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!'];
    const text = await raw(srv.port, 'GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
    expect(statuses(text)).toEqual([502]);
    expect(text).toMatch(/ERR_HTTP_DUPLICATE_CONTENT_LENGTH$/);
  });
});
