/**
 * Test support: starts an HttpServer on a loopback listener (port 0) with a demo handler that
 * covers fixed, streamed, echoed and failing responses, and a raw-socket exchange helper.
 */
import * as net from 'node:net';
import { createRuntime, type DriverName, type Runtime, TcpListener, TcpStream } from '@loch/uring-runtime';
import { fixedBody, readBody, streamBody } from '../src/body.js';
import type { HttpConnectionContext } from '../src/context.js';
import { HttpHeaders } from '../src/headers.js';
import { createResponse, type HttpRequest, type HttpResponse } from '../src/message.js';
import { type HttpHandler, HttpServer, type HttpServerOptions } from '../src/server.js';

export const demoHandler: HttpHandler<HttpConnectionContext> = {
  async call(req: HttpRequest, ctx: HttpConnectionContext): Promise<HttpResponse> {
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
              peer: ctx.get('peerAddr'),
              local: ctx.get('localAddr'),
              driver: ctx.get('driver'),
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
