/**
 * Test support: starts an HttpServer on a loopback listener (port 0) with a demo handler that
 * covers fixed, streamed, echoed and failing responses, and a raw-socket exchange helper.
 */
import * as net from 'node:net';
import { createRuntime, type DriverName, type Runtime, TcpListener, TcpStream } from '@loch/uring-runtime';
import { fixedBody, readBody, streamBody } from '../src/body.js';
import type { HttpConnectionContext } from '../src/context.js';
import { HttpHeaders } from '../src/headers.js';
import { createResponse, type HttpResponse, type HttpServerRequest } from '../src/message.js';
import { type HttpHandler, HttpServer, type HttpServerOptions } from '../src/server.js';

export const demoHandler: HttpHandler<HttpConnectionContext> = {
  async call(req: HttpServerRequest<HttpConnectionContext>): Promise<HttpResponse> {
    const path = req.target.split('?')[0];
    switch (path) {
      case '/hello':
        return createResponse(200, {
          headers: { 'content-type': 'text/plain' },
          body: fixedBody('hello world'),
        });
      case '/echo':
        // Streams the request body back as it arrives (chunked response), trailers included.
        return createResponse(200, { headers: { 'x-method': req.method }, body: streamBody(req.body) });
      case '/len': {
        const body = await readBody(req.body, 64 * 1024 * 1024);
        let sum = 0;
        for (const b of body) sum = (sum + b) % 65521;
        const trailers = req.body.trailers;
        return createResponse(200, {
          body: fixedBody(`${body.length} ${sum}${trailers ? ` ${trailers.get('x-checksum')}` : ''}`),
        });
      }
      case '/stream': {
        const trailers = new HttpHeaders([['x-trailer', 'done']]);
        async function* parts() {
          for (let i = 0; i < 5; i++) {
            await new Promise((r) => setTimeout(r, 1));
            yield Buffer.from(`part${i};`);
          }
        }
        return createResponse(200, { body: streamBody(parts(), { trailers }) });
      }
      case '/forever': {
        // An endless body: only a failing write (or the client leaving) stops it.
        const chunk = Buffer.alloc(64 * 1024, 0x62);
        return createResponse(200, {
          body: streamBody(
            (function* () {
              for (;;) yield chunk;
            })(),
          ),
        });
      }
      case '/big':
        return createResponse(200, { body: fixedBody(Buffer.alloc(4 * 1024 * 1024, 0x61)) });
      case '/peer':
        return createResponse(200, {
          body: fixedBody(
            JSON.stringify({
              peer: req.context.get('peerAddr'),
              local: req.context.get('localAddr'),
              driver: req.context.get('driver'),
            }),
          ),
        });
      case '/throw':
        throw new Error('handler bug');
      case '/nocontent':
        return createResponse(204, { body: fixedBody('ignored') });
      case '/slow':
        await new Promise((r) => setTimeout(r, 50));
        return createResponse(200, { body: fixedBody('slow') });
      default:
        return createResponse(404, { body: fixedBody('not found') });
    }
  },
};

export interface Running {
  port: number;
  /** The server object (undefined when it runs in another process). */
  server: HttpServer<HttpConnectionContext> | undefined;
  errors: unknown[];
  stop(): Promise<void>;
}

/** A server running in this process. */
export type InProcess = Running & { server: HttpServer<HttpConnectionContext> };

const runtimes = new Map<DriverName, Promise<Runtime>>();

/** The thread's runtime for a driver (created once per test file). */
export function runtimeFor(driver: DriverName): Promise<Runtime> {
  let r = runtimes.get(driver);
  if (r === undefined) {
    r = createRuntime({ driver });
    runtimes.set(driver, r);
  }
  return r;
}

/** Drivers to run the suites on: legacy always, uring when this kernel allows it. */
export async function availableDrivers(): Promise<DriverName[]> {
  try {
    await runtimeFor('uring');
    return ['legacy', 'uring'];
  } catch {
    runtimes.delete('uring');
    return ['legacy'];
  }
}

/** Connects a runtime TcpStream to 127.0.0.1:port. */
export async function connectTo(driver: DriverName, port: number): Promise<TcpStream> {
  return TcpStream.connect({ host: '127.0.0.1', port, runtime: await runtimeFor(driver) });
}

export async function startServer(
  driver: DriverName,
  options: HttpServerOptions<HttpConnectionContext> = {},
  handler = demoHandler,
): Promise<InProcess> {
  const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime: await runtimeFor(driver) });
  const errors: unknown[] = [];
  const server = new HttpServer(handler, { onError: (e) => errors.push(e), ...options });
  const serving = server.serve(listener);
  return {
    port: (listener.localAddress as { port: number }).port,
    server,
    errors,
    async stop() {
      await server.close();
      await serving;
    },
  };
}

/** Writes `data` (pieces written with a short pause between) and collects everything until the server closes. */
export function raw(port: number, data: string | string[], timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const out: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      reject(
        new Error(`raw exchange timed out; got ${JSON.stringify(Buffer.concat(out).toString('latin1'))}`),
      );
    }, timeoutMs);
    s.on('data', (b) => out.push(b));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(out).toString('latin1'));
    });
    const pieces = typeof data === 'string' ? [data] : data;
    (async () => {
      for (const p of pieces) {
        s.write(Buffer.from(p, 'latin1'));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
  });
}

/** Splits a raw response stream into status codes in order. */
export function statuses(text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
}

/**
 * A raw client connection driven step by step: write bytes, wait until what arrived matches,
 * and see whether (and how) the server ended the connection. For tests that must send part of a
 * request only after part of the answer arrived.
 */
export class RawClient {
  private readonly socket: net.Socket;
  private readonly out: Buffer[] = [];
  private waiters: (() => void)[] = [];
  /** Set once the server closed the connection (FIN or reset). */
  closed = false;
  /** Set when the connection ended with an error (a reset). */
  reset = false;
  readonly opened: Promise<void>;

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.opened = new Promise((resolve) => this.socket.once('connect', () => resolve()));
    this.socket.on('data', (b) => {
      this.out.push(b);
      this.notify();
    });
    this.socket.on('error', () => {
      this.reset = true;
    });
    this.socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
  }

  /** Everything received so far. */
  get text(): string {
    return Buffer.concat(this.out).toString('latin1');
  }

  /** Writes bytes (latin1). */
  write(data: string | Uint8Array): void {
    if (this.socket.writable)
      this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** Half-closes the sending side (FIN). */
  end(): void {
    this.socket.end();
  }

  /** Resolves once `cond(text)` holds or the connection closed; fails after `timeoutMs`. */
  async until(cond: (text: string) => boolean, timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!cond(this.text) && !this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`RawClient: timed out; got ${JSON.stringify(this.text)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.text;
  }

  /** Resolves with everything received once the server closed the connection. */
  async untilClosed(timeoutMs = 5000): Promise<string> {
    return this.until(() => false, timeoutMs).catch((e) => {
      if (this.closed) return this.text;
      throw e;
    });
  }

  /** Closes the connection from this side. */
  destroy(): void {
    this.socket.destroy();
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/**
 * The complete responses at the start of a raw response stream (status, head, body), parsed with
 * Content-Length or chunked framing; what is left unparsed (an incomplete or cut response) is
 * returned as `rest`. For asserting on exactly what a client could read from the wire.
 */
export function parseResponses(text: string): {
  responses: { status: number; head: string; body: string; chunked: boolean }[];
  rest: string;
} {
  const responses: { status: number; head: string; body: string; chunked: boolean }[] = [];
  let p = 0;
  for (;;) {
    const end = text.indexOf('\r\n\r\n', p);
    if (end < 0) break;
    const head = text.slice(p, end + 2);
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 'NaN');
    let q = end + 4;
    const cl = /\r\ncontent-length: *(\d+)\r\n/i.exec(head);
    const chunked = /\r\ntransfer-encoding: *chunked\r\n/i.test(head);
    if (status === 100 || status === 204 || status === 304) {
      responses.push({ status, head, body: '', chunked: false });
      p = q;
      continue;
    }
    if (chunked) {
      let body = '';
      let complete = false;
      for (;;) {
        const le = text.indexOf('\r\n', q);
        if (le < 0) break;
        const size = Number.parseInt(text.slice(q, le), 16);
        if (Number.isNaN(size)) break;
        if (size === 0) {
          const te = text.indexOf('\r\n\r\n', le);
          if (te < 0) break;
          q = te + 4;
          complete = true;
          break;
        }
        if (text.length < le + 2 + size + 2) break;
        body += text.slice(le + 2, le + 2 + size);
        q = le + 2 + size + 2;
      }
      if (!complete) break;
      responses.push({ status, head, body, chunked });
    } else {
      const n = cl === null ? 0 : Number(cl[1]);
      if (text.length < q + n) break;
      responses.push({ status, head, body: text.slice(q, q + n), chunked });
      q += n;
    }
    p = q;
  }
  return { responses, rest: text.slice(p) };
}
