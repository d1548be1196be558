/**
 * HttpClient over a real loopback peer (node:http), on every driver: its one I/O path (recvTo/
 * writeTo), the test adapter for promise-only doubles (test/promise-stream.ts), and a request
 * head write that fails or settles late (a failure a real peer cannot produce on demand, so the
 * double injects it).
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ByteStream, RuntimeError } from '@loch/uring-runtime';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type PromiseStreamDouble, promiseStream } from '../test/promise-stream.js';
import { availableDrivers, connectTo } from '../test/server-harness.js';
import { fixedBody, readText } from './body.js';
import { HttpClient } from './client.js';
import { HttpConnectionError } from './errors.js';
import { createRequest } from './message.js';
import type { HttpStream, StreamChunk, StreamRecvTarget, StreamWriteTarget } from './transport.js';

const drivers = await availableDrivers();

/** The promise operations of `inner` only, counting receives: a double for the test adapter. */
function promiseOps(inner: ByteStream): PromiseStreamDouble & { reads: number } {
  const s = {
    reads: 0,
    get remoteAddress() {
      return inner.remoteAddress;
    },
    get localAddress() {
      return inner.localAddress;
    },
    get driver() {
      return inner.driver;
    },
    get closed() {
      return inner.closed;
    },
    recv(): Promise<StreamChunk | null> {
      s.reads++;
      return inner.recv();
    },
    writeAll: (buf: Uint8Array) => inner.writeAll(buf),
    writev: (bufs: readonly Uint8Array[]) => inner.writev(bufs),
    shutdown: () => inner.shutdown(),
    close: () => inner.close(),
    setNoDelay: (on: boolean) => inner.setNoDelay(on),
  };
  return s;
}

/**
 * `inner` with its recvTo/writeTo, counting calls; `failWrite` makes the next writeTo fail with
 * EPIPE without writing, `lateWrite` writes but reports the outcome only after the next
 * received chunk was delivered (the response head is decoded before the write settles).
 */
function instrumented(inner: HttpStream) {
  const s = {
    recvTos: 0,
    writeTos: 0,
    failWrite: false,
    lateWrite: null as RuntimeError | undefined | null,
    held: null as { target: StreamWriteTarget; error: RuntimeError | undefined } | null,
    get remoteAddress() {
      return inner.remoteAddress;
    },
    get facts() {
      return inner.facts;
    },
    get localAddress() {
      return inner.localAddress;
    },
    get driver() {
      return inner.driver;
    },
    get closed() {
      return inner.closed;
    },
    shutdown: () => inner.shutdown(),
    close: () => inner.close(),
    setNoDelay: (on: boolean) => inner.setNoDelay(on),
    recvTo(target: StreamRecvTarget): void {
      s.recvTos++;
      inner.recvTo({
        onRecv(chunk, error) {
          target.onRecv(chunk, error);
          const held = s.held;
          if (held !== null) {
            s.held = null;
            held.target.onWritten(held.error);
          }
        },
      });
    },
    writeTo(data: Uint8Array | readonly Uint8Array[], target: StreamWriteTarget): void {
      s.writeTos++;
      if (s.failWrite) {
        s.failWrite = false;
        queueMicrotask(() => target.onWritten(new RuntimeError('EPIPE', 'write', { errno: 32 })));
        return;
      }
      const late = s.lateWrite;
      if (late !== null) {
        s.lateWrite = null;
        inner.writeTo(data, {
          onWritten() {
            s.held = { target, error: late };
          },
        });
        return;
      }
      inner.writeTo(data, target);
    },
  };
  return s;
}

describe.each(drivers)('HttpClient streams on the %s driver', (driver) => {
  let server: http.Server;
  let port: number;
  const clients: HttpClient[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (b: Buffer) => parts.push(b));
      req.on('end', () => {
        if (req.url === '/empty') {
          res.writeHead(204).end();
          return;
        }
        res.end(`${req.method} ${req.url} ${Buffer.concat(parts).toString('latin1')}`);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
  });

  function track(c: HttpClient): HttpClient {
    clients.push(c);
    return c;
  }

  it('reads and writes through recvTo/writeTo: one writeTo per bodiless request', async () => {
    const s = instrumented(await connectTo(driver, port));
    const c = track(new HttpClient(s, { authority: 'x' }));
    for (let i = 0; i < 3; i++) {
      const res = await c.send(createRequest('GET', `/n${i}`));
      expect(res.status).toBe(200);
      expect(await readText(res.body)).toBe(`GET /n${i} `);
      expect(c.reusable).toBe(true);
    }
    const empty = await c.send(createRequest('GET', '/empty'));
    expect(empty.status).toBe(204);
    expect(c.reusable).toBe(true);
    expect(s.writeTos).toBe(4);
    expect(s.recvTos).toBeGreaterThanOrEqual(4);
  });

  it('works over a promise-only double through the test adapter: reuse, bodies, no-body responses', async () => {
    const s = promiseOps(await connectTo(driver, port));
    const c = track(new HttpClient(promiseStream(s), { authority: 'x' }));
    const a = await c.send(createRequest('GET', '/a'));
    expect(await readText(a.body)).toBe('GET /a ');
    const b = await c.send(createRequest('POST', '/b', { body: fixedBody('hello') }));
    expect(await readText(b.body)).toBe('POST /b hello');
    const e = await c.send(createRequest('GET', '/empty'));
    expect(e.status).toBe(204);
    expect(c.reusable).toBe(true);
    expect(s.reads).toBeGreaterThanOrEqual(3);
  });

  it('fails the exchange with the write error when writeTo fails, and is not reusable', async () => {
    const s = instrumented(await connectTo(driver, port));
    const c = track(new HttpClient(s, { authority: 'x' }));
    s.failWrite = true;
    const err = await c.send(createRequest('GET', '/w')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RuntimeError);
    expect((err as RuntimeError).code).toBe('EPIPE');
    expect((err as RuntimeError).syscall).toBe('write');
    expect(c.reusable).toBe(false);
    expect(c.responseBytes).toBe(0);
    expect(s.closed).toBe(true);
    await expect(c.send(createRequest('GET', '/again'))).rejects.toBeInstanceOf(HttpConnectionError);
  });

  it('holds a response head decoded before the head write settled: the write failure wins', async () => {
    const s = instrumented(await connectTo(driver, port));
    const c = track(new HttpClient(s, { authority: 'x' }));
    s.lateWrite = new RuntimeError('ECONNRESET', 'write', { errno: 104 });
    const err = await c.send(createRequest('GET', '/late')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RuntimeError);
    expect((err as RuntimeError).code).toBe('ECONNRESET');
    expect(c.reusable).toBe(false);
  });

  it('holds a response head decoded before the head write settled: delivered once it succeeds', async () => {
    const s = instrumented(await connectTo(driver, port));
    const c = track(new HttpClient(s, { authority: 'x' }));
    s.lateWrite = undefined;
    const res = await c.send(createRequest('GET', '/late-ok'));
    expect(await readText(res.body)).toBe('GET /late-ok ');
    expect(c.reusable).toBe(true);
    const next = await c.send(createRequest('GET', '/after'));
    expect(await readText(next.body)).toBe('GET /after ');
  });

  it('reports the promise-free exchange to its target exactly once', async () => {
    const c = track(new HttpClient(await connectTo(driver, port), { authority: 'x' }));
    const seen: string[] = [];
    const done = new Promise<void>((resolve) => {
      c.exchange(
        createRequest('GET', '/t'),
        {},
        {
          onResponse(res) {
            seen.push(`response ${res.status}`);
            void readText(res.body).then((t) => {
              seen.push(t);
              resolve();
            });
          },
          onFailure(error) {
            seen.push(`failure ${String(error)}`);
            resolve();
          },
        },
      );
    });
    await done;
    expect(seen).toEqual(['response 200', 'GET /t ']);
    expect(() =>
      c.exchange(createRequest('GET', '/u'), {}, { onResponse() {}, onFailure() {} }),
    ).not.toThrow();
    expect(() => c.exchange(createRequest('GET', '/v'), {}, { onResponse() {}, onFailure() {} })).toThrow(
      HttpConnectionError,
    );
  });
});
