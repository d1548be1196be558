/**
 * HTTPS in the ring at a plain request's crossings (issue 13: "A TLS request must cost no more
 * JavaScript<->native crossings than a plain one"), in process on the uring driver: one
 * HttpServer behind a plain listener and a TLS one (tlsAccept, the ring carries the session, as a
 * loch worker serves HTTPS), one warm keep-alive client on each, and every call into the native
 * binding counted by name (with the ring's completion callbacks) over windows of requests, plain
 * and HTTPS alternating. The HTTP server's write deadline reads each response's write progress
 * (sentBytes): an in-ring TLS stream's is the ring's count in shared memory, no call. And that
 * deadline still cuts an HTTPS client that stops reading. Counts, not time; skipped where io_uring
 * cannot serve.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { createResponse, fixedBody, HttpServer, streamBody } from '@loch/http';
import { TlsServerContext, tlsAccept } from '@loch/tls';
import { createRuntime, type Runtime, type StreamListener } from '@loch/uring-runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countCalls } from '../../../packages/tls/test/binding-calls.cjs';
import { selfSignedCertificate } from '../src/demo-certificate.js';

/** Whether this kernel lets the uring driver serve (probed once). */
const uringOk = await createRuntime({ driver: 'uring', log: () => undefined }).then(
  (r) => r.close().then(() => true),
  () => false,
);
const run = uringOk ? it : it.skip;

/** The proxied response size of bench/results/https.md's middle row. */
const BODY = 3269;
const WARM = 100;
const WINDOW = 200;

/** Reads one whole response (Content-Length framed) from a keep-alive socket. */
function response(socket: net.Socket, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (d: string) => {
      text += d;
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = Number(/content-length: *(\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
      if (text.length < end + 4 + length) return;
      socket.off('data', onData);
      socket.off('error', reject);
      resolve(text);
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(request);
  });
}

/** Calls into the binding's functions by name, plus the ring's completion callbacks, while `work` runs. */
async function crossings(runtime: Runtime, work: () => Promise<void>): Promise<Map<string, number>> {
  // The uring driver's binding (its StreamHost's): the module's exports on this thread.
  const binding = (runtime.driver as unknown as { host: { binding: Record<string, unknown> } }).host.binding;
  const completions = () => (binding.crossings as () => [number, number, number])()[1];
  const before = completions();
  const counting = countCalls(binding, ['crossings']);
  try {
    await work();
  } finally {
    counting.restore();
  }
  const calls = counting.calls;
  calls.set('(completion callbacks)', completions() - before);
  return calls;
}

/** Waits (up to 30 s, polling) until `check` holds. */
async function until(check: () => boolean): Promise<void> {
  for (let waited = 0; !check() && waited < 30_000; waited += 20) await new Promise((r) => setTimeout(r, 20));
}

function add(into: Map<string, number>, from: Map<string, number>): void {
  for (const [k, v] of from) into.set(k, (into.get(k) ?? 0) + v);
}

describe('HTTPS in the ring: crossings and the write deadline (uring driver)', () => {
  let runtime: Runtime;
  let dir: string;
  const listeners: StreamListener[] = [];
  let server: HttpServer;
  let plainPort = 0;
  let tlsPort = 0;
  /** HTTPS connections handed to the server, in accept order, and those it closed. */
  const tlsServed: object[] = [];
  const tlsClosed = new Set<object>();
  /** Chunks the /large body handed out. */
  let pulled = 0;

  beforeAll(async () => {
    if (!uringOk) return;
    dir = mkdtempSync(join(tmpdir(), 'loch-https-crossings-'));
    const cert = selfSignedCertificate(dir);
    const context = new TlsServerContext({
      certificates: [{ chain: readFileSync(cert.chain, 'utf8'), key: readFileSync(cert.key, 'utf8') }],
    });
    runtime = await createRuntime({ driver: 'uring', log: () => undefined });
    server = new HttpServer(
      {
        call(request) {
          if (request.target === '/large') {
            async function* body() {
              const chunk = new Uint8Array(64 * 1024);
              for (let i = 0; i < 1024; i++) {
                pulled++;
                yield chunk;
              }
            }
            return createResponse(200, { body: streamBody(body()) });
          }
          return createResponse(200, { body: fixedBody(new Uint8Array(BODY)) });
        },
      },
      { timeouts: { write: 500, idle: 60_000 } },
    );
    const plain = await runtime.driver.listenTcp({ host: '127.0.0.1', port: 0 });
    const secure = await runtime.driver.listenTcp({ host: '127.0.0.1', port: 0 });
    listeners.push(plain, secure);
    plainPort = (plain.localAddress as { port: number }).port;
    tlsPort = (secure.localAddress as { port: number }).port;
    void (async () => {
      for (;;) server.attach(await plain.accept());
    })().catch(() => {});
    void (async () => {
      for (;;) {
        const stream = await secure.accept();
        tlsAccept(stream, context).then(
          (t) => {
            tlsServed.push(t);
            server.attach(t, () => tlsClosed.add(t));
          },
          () => {},
        );
      }
    })().catch(() => {});
  });

  afterAll(async () => {
    if (!uringOk) return;
    for (const l of listeners) await l.close();
    await server.close();
    await runtime.close();
    rmSync(dir, { recursive: true, force: true });
  });

  run('an HTTPS request costs no more calls into the binding than a plain one', async () => {
    const plain = net.connect(plainPort, '127.0.0.1');
    const secure = tls.connect({ host: '127.0.0.1', port: tlsPort, rejectUnauthorized: false });
    await Promise.all([
      new Promise((r) => plain.once('connect', r)),
      new Promise((r) => secure.once('secureConnect', r)),
    ]);
    plain.setEncoding('latin1');
    secure.setEncoding('latin1');
    const get = 'GET /small HTTP/1.1\r\nHost: x\r\n\r\n';
    const requests = async (socket: net.Socket, n: number) => {
      for (let i = 0; i < n; i++) expect(await response(socket, get)).toMatch(/^HTTP\/1\.1 200 /);
    };
    try {
      await requests(plain, WARM);
      await requests(secure, WARM);
      const plainCalls = new Map<string, number>();
      const tlsCalls = new Map<string, number>();
      for (let round = 0; round < 2; round++) {
        add(plainCalls, await crossings(runtime, () => requests(plain, WINDOW)));
        add(tlsCalls, await crossings(runtime, () => requests(secure, WINDOW)));
      }
      const perRequest = (m: Map<string, number>) =>
        Object.fromEntries([...m].map(([k, v]) => [k, Math.round((v / (2 * WINDOW)) * 100) / 100]));
      const p = perRequest(plainCalls);
      const t = perRequest(tlsCalls);
      const total = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
      // Each function HTTPS calls, at most as often as plain HTTP calls it (submits and completion
      // callbacks may batch differently by a fraction of one per request).
      for (const [name, n] of Object.entries(t)) {
        const slack = name === 'submit' || name === '(completion callbacks)' ? 0.3 : 0.05;
        expect(n, `${name}: HTTPS ${n} per request, plain ${p[name] ?? 0}`).toBeLessThanOrEqual(
          (p[name] ?? 0) + slack,
        );
      }
      expect(total(t), `HTTPS ${JSON.stringify(t)}, plain ${JSON.stringify(p)}`).toBeLessThanOrEqual(
        total(p) + 0.5,
      );
    } finally {
      plain.destroy();
      secure.destroy();
    }
  });

  run(
    'the write deadline cuts an HTTPS client that stops reading (server write 500 ms)',
    async () => {
      const before = tlsServed.length;
      const secure = tls.connect({ host: '127.0.0.1', port: tlsPort, rejectUnauthorized: false });
      await new Promise((r) => secure.once('secureConnect', r));
      secure.on('error', () => {});
      secure.on('data', () => {
        // Stops reading at the first bytes: the server's writes stall once the socket buffers fill.
        secure.pause();
      });
      try {
        // This connection's server side: the one handed to the server after `before`.
        await until(() => tlsServed.length > before);
        const served = tlsServed[before]!;
        secure.write('GET /large HTTP/1.1\r\nHost: x\r\n\r\n');
        await until(() => pulled > 0);
        // The client never reads on nor closes: only the server's write deadline ends the
        // connection (one to two deadlines after the writes stalled; the bound is generous, not a
        // timing check).
        await until(() => tlsClosed.has(served));
        expect(tlsClosed.has(served)).toBe(true);
        // Bounded: what the socket buffers took plus a chunk or two, never the 64 MiB body.
        expect(pulled).toBeLessThan(1024 / 4);
      } finally {
        secure.destroy();
      }
    },
    40_000,
  );
});
