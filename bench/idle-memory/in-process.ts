/**
 * Live V8 heap per idle keep-alive connection of loch's HTTP/1.1 server side, in process and
 * load-independent (issue 18): the HttpServer with loch's chain (stack.ts serverStack: context ->
 * core -> reuse -> route -> upstream) and loch's connection context,
 * over in-memory streams; N connections each get one GET answered and then stay silent, as
 * bench:idle-memory's idle clients do. Heap used after a full GC, with the connections and
 * without, divided by N, less what the in-memory streams themselves hold (measured the same
 * way). What the runtime's own stream objects (UringStream, TcpStream, the runtime's stream set)
 * hold is not here: that is busy.ts --gc --snapshot-dir and analyze.ts. For a cut in the server,
 * the connection context or the chain: run before and after, the difference is the cut.
 *
 * Run (from bench/): node --expose-gc --conditions=@loch/source --import tsx idle-memory/in-process.ts
 *   [--connections 20000] [--snapshot-dir DIR] (heap snapshots without and with, for analyze.ts)
 *   [--response-bytes 128] (the upstream's answer body; over 3.5 KiB the server's answer write is
 *   DEFERRED, h1/response-writer.ts) [--post 0] (each connection's one request is a POST with this
 *   many body bytes, sent in a read after its head's, so the handler's body read waits; 0: a GET)
 */

import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeHeapSnapshot } from 'node:v8';
import { HttpServer, type HttpStream, type StreamChunk } from '@loch/http';
import { plainFacts, type RecvTarget, type WriteTarget } from '@loch/uring-runtime';
import { parseConfig } from '../../apps/proxy/src/config/load.js';
import { ConnectionContext, type ConnectionCx } from '../../apps/proxy/src/proxy/context.js';
import { RequestHooks } from '../../apps/proxy/src/proxy/core.js';
import { ProxyLog } from '../../apps/proxy/src/proxy/log.js';
import { serverStack } from '../../apps/proxy/src/proxy/stack.js';
import { UpstreamConnector } from '../../apps/proxy/src/proxy/upstream.js';

const { values: args } = parseArgs({
  options: {
    connections: { type: 'string', default: '20000' },
    'snapshot-dir': { type: 'string' },
    'response-bytes': { type: 'string', default: '128' },
    post: { type: 'string', default: '0' },
  },
});
const N = Number(args.connections);
const responseBytes = Number(args['response-bytes']);
const postBytes = Number(args.post);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');

/** A connection's one request: the head, then (a POST) its body in a read of its own. */
const REQUEST: readonly Uint8Array[] =
  postBytes > 0
    ? [
        new Uint8Array(
          Buffer.from(
            `POST /128 HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nUser-Agent: idle\r\nContent-Length: ${postBytes}\r\n\r\n`,
            'latin1',
          ),
        ),
        new Uint8Array(postBytes).fill(0x63),
      ]
    : [
        new Uint8Array(
          Buffer.from(
            'GET /128 HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nUser-Agent: idle\r\nAccept: */*\r\n\r\n',
            'latin1',
          ),
        ),
      ];
const RESPONSE = new Uint8Array(
  Buffer.concat([
    Buffer.from(
      `HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\nContent-Length: ${responseBytes}\r\n` +
        'Connection: keep-alive\r\n\r\n',
      'latin1',
    ),
    Buffer.alloc(responseBytes, 0x61),
  ]),
);
const noop = () => {};
const release = { release: noop };
let port = 1;

/** An in-memory stream: each receive gets the next of `chunks` (if any), later ones wait for `deliver`. */
class MemoryStream implements HttpStream {
  readonly remoteAddress = { family: 'ipv4', address: '127.0.0.1', port: port++ & 0xffff } as const;
  readonly localAddress = { family: 'ipv4', address: '127.0.0.1', port: 18080 } as const;
  readonly driver = 'legacy' as const;
  readonly facts = plainFacts(this.remoteAddress);
  closed = false;
  written = 0;
  #waiting: RecvTarget | null = null;
  readonly #ready: Uint8Array[];

  constructor(chunks: readonly Uint8Array[]) {
    this.#ready = [...chunks];
  }

  protected deliver(bytes: Uint8Array): void {
    const target = this.#waiting;
    if (target === null) {
      this.#ready.push(bytes);
      return;
    }
    this.#waiting = null;
    queueMicrotask(() => target.onRecv({ bytes, ...release } as StreamChunk, undefined));
  }

  recvTo(target: RecvTarget): void {
    const ready = this.#ready.shift();
    if (ready === undefined) {
      this.#waiting = target;
      return;
    }
    queueMicrotask(() => target.onRecv({ bytes: ready, ...release } as StreamChunk, undefined));
  }

  writeTo(data: Uint8Array | readonly Uint8Array[], target: WriteTarget): void {
    const parts = data instanceof Uint8Array ? [data] : data;
    for (const b of parts) this.written += b.byteLength;
    queueMicrotask(() => {
      // Read before the completion: the writer may reuse the written memory from then on.
      this.wrote(parts);
      target.onWritten(undefined);
    });
  }

  protected wrote(_parts: readonly Uint8Array[]): void {}
  async shutdown(): Promise<void> {}
  async close(): Promise<void> {
    this.closed = true;
  }
  setNoDelay(): void {}
}

/** nginx: answers every request written to it, once its head and its Content-Length's bytes are in. */
class Upstream extends MemoryStream {
  #text = '';

  protected override wrote(parts: readonly Uint8Array[]): void {
    for (const b of parts) this.#text += Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
    const end = this.#text.indexOf('\r\n\r\n');
    if (end < 0) return;
    const length = /\r\ncontent-length: *(\d+)/i.exec(this.#text.slice(0, end));
    const whole = end + 4 + (length === null ? 0 : Number(length[1]));
    if (this.#text.length < whole) return;
    this.#text = this.#text.slice(whole);
    this.deliver(RESPONSE);
  }
}

const config = parseConfig(`
[servers.bench]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:18080" }
access_log = false
timeouts = { server_keepalive = "600s" }

[[servers.bench.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:18081" }]
`);
const server = config.servers[0]!;
const log = new ProxyLog('warn', '', noop, noop);
const connector = new UpstreamConnector({ connect: async () => new Upstream([]) }, 30_000);
// loch's chain for this server (stack.ts), over the in-memory upstream.
const lifecycle = { retired: false };
const handler = serverStack({
  server,
  routes: server.routes,
  log,
  lifecycle,
  // As the worker builds it: the server's hooks answer the chain's failures (worker.ts).
  serverHooks: true,
  newConnector: () => connector,
}).make();
const hooks = new RequestHooks(server.key, log, { lifecycle });
const identity = { key: server.key, scheme: 'http' } as const;
// The connection context as loch's worker makes it (worker.ts).
const http = new HttpServer<ConnectionCx>(handler, {
  limits: { methods: 'any' },
  timeouts: { idle: 600_000 },
  context: (stream) =>
    ConnectionContext.empty()
      .set('peerAddr', stream.facts.clientAddress)
      .set('socket', stream)
      .set('driver', stream.driver)
      .set('server', identity),
  // All four hooks, as loch's worker wires them (REVIEW F118).
  ...hooks.serverOptions(),
});

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  gc!();
  gc!();
}

function snapshot(name: string): void {
  const dir = args['snapshot-dir'];
  if (dir !== undefined) console.log(`snapshot ${writeHeapSnapshot(join(dir, `${name}.heapsnapshot`))}`);
}

// Warm up: the code, the pooled upstream connection and the server's shared state exist before
// the baseline.
const warm: MemoryStream[] = [];
for (let i = 0; i < 200; i++) {
  const s = new MemoryStream(REQUEST);
  warm.push(s);
  http.attach(s, null);
}
await settle();

// The in-memory streams' own bytes (not loch's): N of them, held, never served.
let base = process.memoryUsage().heapUsed;
let held: MemoryStream[] = [];
for (let i = 0; i < N; i++) held.push(new MemoryStream(REQUEST));
await settle();
const streamBytes = (process.memoryUsage().heapUsed - base) / N;
held = [];
await settle();

snapshot('without');
base = process.memoryUsage().heapUsed;
const idle: MemoryStream[] = [];
for (let i = 0; i < N; i++) {
  const s = new MemoryStream(REQUEST);
  idle.push(s);
  http.attach(s, null);
}
await settle();
const answered = idle.filter((s) => s.written > 0).length;
const perConnection = (process.memoryUsage().heapUsed - base) / N - streamBytes;
snapshot('with');
console.log(
  `${N} idle connections (${postBytes > 0 ? `POST of ${postBytes} B` : 'GET'}, answer ${responseBytes} B; ` +
    `${answered} answered, ${http.idleConnections} idle in the server): ` +
    `${perConnection.toFixed(0)} B of live heap per connection (server, connection context, chain), ` +
    `in-memory stream ${streamBytes.toFixed(0)} B/conn left out`,
);
process.exit(0);
