/**
 * HttpConnector against real peers over loopback, for every runtime driver: reuse, streaming,
 * Connection: close on either side, resets mid-response, silent peers (read vs connect
 * timeouts), refused connects, Unix upstreams, stale reused connections (retry and liveness
 * check), aborts, invalid responses. Every case checks what the caller sees and that no
 * connection or descriptor is left behind.
 */
import { createHook } from 'node:async_hooks';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createRequest,
  fixedBody,
  type HttpExchangeCancel,
  type HttpRequest,
  type HttpResponse,
  readText,
  streamBody,
} from '@loch/http';
import {
  AbortedError,
  ConnectError,
  type Endpoint,
  endpoint,
  HttpConnector,
  type HttpConnectorOptions,
  ProtocolError,
  ReadError,
  TcpConnector,
  TransportError,
  UnifiedL4Connector,
  WriteError,
} from '@loch/transports';
import { createRuntime, type Runtime } from '@loch/uring-runtime';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  blackholeListener,
  driverCases,
  eventually,
  failingWriteStreams,
  fdCount,
  fdsBackTo,
  HttpPeer,
  onRequestHeads,
  RawPeer,
} from './harness.js';

const drivers = await driverCases();

describe.each(drivers)('HttpConnector on the $name driver', ({ name, skip }) => {
  const run = skip === undefined ? it : it.skip;
  let runtime: Runtime;
  let connector: HttpConnector | undefined;
  const closers: (() => unknown)[] = [];
  let baseline = 0;

  beforeEach(async () => {
    runtime = await createRuntime({ driver: name, log: () => undefined });
    baseline = fdCount();
  });

  afterEach(async () => {
    connector?.close();
    connector = undefined;
    for (const close of closers.splice(0).reverse()) await close();
    await runtime.close();
  });

  /** A connector on this test's runtime. */
  function make(options: HttpConnectorOptions = {}): HttpConnector {
    const l4 = new UnifiedL4Connector({ runtime });
    connector = new HttpConnector(l4, options);
    return connector;
  }

  async function peer(handler: ConstructorParameters<typeof HttpPeer>[0], path?: string): Promise<HttpPeer> {
    const p = await new HttpPeer(handler).listen(path);
    closers.push(() => p.close());
    return p;
  }

  async function raw(onConnection: ConstructorParameters<typeof RawPeer>[0]): Promise<RawPeer> {
    const p = await new RawPeer(onConnection).listen();
    closers.push(() => p.close());
    return p;
  }

  /** Closes the connector and checks that nothing is active or idle and descriptors are back. */
  async function expectNoLeak(c: HttpConnector, fdBase: number): Promise<void> {
    expect(c.stats()).toMatchObject({ active: 0 });
    c.close();
    expect(c.stats()).toMatchObject({ idle: 0, active: 0 });
    expect(await fdsBackTo(fdBase)).toBeLessThanOrEqual(fdBase);
  }

  run('reuses one connection for sequential requests and counts', async () => {
    const p = await peer((req, res) => res.end(`hello ${req.url}`));
    const fds = fdCount();
    const c = make();
    const key = endpoint(`http://127.0.0.1:${p.port}`);
    for (let i = 0; i < 3; i++) {
      const res = await c.request(key, createRequest('GET', `/${i}`));
      expect(res.status).toBe(200);
      expect(await readText(res.body)).toBe(`hello /${i}`);
    }
    expect(p.connections.length).toBe(1);
    expect(c.stats()).toEqual({ idle: 1, active: 0, created: 1, reused: 2, evicted: 0, retried: 0 });
    await expectNoLeak(c, fds);
  });

  run('streams a large response body chunk by chunk and keeps the connection', async () => {
    const size = 4 * 1024 * 1024;
    const p = await peer((_req, res) => {
      res.writeHead(200, { 'content-length': size });
      const part = Buffer.alloc(64 * 1024, 7);
      let sent = 0;
      const pump = () => {
        while (sent < size) {
          sent += part.byteLength;
          if (!res.write(part)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    const fds = fdCount();
    const c = make();
    const key = endpoint(`http://127.0.0.1:${p.port}`);
    const res = await c.request(key, createRequest('GET', '/big'));
    // While the body is unread the connection is active, not idle.
    expect(c.stats()).toMatchObject({ active: 1, idle: 0 });
    let total = 0;
    let chunks = 0;
    for await (const bytes of res.body) {
      total += bytes.byteLength;
      chunks++;
    }
    expect(total).toBe(size);
    expect(chunks).toBeGreaterThan(1);
    expect(c.stats()).toMatchObject({ active: 0, idle: 1 });
    await expectNoLeak(c, fds);
  });

  run(
    'an onResponse hook that throws: the caller gets its error and the connection is let go at once',
    async () => {
      // A body that stays open: nothing but loch can end this connection.
      const p = await peer((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('x');
      });
      const fds = fdCount();
      const c = make();
      const key = endpoint(`http://127.0.0.1:${p.port}`);
      const boom = new Error('hook failed');
      const err = await c
        .request(key, createRequest('GET', '/open'), {
          onResponse: () => {
            throw boom;
          },
        })
        .catch((e: unknown) => e);
      expect(err).toBe(boom);
      // Neither pooled nor held: it was held, with no reader and no deadline, until the upstream
      // closed it.
      expect(c.stats()).toMatchObject({ active: 0, idle: 0 });
      expect(await eventually(() => p.sockets.size === 0, 20_000)).toBe(true);
      await expectNoLeak(c, fds);
    },
  );

  run('a response with Connection: close is not reused', async () => {
    const p = await peer((_req, res) => {
      res.setHeader('connection', 'close');
      res.end('bye');
    });
    const fds = fdCount();
    const c = make();
    const key = endpoint(`http://127.0.0.1:${p.port}`);
    for (let i = 0; i < 2; i++)
      expect(await readText((await c.request(key, createRequest('GET', '/'))).body)).toBe('bye');
    expect(c.stats()).toMatchObject({ idle: 0, active: 0, created: 2, reused: 0 });
    expect(p.connections.length).toBe(2);
    await expectNoLeak(c, fds);
  });

  run('a request with Connection: close is not reused', async () => {
    const p = await peer((_req, res) => res.end('ok'));
    const fds = fdCount();
    const c = make();
    const key = endpoint(`http://127.0.0.1:${p.port}`);
    const res = await c.request(key, createRequest('GET', '/', { headers: { connection: 'close' } }));
    expect(await readText(res.body)).toBe('ok');
    expect(c.stats()).toMatchObject({ idle: 0, active: 0, created: 1 });
    await expectNoLeak(c, fds);
  });

  run('a request whose second Connection line names close is not reused', async () => {
    // The client never forwards the request's own Connection fields: the peer keeps the
    // connection alive, so only the pool's own reading of every Connection line closes it.
    const p = await peer((_req, res) => res.end('ok'));
    const fds = fdCount();
    const c = make();
    const key = endpoint(`http://127.0.0.1:${p.port}`);
    const request = createRequest('GET', '/');
    request.headers.append('connection', 'keep-alive');
    request.headers.append('connection', 'Close');
    const res = await c.request(key, request);
    expect(await readText(res.body)).toBe('ok');
    expect(c.stats()).toMatchObject({ idle: 0, active: 0, created: 1 });
    const res2 = await c.request(
      key,
      createRequest('HEAD', '/', { headers: { connection: 'x-hop, close' } }),
    );
    expect(res2.status).toBe(200);
    expect(c.stats()).toMatchObject({ idle: 0, active: 0, created: 2 });
    await expectNoLeak(c, fds);
  });

  run('HEAD and 204 responses release the connection at the head', async () => {
    const p = await peer((req, res) => {
      if (req.url === '/none') {
        res.statusCode = 204;
        res.end();
      } else res.end('body for HEAD is not sent');
    });
    const fds = fdCount();
    const c = make();
    const key = endpoint(`http://127.0.0.1:${p.port}`);
    const head = await c.request(key, createRequest('HEAD', '/'));
    expect(head.status).toBe(200);
    expect(c.stats()).toMatchObject({ idle: 1, active: 0 });
    const none = await c.request(key, createRequest('GET', '/none'));
    expect(none.status).toBe(204);
    expect(c.stats()).toMatchObject({ idle: 1, active: 0, created: 1, reused: 1 });
    await expectNoLeak(c, fds);
  });

  run('HTTP/1.0 answers and close-delimited bodies are read whole and never reused', async () => {
    const p = await raw((s, index) =>
      onRequestHeads(s, () => {
        if (index === 0) s.write('HTTP/1.0 200 OK\r\ncontent-length: 4\r\n\r\nv1.0');
        else s.end('HTTP/1.1 200 OK\r\n\r\nuntil the end');
      }),
    );
    const fds = fdCount();
    const c = make();
    const key = endpoint(`http://127.0.0.1:${p.port}`);
    expect(await readText((await c.request(key, createRequest('GET', '/'))).body)).toBe('v1.0');
    expect(c.stats()).toMatchObject({ idle: 0, active: 0 });
    const res = await c.request(key, createRequest('GET', '/'));
    expect(res.body.kind).toBe('stream');
    expect(await readText(res.body)).toBe('until the end');
    expect(c.stats()).toMatchObject({ idle: 0, active: 0, created: 2, reused: 0 });
    await expectNoLeak(c, fds);
  });

  run('a body abandoned half-way closes the connection instead of reusing it', async () => {
    const p = await peer((_req, res) => {
      res.writeHead(200, { 'content-length': 1024 * 1024 });
      res.write(Buffer.alloc(64 * 1024));
      // the rest never comes
    });
    const fds = fdCount();
    const c = make();
    const key = endpoint(`http://127.0.0.1:${p.port}`);
    const res = await c.request(key, createRequest('GET', '/'));
    for await (const _ of res.body) break;
    expect(c.stats()).toMatchObject({ idle: 0, active: 0, created: 1 });
    expect(await eventually(() => p.sockets.size === 0)).toBe(true);
    await expectNoLeak(c, fds);
  });

  run('a peer that resets mid-response fails the body read with ReadError and leaks nothing', async () => {
    const p = await raw((s) =>
      onRequestHeads(s, () => {
        s.write('HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n');
        s.write(Buffer.alloc(1000, 1), () => s.resetAndDestroy());
      }),
    );
    const fds = fdCount();
    const c = make();
    const key = endpoint(`http://127.0.0.1:${p.port}`);
    const res = await c.request(key, createRequest('GET', '/'));
    expect(res.status).toBe(200);
    const error = await readText(res.body).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ReadError);
    expect((error as ReadError).code).toBe('ERR_TRANSPORT_READ_FAILED');
    expect((error as ReadError).phase).toBe('body');
    expect((error as ReadError).status).toBe(502);
    expect(c.stats()).toMatchObject({ idle: 0, active: 0 });
    await expectNoLeak(c, fds);
  });

  run('a reset before the response on a fresh connection is not retried', async () => {
    const p = await raw((s) => onRequestHeads(s, () => s.resetAndDestroy()));
    const fds = fdCount();
    const c = make();
    const key = endpoint(`http://127.0.0.1:${p.port}`);
    const error = await c.request(key, createRequest('GET', '/')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReadError);
    expect((error as ReadError).phase).toBe('response');
    expect((error as ReadError).reused).toBe(false);
    expect(p.accepted).toBe(1);
    expect(c.stats()).toMatchObject({ retried: 0, active: 0, idle: 0 });
    await expectNoLeak(c, fds);
  });

  run('a peer that never answers hits the read timeout (504), not the connect timeout', async () => {
    const p = await raw(() => {
      // accepts, reads, never answers
    });
    const fds = fdCount();
    const c = make();
    const key = endpoint(`http://127.0.0.1:${p.port}`);
    const error = await c
      .request(key, createRequest('GET', '/'), { readTimeout: 150, connectTimeout: 5000 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReadError);
    expect((error as ReadError).code).toBe('ERR_TRANSPORT_READ_TIMEOUT');
    expect((error as ReadError).status).toBe(504);
    expect(c.stats()).toMatchObject({ idle: 0, active: 0, created: 1 });
    expect(await eventually(() => p.sockets.size === 0)).toBe(true);
    await expectNoLeak(c, fds);
  });

  run('a read timeout on a reused connection (its idle recv handed over) is a read timeout', async () => {
    let n = 0;
    const p = await raw((s) => {
      s.on('data', () => {
        // answers the first request only
        if (n++ === 0) s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      });
    });
    const fds = fdCount();
    const c = make();
    const key = endpoint(`http://127.0.0.1:${p.port}`);
    expect(await readText((await c.request(key, createRequest('GET', '/'))).body)).toBe('ok');
    const error = await c
      .request(key, createRequest('POST', '/', { body: fixedBody('x') }), { readTimeout: 150 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReadError);
    expect((error as ReadError).code).toBe('ERR_TRANSPORT_READ_TIMEOUT');
    expect((error as ReadError).reused).toBe(true);
    expect(c.stats()).toMatchObject({ idle: 0, active: 0, created: 1, reused: 1 });
    await expectNoLeak(c, fds);
  });

  run(
    'a request body whose source fails mid-upload fails the exchange at once, not at the read timeout',
    async () => {
      const p = await raw(() => {
        // reads the request, never answers
      });
      const fds = fdCount();
      const c = make({ readTimeout: 60_000 });
      const key = endpoint(`http://127.0.0.1:${p.port}`);
      async function* upload() {
        yield Buffer.from('half of it');
        await new Promise((r) => setTimeout(r, 20));
        throw new Error('client went away');
      }
      const error = await c
        .request(key, createRequest('PUT', '/', { body: streamBody(upload()) }))
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TransportError);
      expect(error).toMatchObject({
        code: 'ERR_TRANSPORT_REQUEST_BODY_FAILED',
        phase: 'write',
        retryable: false,
        cause: { code: 'ERR_HTTP_REQUEST_BODY_FAILED', cause: { message: 'client went away' } },
      });
      expect(c.stats()).toMatchObject({ idle: 0, active: 0, created: 1 });
      await expectNoLeak(c, fds);
    },
    10_000,
  );

  run('reusing an idle connection creates no Error and no AbortController', async () => {
    const p = await peer((_req, res) => res.end('x'));
    const c = make();
    const key = endpoint(`http://127.0.0.1:${p.port}`);
    const one = async () => readText((await c.request(key, createRequest('GET', '/'))).body);
    await one();
    // V8 reads Error.stackTraceLimit once per Error it constructs (DOMException and the
    // runtime's RuntimeError included); AbortController is counted through the global.
    let errors = 0;
    let controllers = 0;
    const limit = Object.getOwnPropertyDescriptor(Error, 'stackTraceLimit')!;
    const Controller = globalThis.AbortController;
    Object.defineProperty(Error, 'stackTraceLimit', {
      configurable: true,
      get: () => {
        errors++;
        return 10;
      },
      set: () => {},
    });
    globalThis.AbortController = class extends Controller {
      constructor() {
        super();
        controllers++;
      }
    };
    try {
      for (let i = 0; i < 50; i++) expect(await one()).toBe('x');
    } finally {
      Object.defineProperty(Error, 'stackTraceLimit', limit);
      globalThis.AbortController = Controller;
    }
    expect(c.stats()).toMatchObject({ created: 1, reused: 50 });
    expect({ errors, controllers }).toEqual({ errors: 0, controllers: 0 });
  });

  run('a read timeout between body chunks fails the body with ReadError', async () => {
    const p = await raw((s) =>
      onRequestHeads(s, () => s.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n')),
    );
    const fds = fdCount();
    const c = make();
    const key = endpoint(`http://127.0.0.1:${p.port}`);
    const res = await c.request(key, createRequest('GET', '/'), { readTimeout: 150 });
    const error = await readText(res.body).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReadError);
    expect((error as ReadError).code).toBe('ERR_TRANSPORT_READ_TIMEOUT');
    expect((error as ReadError).phase).toBe('body');
    await expectNoLeak(c, fds);
  });

  run('a listener with a full backlog gives a connect timeout (504)', async () => {
    const hole = await blackholeListener();
    closers.push(hole.stop);
    const c = make();
    const key = endpoint(`http://127.0.0.1:${hole.port}`);
    // The first connects may complete into the backlog (and then time out reading); one that
    // cannot complete must fail with the connect timeout.
    let error: unknown;
    for (let i = 0; i < 16 && !(error instanceof ConnectError); i++) {
      error = await c
        .request(key, createRequest('GET', '/'), { connectTimeout: 150, readTimeout: 50 })
        .catch((e: unknown) => e);
    }
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe('ERR_TRANSPORT_CONNECT_TIMEOUT');
    expect((error as ConnectError).status).toBe(504);
    expect(c.stats()).toMatchObject({ idle: 0, active: 0 });
  });

  run('a refused connect is a ConnectError (502)', async () => {
    const p = await raw(() => {});
    const port = p.port;
    await p.close();
    const fds = fdCount();
    const c = make();
    const error = await c
      .request(endpoint(`http://127.0.0.1:${port}`), createRequest('GET', '/'))
      .catch((e) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe('ERR_TRANSPORT_CONNECT_REFUSED');
    expect((error as ConnectError).status).toBe(502);
    expect((error as ConnectError).address).toBe(`127.0.0.1:${port}`);
    await expectNoLeak(c, fds);
  });

  run('a Unix-socket upstream (node:http on a path) works and is pooled', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loch-transports-'));
    closers.push(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'up.sock');
    const p = await peer((req, res) => res.end(`unix ${req.method} ${req.headers.host}`), path);
    const fds = fdCount();
    const c = make();
    for (const key of [endpoint(`unix:${path}`), endpoint(`http://unix:${path}:/`)]) {
      const res = await c.request(key, createRequest('GET', '/'));
      expect(await readText(res.body)).toBe('unix GET localhost');
    }
    expect(p.connections.length).toBe(1);
    expect(c.stats()).toMatchObject({ created: 1, reused: 1, idle: 1 });
    const missing = await c
      .request(endpoint(`unix:${join(dir, 'nope.sock')}`), createRequest('GET', '/'))
      .catch((e) => e);
    expect(missing).toBeInstanceOf(ConnectError);
    expect((missing as ConnectError).code).toBe('ERR_TRANSPORT_CONNECT_FAILED');
    await expectNoLeak(c, fds);
  });

  run('an idempotent request failing on a stale reused connection is retried once on a new one', async () => {
    // The server answers the first request, then closes the connection as the second arrives
    // (the race behind every stale keep-alive reuse), without a byte of response.
    const p = await raw((s, index) =>
      onRequestHeads(s, (_head, n) => {
        if (index === 0 && n === 1) s.destroy();
        else s.write(`HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nc${index}`);
      }),
    );
    const fds = fdCount();
    const c = make();
    const key = endpoint(`http://127.0.0.1:${p.port}`);
    expect(await readText((await c.request(key, createRequest('GET', '/'))).body)).toBe('c0');
    const res = await c.request(key, createRequest('PUT', '/', { body: fixedBody('replayable') }));
    expect(await readText(res.body)).toBe('c1');
    expect(c.stats()).toMatchObject({ created: 2, reused: 1, retried: 1, active: 0, idle: 1 });
    await expectNoLeak(c, fds);
  });

  run(
    'a request head whose writeTo fails fails the exchange with a WriteError, retried once when reused',
    async () => {
      const p = await peer((req, res) => res.end(`w ${req.url}`));
      const fds = fdCount();
      const failWrites = { next: false };
      connector = new HttpConnector(failingWriteStreams(new UnifiedL4Connector({ runtime }), failWrites));
      const c = connector;
      const key = endpoint(`http://127.0.0.1:${p.port}`);
      // On a new connection: the exchange fails at once, nothing is retried or kept.
      failWrites.next = true;
      const error = await c.request(key, createRequest('GET', '/a')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(WriteError);
      expect((error as WriteError).code).toBe('ERR_TRANSPORT_WRITE_FAILED');
      expect((error as WriteError).reused).toBe(false);
      expect(c.stats()).toMatchObject({ active: 0, idle: 0, retried: 0 });
      // On a reused connection (no response byte yet): sent again once on a new connection.
      expect(await readText((await c.request(key, createRequest('GET', '/b'))).body)).toBe('w /b');
      failWrites.next = true;
      const res = await c.request(key, createRequest('GET', '/c'));
      expect(await readText(res.body)).toBe('w /c');
      expect(c.stats()).toMatchObject({ retried: 1, active: 0, idle: 1 });
      await expectNoLeak(c, fds);
    },
  );

  run(
    'onResponse filters every response and onError maps every failure, with the key asked for',
    async () => {
      // The first connection answers once, then dies as the second request arrives (retried on a
      // new connection: the hooks see one outcome per request, not per attempt).
      const p = await raw((s, index) =>
        onRequestHeads(s, (_head, n) => {
          if (index === 0 && n === 1) s.destroy();
          else s.write(`HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-drop: 1\r\n\r\nc${index}`);
        }),
      );
      const fds = fdCount();
      const c = make();
      const key = endpoint(`http://127.0.0.1:${p.port}`);
      const seen: string[] = [];
      class Mapped extends Error {}
      const options = {
        onResponse: (res: HttpResponse, k: Endpoint) => {
          seen.push(`response ${k === key} ${res.headers.get('x-drop')}`);
          res.headers.delete('x-drop');
          return res;
        },
        onError: (error: unknown, k: Endpoint) => {
          seen.push(`error ${k === key} ${(error as TransportError).code}`);
          return new Mapped('mapped', { cause: error });
        },
      };
      for (let i = 0; i < 2; i++) {
        const res = await c.request(key, createRequest('GET', '/'), options);
        expect(res.headers.has('x-drop')).toBe(false);
        expect(await readText(res.body)).toBe(`c${i}`);
      }
      expect(c.stats()).toMatchObject({ created: 2, reused: 1, retried: 1 });
      // A refused connect goes through onError too.
      await p.close();
      c.close();
      const refused = await c.request(key, createRequest('GET', '/'), options).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(Mapped);
      expect((refused as Mapped).cause).toBeInstanceOf(ConnectError);
      expect(seen).toEqual([
        'response true 1',
        'response true 1',
        'error true ERR_TRANSPORT_CONNECT_REFUSED',
      ]);
      await expectNoLeak(c, fds);
    },
  );

  run('a non-idempotent or non-replayable request on a stale connection is not retried', async () => {
    const p = await raw((s, index) =>
      onRequestHeads(s, (_head, n) => {
        if (n === 1) s.destroy();
        else s.write(`HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nc${index}`);
      }),
    );
    const fds = fdCount();
    const c = make();
    const key = endpoint(`http://127.0.0.1:${p.port}`);
    const once = async function* () {
      yield new TextEncoder().encode('stream');
    };
    const attempts = [
      createRequest('POST', '/', { body: fixedBody('x') }),
      createRequest('PUT', '/', { body: streamBody(once()) }),
    ];
    for (const req of attempts) {
      await readText((await c.request(key, createRequest('GET', '/'))).body);
      const error = await c.request(key, req).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TransportError);
      expect((error as TransportError).reused).toBe(true);
      expect((error as TransportError).retryable).toBe(true);
    }
    expect(c.stats()).toMatchObject({ retried: 0, active: 0 });
    await expectNoLeak(c, fds);
  });

  run('the liveness check evicts an idle connection the peer closed, before reuse', async () => {
    const p = await raw((s, index) =>
      onRequestHeads(s, () => {
        s.write(`HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nc${index}`);
        // close the idle connection right after answering, as a short keepalive_timeout does
        setTimeout(() => s.end(), 20);
      }),
    );
    const fds = fdCount();
    const c = make();
    const key = endpoint(`http://127.0.0.1:${p.port}`);
    expect(await readText((await c.request(key, createRequest('GET', '/'))).body)).toBe('c0');
    expect(await eventually(() => c.stats().evicted === 1)).toBe(true);
    expect(c.stats()).toMatchObject({ idle: 0, active: 0 });
    // A POST (not retryable) succeeds because the dead connection is never handed out.
    const res = await c.request(key, createRequest('POST', '/', { body: fixedBody('x') }));
    expect(await readText(res.body)).toBe('c1');
    expect(c.stats()).toMatchObject({ created: 2, reused: 0, retried: 0 });
    await expectNoLeak(c, fds);
  });

  run(
    'an idle connection on which the peer writes (an unsolicited 408) is evicted, never read as a response',
    async () => {
      const p = await raw((s, index) =>
        onRequestHeads(s, () => {
          s.write(`HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nc${index}`);
          setTimeout(() => s.write('HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n'), 20);
        }),
      );
      const fds = fdCount();
      const c = make();
      const key = endpoint(`http://127.0.0.1:${p.port}`);
      expect(await readText((await c.request(key, createRequest('GET', '/'))).body)).toBe('c0');
      expect(await eventually(() => c.stats().evicted === 1)).toBe(true);
      const res = await c.request(key, createRequest('GET', '/'));
      expect(res.status).toBe(200);
      expect(await readText(res.body)).toBe('c1');
      expect(c.stats()).toMatchObject({ created: 2, reused: 0, retried: 0 });
      await expectNoLeak(c, fds);
    },
  );

  run('an abort signal during the body fails it with AbortedError and closes the connection', async () => {
    const p = await peer((_req, res) => {
      res.writeHead(200, { 'content-length': 100 });
      res.write('partial');
    });
    const fds = fdCount();
    const c = make();
    const key = endpoint(`http://127.0.0.1:${p.port}`);
    const ctrl = new AbortController();
    const res = await c.request(key, createRequest('GET', '/'), { signal: ctrl.signal });
    const it = res.body[Symbol.asyncIterator]();
    expect((await it.next()).done).toBe(false);
    const pending = it.next();
    ctrl.abort(new Error('client went away'));
    const error = await pending.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AbortedError);
    expect((error as AbortedError).code).toBe('ERR_TRANSPORT_ABORTED');
    // The signal's reason, though the body's end let the signal go before the error was mapped.
    expect((error as AbortedError).cause).toBe(ctrl.signal.reason);
    expect(c.stats()).toMatchObject({ idle: 0, active: 0 });
    await expectNoLeak(c, fds);
  });

  run('a body step that waits costs the client its one promise; the connection is pooled after', async () => {
    const sockets: import('node:net').Socket[] = [];
    const p = await raw((s) =>
      onRequestHeads(s, () => {
        sockets.push(s);
        s.write('HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nhello');
      }),
    );
    const fds = fdCount();
    const c = make();
    const key = endpoint(`http://127.0.0.1:${p.port}`);
    for (let round = 0; round < 2; round++) {
      const res = await c.request(key, createRequest('GET', '/'));
      const it = res.body[Symbol.asyncIterator]();
      let text = '';
      let r = await it.next();
      while (!r.done && text.length < 5) {
        text += Buffer.from(r.value).toString('latin1');
        if (text.length < 5) r = await it.next();
      }
      expect(text).toBe('hello');
      // The rest is not here yet: the step waits for a read. The connection hands out the
      // client's own body (no body of its own around it per response), so that wait is the
      // client's one promise, with no reaction of the connection's on it.
      let made = 0;
      const hook = createHook({
        init(_id, type) {
          if (type === 'PROMISE') made++;
        },
      });
      hook.enable();
      let pending: Promise<IteratorResult<Uint8Array>>;
      try {
        pending = it.next();
      } finally {
        hook.disable();
      }
      expect(made).toBe(1);
      sockets[0]!.write(' world');
      for (r = await pending; !r.done; r = await it.next()) text += Buffer.from(r.value).toString('latin1');
      expect(text).toBe('hello world');
      // Read to its end: the connection went back to the pool (the second round reuses it).
      expect(c.stats()).toMatchObject({ idle: 1, active: 0, created: 1, reused: round });
    }
    expect(sockets.length).toBe(2);
    await expectNoLeak(c, fds);
  });

  run('a peer that closes inside the body fails its read with ReadError (phase body)', async () => {
    const p = await raw((s) =>
      onRequestHeads(s, () => s.end('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part')),
    );
    const fds = fdCount();
    const c = make();
    const key = endpoint(`http://127.0.0.1:${p.port}`);
    const res = await c.request(key, createRequest('GET', '/'));
    const error = await readText(res.body).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ReadError);
    expect((error as ReadError).phase).toBe('body');
    expect((error as ReadError).message).toContain('inside the response body');
    expect(c.stats()).toMatchObject({ idle: 0, active: 0 });
    await expectNoLeak(c, fds);
  });

  run('an abort while waiting for the head, and a pre-aborted signal, fail with AbortedError', async () => {
    const p = await raw(() => {});
    const fds = fdCount();
    const c = make();
    const key = endpoint(`http://127.0.0.1:${p.port}`);
    const ctrl = new AbortController();
    const pending = c
      .request(key, createRequest('GET', '/'), { signal: ctrl.signal })
      .catch((e: unknown) => e);
    await eventually(() => p.accepted === 1);
    ctrl.abort();
    expect(await pending).toBeInstanceOf(AbortedError);
    const pre = await c
      .request(key, createRequest('GET', '/'), { signal: AbortSignal.abort() })
      .catch((e) => e);
    expect(pre).toBeInstanceOf(AbortedError);
    expect((pre as AbortedError).phase).toBe('connect');
    await expectNoLeak(c, fds);
  });

  run(
    'onExchange: a cancel before the head fails with AbortedError and drops the connection; a stale handle cancels nothing',
    async () => {
      const held: (() => void)[] = [];
      const p = await peer((req, res) => {
        if (req.url?.startsWith('/slow')) held.push(() => res.end(`late ${req.url}`));
        else res.end(`hello ${req.url}`);
      });
      const fds = fdCount();
      const c = make();
      const key = endpoint(`http://127.0.0.1:${p.port}`);
      const handles: [HttpRequest, HttpExchangeCancel][] = [];
      const options = { onExchange: (req: HttpRequest, ex: HttpExchangeCancel) => handles.push([req, ex]) };
      // A finished exchange's handle, kept: the connection goes back to the pool.
      const first = createRequest('GET', '/first');
      expect(await readText((await c.request(key, first, options)).body)).toBe('hello /first');
      expect(handles[0]![0]).toBe(first);
      // The pooled connection carries the next exchange: the old handle (and one naming another
      // request) must not touch it.
      const second = c.request(key, createRequest('GET', '/slow-2'), options);
      await eventually(() => held.length === 1);
      expect(handles[1]![1]).toBe(handles[0]![1]);
      handles[0]![1].cancelExchange(first);
      handles[1]![1].cancelExchange(createRequest('GET', '/other'));
      held[0]!();
      expect(await readText((await second).body)).toBe('late /slow-2');
      // Cancelled while its head is awaited: AbortedError, and the connection is not pooled.
      const third = createRequest('GET', '/slow-3');
      const pending = c.request(key, third, options).catch((e: unknown) => e);
      await eventually(() => held.length === 2);
      handles[2]![1].cancelExchange(third);
      const error = await pending;
      expect(error).toBeInstanceOf(AbortedError);
      expect((error as AbortedError).code).toBe('ERR_TRANSPORT_ABORTED');
      expect(c.stats()).toMatchObject({ idle: 0, active: 0, created: 1, reused: 2 });
      await expectNoLeak(c, fds);
    },
  );

  run('an invalid response is a ProtocolError (502) and the connection is dropped', async () => {
    const p = await raw((s) =>
      onRequestHeads(s, () => s.write('HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nx')),
    );
    const fds = fdCount();
    const c = make();
    const error = await c
      .request(endpoint(`http://127.0.0.1:${p.port}`), createRequest('GET', '/'))
      .catch((e) => e);
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as ProtocolError).status).toBe(502);
    expect(c.stats()).toMatchObject({ idle: 0, active: 0 });
    await expectNoLeak(c, fds);
  });

  run('connect() hands out one connection for one exchange; release() returns an unused one', async () => {
    const p = await peer((req, res) => res.end(`got ${req.url}`));
    const fds = fdCount();
    const c = make();
    const key = endpoint(`http://127.0.0.1:${p.port}`);
    const conn = await c.connect(key);
    expect(conn.reused).toBe(false);
    expect(c.stats()).toMatchObject({ active: 1, idle: 0 });
    const res = await conn.send(createRequest('GET', '/a'));
    // One exchange per hand-out: a second send while the first is in progress is refused.
    await expect(conn.send(createRequest('GET', '/b'))).rejects.toThrow(/busy/);
    expect(conn.exchanges).toBe(0);
    expect(await readText(res.body)).toBe('got /a');
    expect(conn.exchanges).toBe(1);
    expect(c.stats()).toMatchObject({ active: 0, idle: 1 });
    const again = await c.connect(key);
    expect(again).toBe(conn);
    expect(again.reused).toBe(true);
    again.release();
    expect(c.stats()).toMatchObject({ active: 0, idle: 1, reused: 1 });
    const dropped = await c.connect(key);
    await dropped.close();
    expect(c.stats()).toMatchObject({ active: 0, idle: 0 });
    await expectNoLeak(c, fds);
  });

  run(
    'UnifiedL4Connector and TcpConnector connect from URLs and address strings, with noDelay and timeouts',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'loch-transports-'));
      closers.push(() => rmSync(dir, { recursive: true, force: true }));
      const tcpPeer = await peer((_req, res) => res.end('tcp'));
      const unixPeer = await peer((_req, res) => res.end('unix'), join(dir, 's.sock'));
      const fds = fdCount();
      const l4 = new UnifiedL4Connector({ runtime, timeout: 2000, noDelay: true });
      const streams = [
        await l4.connect(`127.0.0.1:${tcpPeer.port}`),
        await l4.connect(`http://127.0.0.1:${tcpPeer.port}/`),
        await l4.connect(`unix:${join(dir, 's.sock')}`),
        await new TcpConnector({ runtime, noDelay: false }).connect({
          host: '127.0.0.1',
          port: tcpPeer.port,
        }),
      ];
      expect(streams.map((s) => s.remoteAddress.family)).toEqual(['ipv4', 'ipv4', 'unix', 'ipv4']);
      expect(streams.every((s) => s.driver === name)).toBe(true);
      for (const s of streams) await s.close();
      expect(await eventually(() => tcpPeer.sockets.size === 0 && unixPeer.sockets.size === 0)).toBe(true);
      expect(await fdsBackTo(fds)).toBeLessThanOrEqual(fds);
    },
  );

  run('descriptors return to the baseline after many pooled and unpooled exchanges', async () => {
    const p = await peer((req, res) => {
      if (req.url === '/close') res.setHeader('connection', 'close');
      res.end('x');
    });
    const c = make({ pool: { maxIdlePerKey: 2 } });
    const key = endpoint(`http://127.0.0.1:${p.port}`);
    for (let round = 0; round < 20; round++) {
      const all = await Promise.all(
        Array.from({ length: 4 }, (_, i) => c.request(key, createRequest('GET', i === 0 ? '/close' : '/'))),
      );
      for (const res of all) await readText(res.body);
    }
    const s = c.stats();
    expect(s.active).toBe(0);
    expect(s.idle).toBeLessThanOrEqual(2);
    c.close();
    await p.close();
    expect(await fdsBackTo(baseline)).toBeLessThanOrEqual(baseline);
  });
});
