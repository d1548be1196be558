/**
 * In-process cost of one request proxied from HTTP/2 downstream to an HTTP/2 upstream (loch's
 * shared H2ClientSession through the H2Connector, `upstream_http_version = "http2"`) beside the
 * same request to an HTTP/1.1 upstream (the pooled HttpClient, the default), without I/O, so the
 * two are counted side by side by the same harness.
 *
 * The downstream plays h2load -m M (M GETs in one chunk, the next M once all M answers were
 * written). `--upstream h1` (default) answers every request written to it with nginx's
 * head and a `--size` byte body (M pooled connections); `--upstream h2` plays nginx's HTTP/2
 * server on one connection: its SETTINGS (max_concurrent_streams 128, 64 KiB stream window), the
 * ACK of ours, and for every request HEADERS it was written a response HEADERS (nginx's fields,
 * encoded as nginx encodes them: nginxHead) and DATA frames of at most 8 KiB carrying the body,
 * the answers of one write in one chunk, as nginx answers what one read gave it.
 *
 * Reports CPU time per request (best of the rounds), heap bytes allocated per request (run with
 * `--expose-gc --min-semi-space-size=256 --max-semi-space-size=256`), with `--promises` the
 * promises made per request (async_hooks), and for the h2 upstream what loch wrote to it per
 * request: writes (writeTo calls), frames by type (HEADERS, WINDOW_UPDATE, ...), bytes. The counts
 * do not depend on the machine's load; run it under callgrind for instructions (differences of
 * two request counts).
 *
 * Run: node --conditions=@loch/source --import tsx bench/h2-proxy-core.ts [N] [--upstream h1|h2]
 * [--size 128] [--m 16] [--rounds 5] [--promises]. Not a test and not the wire benchmark
 * (bench/http2 at the repository root).
 */
import { createHook } from 'node:async_hooks';
import { PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { getHeapStatistics } from 'node:v8';
import { HttpServer, type HttpStream, type StreamChunk } from '@loch/http';
import {
  CONNECTION_PREFACE,
  encodeData,
  encodeHeaders,
  encodeSettings,
  encodeSettingsAck,
  encodeWindowUpdate,
  FrameFlag,
  FrameType,
  HpackEncoder,
  huffmanEncodeToBytes,
} from '@loch/http/h2';
import { FactoryStack } from '@loch/service-async';
import {
  deliverRecv,
  deliverWritten,
  plainFacts,
  type RecvTarget,
  type WriteTarget,
} from '@loch/uring-runtime';
import { MemoryStream } from '../../../bench/lib/memory-stream.js';
import { parseConfig } from '../src/config/load.js';
import { type ConnectionCx, ProxyContext } from '../src/proxy/context.js';
import { ContextHandler, coreLayer, RequestHooks } from '../src/proxy/core.js';
import { ProxyLog } from '../src/proxy/log.js';
import { reuseLayer } from '../src/proxy/reuse.js';
import { routeLayer } from '../src/proxy/route.js';
import { UpstreamConnector, upstreamFactory } from '../src/proxy/upstream.js';

const { values: flags, positionals } = parseArgs({
  options: {
    upstream: { type: 'string', default: 'h1' },
    size: { type: 'string', default: '128' },
    m: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '5' },
    promises: { type: 'boolean', default: false },
  },
  allowPositionals: true,
});
const N = Number(positionals[0] ?? 100_000);
const UPSTREAM = flags.upstream === 'h1' ? 'h1' : 'h2';
const SIZE = Number(flags.size);
const M = Number(flags.m);
const ROUNDS = Number(flags.rounds);
const WINDOW = 2 ** 30 - 1;
const noop = () => {};

const LAST_MODIFIED = 'Thu, 03 Dec 2026 15:25:59 GMT';
const DATE = 'Thu, 03 Dec 2026 15:26:53 GMT';

const H1_RESPONSE = new Uint8Array(
  Buffer.concat([
    Buffer.from(
      `HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: ${DATE}\r\n` +
        `Content-Type: text/plain\r\nContent-Length: ${SIZE}\r\nLast-Modified: ${LAST_MODIFIED}\r\n` +
        'Connection: keep-alive\r\nETag: "6b118a07-80"\r\nAccept-Ranges: bytes\r\n\r\n',
      'latin1',
    ),
    Buffer.alloc(SIZE, 0x61),
  ]),
);

/** The chunks h2load would send: the opening, then N / M batches of M GETs. */
function script(): Uint8Array[] {
  const enc = new HpackEncoder();
  const fields: [string, string][] = [
    [':method', 'GET'],
    [':path', `/${SIZE}`],
    [':scheme', 'http'],
    [':authority', '127.0.0.1:18080'],
    ['user-agent', 'h2load nghttp2/1.52.0'],
  ];
  const chunks: Uint8Array[] = [
    new Uint8Array(
      Buffer.concat([
        CONNECTION_PREFACE,
        encodeSettings({ initialWindowSize: WINDOW, maxConcurrentStreams: 100 }),
        encodeWindowUpdate(0, WINDOW - 65535),
      ]),
    ),
  ];
  let id = 1;
  for (let i = 0; i < N; i += M) {
    const frames: Uint8Array[] = i === 0 ? [encodeSettingsAck()] : [];
    const batch = Math.min(M, N - i);
    for (let j = 0; j < batch; j++, id += 2)
      frames.push(encodeHeaders(id, enc.encode(fields), { endStream: true }));
    chunks.push(new Uint8Array(Buffer.concat(frames)));
  }
  return chunks;
}

/** The client: the next batch once every answer of the last one ended (END_STREAM seen). */
class Downstream extends MemoryStream {
  private next = 1;
  private ended = 0;
  answered = 0;
  constructor(private readonly chunks: Uint8Array[]) {
    super(chunks[0]);
  }
  protected override take(data: Uint8Array | readonly Uint8Array[]): number {
    if (data instanceof Uint8Array) this.frames(data);
    else for (const b of data) this.frames(b);
    return super.take(data);
  }
  private frames(b: Uint8Array): void {
    for (let at = 0; at + 9 <= b.length; ) {
      const length = (b[at]! << 16) | (b[at + 1]! << 8) | b[at + 2]!;
      const type = b[at + 3]!;
      if (
        (type === FrameType.DATA || type === FrameType.HEADERS) &&
        (b[at + 4]! & FrameFlag.END_STREAM) !== 0
      ) {
        this.ended++;
        this.answered++;
      }
      at += 9 + length;
    }
  }
  protected override wrote(): void {
    const batch = Math.min(M, N - (this.next - 2) * M);
    if (this.next === 1 || this.ended >= batch) {
      this.ended -= this.next === 1 ? 0 : batch;
      this.deliver(this.next < this.chunks.length ? this.chunks[this.next++]! : null);
    }
  }
}

/** nginx over HTTP/1.1: answers every request written to it. */
class H1Upstream extends MemoryStream {
  protected override wrote(): void {
    this.deliver(H1_RESPONSE);
  }
}

/** What loch wrote to the HTTP/2 upstream (all connections), for the per-request figures. */
const wire = { writes: 0, bytes: 0, frames: [] as number[] };

const FRAME_NAMES: Record<number, string> = {
  0: 'DATA',
  1: 'HEADERS',
  3: 'RST_STREAM',
  4: 'SETTINGS',
  6: 'PING',
  7: 'GOAWAY',
  8: 'WINDOW_UPDATE',
  9: 'CONTINUATION',
};

/**
 * nginx 1.22's response head (ngx_http_v2_header_filter): `:status 200` indexed, every other
 * field a literal with incremental indexing of a static-table name, its value Huffman-coded when
 * shorter; nginx never refers to its dynamic table, so the decoder inserts (and evicts) every
 * field of every response.
 */
function nginxHead(): Uint8Array {
  const fields: [number, string][] = [
    [54, 'nginx/1.22.1'], // server
    [33, DATE], // date
    [31, 'text/plain'], // content-type
    [28, String(SIZE)], // content-length
    [44, LAST_MODIFIED], // last-modified
    [34, '"6b118a07-80"'], // etag
    [18, 'bytes'], // accept-ranges
  ];
  const out: number[] = [0x88];
  for (const [index, value] of fields) {
    out.push(0x40 | index);
    const huffman = huffmanEncodeToBytes(value);
    if (huffman.length < value.length) out.push(0x80 | huffman.length, ...huffman);
    else out.push(value.length, ...Buffer.from(value, 'latin1'));
  }
  return Uint8Array.from(out);
}

/**
 * One answer's frames for stream 1 (HEADERS, then DATA frames of at most 8 KiB: nginx's
 * http2_chunk_size), built once; the mock copies it and writes each answer's stream id at
 * ANSWER_IDS, so the peer's own work stays out of loch's counts.
 */
const ANSWER_FRAMES: Uint8Array[] = [encodeHeaders(1, nginxHead(), { endStream: SIZE === 0 })];
for (let at = 0; at < SIZE; at += 8192) {
  const end = Math.min(SIZE, at + 8192);
  ANSWER_FRAMES.push(encodeData(1, new Uint8Array(end - at).fill(0x61), { endStream: end === SIZE }));
}
const ANSWER = new Uint8Array(Buffer.concat(ANSWER_FRAMES));
/** Offsets of the stream id of each frame of ANSWER. */
const ANSWER_IDS: number[] = [];
for (let at = 0, i = 0; i < ANSWER_FRAMES.length; at += ANSWER_FRAMES[i]!.length, i++)
  ANSWER_IDS.push(at + 5);

/**
 * nginx over HTTP/2 (h2c): SETTINGS first, then per written chunk the answers to the request
 * HEADERS in it, queued for the next receive in order (a receive takes everything queued).
 */
class H2Upstream implements HttpStream {
  readonly remoteAddress = { family: 'ipv4', address: '127.0.0.1', port: 18081 } as const;
  readonly localAddress = { family: 'ipv4', address: '127.0.0.1', port: 40000 } as const;
  readonly driver = 'legacy' as const;
  readonly facts = plainFacts(this.remoteAddress);
  closed = false;
  #waiting: RecvTarget | null = null;
  #queued: Uint8Array[] = [];
  readonly #ids: number[] = [];
  #answers = 0;
  readonly #ring = Array.from({ length: 8 }, () => new Uint8Array(ANSWER.length * 128));
  #ringAt = 0;

  constructor() {
    // nginx's opening: SETTINGS (http2_max_concurrent_streams 128, its 64 KiB window,
    // http2_chunk_size frames) and a connection WINDOW_UPDATE.
    this.#queued.push(
      encodeSettings({ maxConcurrentStreams: 128, initialWindowSize: 65536, maxFrameSize: 16_777_215 }),
      encodeWindowUpdate(0, 2_147_418_112),
    );
  }

  recvTo(target: RecvTarget): void {
    if (this.#queued.length === 0) {
      this.#waiting = target;
      return;
    }
    deliverRecv(target, this.#take(), undefined);
  }

  #take(): StreamChunk {
    const q = this.#queued;
    this.#queued = [];
    const bytes = q.length === 1 ? q[0]! : new Uint8Array(Buffer.concat(q));
    return { bytes, release: noop };
  }

  writeTo(data: Uint8Array | readonly Uint8Array[], target: WriteTarget): void {
    wire.writes++;
    const before = this.#queued.length;
    this.#answers = 0;
    if (data instanceof Uint8Array) this.#frames(data);
    else for (const b of data) this.#frames(b);
    this.#answer();
    deliverWritten(target, undefined);
    // The peer's turn: its answers after the write's result (the queue keeps order).
    if (this.#queued.length > before && this.#waiting !== null) {
      const t = this.#waiting;
      this.#waiting = null;
      deliverRecv(t, this.#take(), undefined);
    }
  }

  #frames(b: Uint8Array): void {
    wire.bytes += b.byteLength;
    let at = 0;
    if (b.byteLength >= 24 && b[0] === 0x50 && b[1] === 0x52 && b[2] === 0x49) at = 24; // PRI * ...
    const ids = this.#ids;
    for (; at + 9 <= b.length; ) {
      const length = (b[at]! << 16) | (b[at + 1]! << 8) | b[at + 2]!;
      const type = b[at + 3]!;
      const flags = b[at + 4]!;
      wire.frames[type] = (wire.frames[type] ?? 0) + 1;
      if (type === FrameType.SETTINGS && (flags & FrameFlag.ACK) === 0)
        this.#queued.push(encodeSettingsAck());
      else if (type === FrameType.HEADERS && (flags & FrameFlag.END_STREAM) !== 0)
        ids[this.#answers++] =
          ((b[at + 5]! & 0x7f) << 24) | (b[at + 6]! << 16) | (b[at + 7]! << 8) | b[at + 8]!;
      at += 9 + length;
    }
  }

  /** The answers to the requests of the write just taken, queued as one chunk. */
  #answer(): void {
    const answers = this.#answers;
    const ids = this.#ids;
    if (answers === 0) return;
    // The answers of this piece in one buffer (reused: a few are in use at once at most,
    // and loch copies what it keeps), the template with each answer's stream id.
    const ring = this.#ring;
    let out = ring[this.#ringAt]!;
    this.#ringAt = (this.#ringAt + 1) % ring.length;
    if (out.length < ANSWER.length * answers) out = new Uint8Array(ANSWER.length * answers);
    for (let i = 0; i < answers; i++) {
      const base = i * ANSWER.length;
      out.set(ANSWER, base);
      const id = ids[i]!;
      for (const off of ANSWER_IDS) {
        out[base + off] = (id >>> 24) & 0x7f;
        out[base + off + 1] = (id >>> 16) & 0xff;
        out[base + off + 2] = (id >>> 8) & 0xff;
        out[base + off + 3] = id & 0xff;
      }
    }
    this.#queued.push(out.subarray(0, ANSWER.length * answers));
  }

  async shutdown(): Promise<void> {}
  async close(): Promise<void> {
    this.closed = true;
  }
  setNoDelay(): void {}
}

// The proxy of bench-proxy.ts, with the route's upstream protocol chosen.
const config = parseConfig(`
[servers.bench]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:18080" }
access_log = false
upstream_http_version = "${UPSTREAM === 'h2' ? 'http2' : 'http11'}"

[[servers.bench.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:18081" }]
`);
const server = config.servers[0]!;
const log = new ProxyLog('warn', '', noop, noop);
let upstreams = 0;
const connector = new UpstreamConnector(
  {
    connect: async () => {
      upstreams++;
      return UPSTREAM === 'h2' ? new H2Upstream() : new H1Upstream();
    },
  },
  30_000,
);
const lifecycle = { retired: false };
const handler = new FactoryStack({ server, routes: server.routes, log, lifecycle, serverHooks: true })
  .replace(
    upstreamFactory({
      timeouts: { connect: server.timeouts.upstreamConnect, read: server.timeouts.upstreamRead },
      newConnector: () => connector,
    }),
  )
  .push(routeLayer())
  .push(reuseLayer())
  .push(coreLayer())
  .pushMapTarget((core) => new ContextHandler(core, core.accessLog))
  .factory.make();
const hooks = new RequestHooks(server.key, log, { lifecycle });
const http = new HttpServer<ConnectionCx>(handler, {
  limits: { methods: 'any' },
  context: (stream) =>
    ProxyContext.empty()
      .set('peerAddr', stream.facts.clientAddress)
      .set('socket', stream)
      .set('driver', stream.driver)
      .set('server', { key: server.key, scheme: 'http' }),
  // The chain's hooks, as loch's worker wires them (the access log's lines come from them).
  ...hooks.serverOptions(),
});

let promises = 0;
const promiseHook = flags.promises
  ? createHook({
      init(_id, type) {
        if (type === 'PROMISE') promises++;
      },
    })
  : null;
let collections = 0;
const gcObserver = new PerformanceObserver((list) => {
  collections += list.getEntries().length;
});
gcObserver.observe({ entryTypes: ['gc'] });
const collectionsNow = (): number => {
  collections += gcObserver.takeRecords().length;
  return collections;
};
const gc = (globalThis as { gc?: () => void }).gc;

let best = Number.POSITIVE_INFINITY;
let heapPerRequest = Number.NaN;
let perAnswer = 0;
let perRequestWire = '';
for (let round = 0; round < ROUNDS; round++) {
  const down = new Downstream(script());
  promises = 0;
  wire.writes = 0;
  wire.bytes = 0;
  wire.frames = [];
  promiseHook?.enable();
  gc?.();
  await new Promise((r) => setImmediate(r));
  const seen = collectionsNow();
  const heapBefore = getHeapStatistics().used_heap_size;
  const before = process.cpuUsage();
  await http.serveConnection(down);
  const used = process.cpuUsage(before);
  const heapAfter = getHeapStatistics().used_heap_size;
  promiseHook?.disable();
  if (down.answered !== N) throw new Error(`${down.answered} answers for ${N} requests`);
  if (collectionsNow() === seen) heapPerRequest = (heapAfter - heapBefore) / N;
  best = Math.min(best, (used.user + used.system) / N);
  perAnswer = down.written / N;
  if (UPSTREAM === 'h2') {
    const frames = [...wire.frames.entries()]
      .filter(([, n]) => n !== undefined)
      .map(([t, n]) => `${FRAME_NAMES[t] ?? t} ${(n! / N).toFixed(3)}`)
      .join(', ');
    perRequestWire = `; upstream per request: ${(wire.writes / N).toFixed(3)} writes, ${(wire.bytes / N).toFixed(1)} bytes, frames ${frames}`;
  }
}
console.log(
  `h2 -> ${UPSTREAM} proxy core ${SIZE} B, -m ${M}: ${best.toFixed(3)} CPU us/request (best of ${ROUNDS} x ${N}), ` +
    `${Number.isNaN(heapPerRequest) ? 'heap: a collection in every round' : `${heapPerRequest.toFixed(0)} heap bytes/request`}, ` +
    `${perAnswer.toFixed(0)} bytes/answer, ${upstreams} upstream connection(s)` +
    (promiseHook === null ? '' : `, ${(promises / N).toFixed(2)} promises/request`) +
    perRequestWire,
);
log.flush();
connector.close();
