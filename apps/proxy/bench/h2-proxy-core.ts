/**
 * In-process cost of one request proxied from HTTP/2 downstream to an HTTP/1.1 upstream through
 * loch's JavaScript, without I/O: the HTTP/2 twin of proxy-core.ts (same chain: context -> core
 * -> reuse -> route -> upstream, stack.ts; the pooled HTTP/1.1 client; in-memory streams whose
 * results go through the runtime's delivery queue). The downstream plays h2load -m M: the
 * preface, SETTINGS with h2load's windows (2^30 - 1) and a connection WINDOW_UPDATE, then M GETs
 * (HEADERS with END_STREAM, HPACK-indexed after the first) in one chunk, the next M once all M
 * answers were written. The upstream answers every request written to it with nginx's head and a
 * `--size` byte body, so M upstream connections are pooled.
 *
 * It reports CPU time per request (best of the rounds), heap bytes allocated per request (read in
 * a window without garbage collection: run with `--expose-gc` and a large young generation,
 * `--min-semi-space-size=256 --max-semi-space-size=256`, or the figure says it saw a collection), and with `--promises` the
 * promises made per request (async_hooks). The counts do not depend on the machine's load; run it
 * under callgrind for instructions (differences of two request counts).
 *
 * Run: node --conditions=@loch/source --import tsx bench/h2-proxy-core.ts [N] [--size 128] [--m 16]
 * [--rounds 5] [--promises]. Not a test and not the wire benchmark (bench/http2 at the repository
 * root).
 */
import { createHook } from 'node:async_hooks';
import { PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { getHeapStatistics } from 'node:v8';
import {
  CONNECTION_PREFACE,
  encodeHeaders,
  encodeSettings,
  encodeSettingsAck,
  encodeWindowUpdate,
  FrameFlag,
  FrameType,
  HpackEncoder,
} from '@loch/http/h2';
import { MemoryStream } from '../../../bench/lib/memory-stream.js';
import { benchProxy } from './bench-proxy.js';

const { values: flags, positionals } = parseArgs({
  options: {
    size: { type: 'string', default: '128' },
    m: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '5' },
    promises: { type: 'boolean', default: false },
  },
  allowPositionals: true,
});
const N = Number(positionals[0] ?? 100_000);
const SIZE = Number(flags.size);
const M = Number(flags.m);
const ROUNDS = Number(flags.rounds);
const WINDOW = 2 ** 30 - 1;

const RESPONSE = new Uint8Array(
  Buffer.concat([
    Buffer.from(
      'HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 03 Dec 2026 15:26:53 GMT\r\n' +
        `Content-Type: text/plain\r\nContent-Length: ${SIZE}\r\nLast-Modified: Thu, 03 Dec 2026 15:25:59 GMT\r\n` +
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
    // The last batch holds the rest.
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
  /** Counts the streams that ended in a written piece (the server writes whole frames). */
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
    // The batch just answered: M requests, or the rest in the last one.
    const batch = Math.min(M, N - (this.next - 2) * M);
    if (this.next === 1 || this.ended >= batch) {
      this.ended -= this.next === 1 ? 0 : batch;
      this.deliver(this.next < this.chunks.length ? this.chunks[this.next++]! : null);
    }
  }
}

/** nginx: answers every request written to it. */
class Upstream extends MemoryStream {
  protected override wrote(): void {
    this.deliver(RESPONSE);
  }
}

const upstreams: Upstream[] = [];
const { http, connector, log } = benchProxy(async () => {
  const up = new Upstream();
  upstreams.push(up);
  return up;
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
/** Collections so far, those not yet reported to the observer's callback included. */
const collectionsNow = (): number => {
  collections += gcObserver.takeRecords().length;
  return collections;
};
const gc = (globalThis as { gc?: () => void }).gc;

let best = Number.POSITIVE_INFINITY;
let heapPerRequest = Number.NaN;
let perAnswer = 0;
for (let round = 0; round < ROUNDS; round++) {
  const down = new Downstream(script());
  promises = 0;
  promiseHook?.enable();
  // With --expose-gc the round starts from an empty young generation.
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
}
console.log(
  `h2 proxy core ${SIZE} B, -m ${M}: ${best.toFixed(3)} CPU us/request (best of ${ROUNDS} x ${N}), ` +
    `${Number.isNaN(heapPerRequest) ? 'heap: a collection in every round' : `${heapPerRequest.toFixed(0)} heap bytes/request`}, ` +
    `${perAnswer.toFixed(0)} bytes/answer, ${upstreams.length} upstream connection(s)` +
    (promiseHook === null ? '' : `, ${(promises / N).toFixed(2)} promises/request`),
);
log.flush();
connector.close();
