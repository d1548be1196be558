/**
 * In-process cost of H2ClientSession per exchange, without I/O: an in-memory stream plays an
 * HTTP/2 server that answers every request HEADERS the client writes with a response HEADERS
 * (HPACK-indexed after the first) and one 128-byte DATA frame with END_STREAM, prepared before
 * the run so the measurement is the client's. `C` exchanges are in flight at once (as a proxy's
 * shared upstream session carries them), each GET sent with `exchange()` and its body read to
 * the end. Reports CPU microseconds per exchange (best of 5) and the heap bytes allocated per
 * exchange (heapUsed growth over a run with a young generation large enough that no GC runs;
 * the run says so if one did). The client twin of h2-server-core.ts.
 *
 * Run: node --conditions=@loch/source --import tsx --min-semi-space-size=256 --max-semi-space-size=256 \
 *   --expose-gc bench/h2-client-core.ts [N] [C]
 */
import { PerformanceObserver } from 'node:perf_hooks';
import {
  createRequest,
  type HttpExchangeTarget,
  HttpHeaders,
  type HttpResponse,
  type HttpStream,
  type StreamRecvTarget,
} from '@loch/http';
import {
  encodeData,
  encodeHeaders,
  encodeSettings,
  encodeSettingsAck,
  H2ClientSession,
  HpackEncoder,
} from '@loch/http/h2';
import { plainFacts } from '@loch/uring-runtime';

const N = Number(process.argv[2] ?? 100_000);
const C = Number(process.argv[3] ?? 16);
const BODY = new Uint8Array(128).fill(0x78);
const FIELDS: [string, string][] = [
  [':status', '200'],
  ['content-type', 'text/plain'],
  ['content-length', '128'],
  ['server', 'bench'],
];

/** Response frames per stream id, made before the run (stream ids 1, 3, 5...). */
function responses(n: number): Uint8Array[] {
  const enc = new HpackEncoder();
  const first = enc.encode(FIELDS);
  const indexed = enc.encode(FIELDS);
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const id = 2 * i + 1;
    out.push(
      Buffer.concat([
        encodeHeaders(id, i === 0 ? first : indexed, { endStream: false }),
        encodeData(id, BODY, { endStream: true }),
      ]),
    );
  }
  return out;
}

/** An in-memory server: answers each HEADERS frame the client writes with its stream's response. */
function serverStream(answers: Uint8Array[]): HttpStream {
  let pending: Uint8Array[] = [
    Buffer.concat([encodeSettings({ maxConcurrentStreams: 1000 }), encodeSettingsAck()]),
  ];
  let reader: StreamRecvTarget | null = null;
  let prefaceLeft = 24;
  const deliver = () => {
    if (reader === null || pending.length === 0) return;
    const target = reader;
    reader = null;
    const bytes = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
    pending = [];
    queueMicrotask(() => target.onRecv({ bytes, release() {} }, undefined));
  };
  /** Walks the frames of one write (after the client preface) for HEADERS. */
  const scan = (b: Uint8Array) => {
    let at = 0;
    if (prefaceLeft > 0) {
      const skip = Math.min(prefaceLeft, b.length);
      prefaceLeft -= skip;
      at = skip;
    }
    while (at + 9 <= b.length) {
      const length = (b[at]! << 16) | (b[at + 1]! << 8) | b[at + 2]!;
      if (b[at + 3] === 0x1) {
        const id = ((b[at + 5]! & 0x7f) << 24) | (b[at + 6]! << 16) | (b[at + 7]! << 8) | b[at + 8]!;
        pending.push(answers[(id - 1) / 2]!);
      }
      at += 9 + length;
    }
  };
  return {
    remoteAddress: { family: 'ipv4', address: '127.0.0.1', port: 1 },
    localAddress: { family: 'ipv4', address: '127.0.0.1', port: 2 },
    driver: 'legacy',
    closed: false,
    facts: plainFacts({ family: 'ipv4', address: '127.0.0.1', port: 1 }),
    recvTo(target) {
      reader = target;
      deliver();
    },
    writeTo(data, target) {
      // Frames never straddle writes here: the client writes whole frames.
      if (data instanceof Uint8Array) scan(data);
      else for (const b of data) scan(b);
      queueMicrotask(() => {
        target.onWritten(undefined);
        deliver();
      });
    },
    async shutdown() {},
    async close() {},
    setNoDelay() {},
  };
}

/** Runs N exchanges, C at once; resolves when all bodies were read. */
function run(session: H2ClientSession, n: number): Promise<void> {
  const headers = new HttpHeaders([
    ['host', 'bench.test'],
    ['user-agent', 'loch-bench'],
    ['accept', '*/*'],
  ]);
  let started = 0;
  let done = 0;
  return new Promise<void>((resolve, reject) => {
    const readBody = async (res: HttpResponse) => {
      for await (const _ of res.body) {
        // drained
      }
      done++;
      if (done === n) resolve();
      else if (started < n) next();
    };
    const target: HttpExchangeTarget = {
      onResponse: (res) => {
        readBody(res).catch(reject);
      },
      onFailure: reject,
    };
    const next = () => {
      started++;
      session.exchange(createRequest('GET', '/hello', { headers }), {}, target);
    };
    for (let i = 0; i < Math.min(C, n); i++) next();
  });
}

let gcs = 0;
new PerformanceObserver((list) => {
  gcs += list.getEntries().length;
}).observe({ entryTypes: ['gc'] });
const gc = (globalThis as { gc?: () => void }).gc;

let best = Number.POSITIVE_INFINITY;
for (let round = 0; round < 5; round++) {
  const session = new H2ClientSession(serverStream(responses(N)), { authority: 'bench.test' });
  const before = process.cpuUsage();
  await run(session, N);
  const used = process.cpuUsage(before);
  best = Math.min(best, (used.user + used.system) / N);
  await session.close();
}

// Allocation: a shorter run between two GCs, so its garbage is all still in the heap.
const M = Math.min(N, 10_000);
const session = new H2ClientSession(serverStream(responses(M)), { authority: 'bench.test' });
await run(session, Math.min(C, M)); // warm the session (SETTINGS, HPACK table)
await session.close();
const answers = responses(M);
const measured = new H2ClientSession(serverStream(answers), { authority: 'bench.test' });
gc?.();
// gc entries reach the observer a little later: let the forced one arrive before counting.
await new Promise((r) => setTimeout(r, 50));
const gcsBefore = gcs;
const heap0 = process.memoryUsage().heapUsed;
await run(measured, M);
const heap1 = process.memoryUsage().heapUsed;
await new Promise((r) => setTimeout(r, 50));
const gcRan = gcs > gcsBefore;
console.log(
  `h2 client session: ${best.toFixed(2)} CPU us/exchange (best of 5 x ${N}, ${C} at once), ` +
    `${Math.round((heap1 - heap0) / M)} heap bytes/exchange${gc === undefined ? ' (no --expose-gc)' : ''}${gcRan ? ' (a GC ran: a lower bound; raise --max-semi-space-size)' : ''}`,
);
