/**
 * In-process cost of one proxied HTTP/1.1 request through loch's JavaScript, without I/O: the
 * HttpServer with the server chain loch builds (context -> core -> reuse -> route -> upstream,
 * stack.ts) and the pooled HTTP/1.1 client, over in-memory streams. The downstream stream hands
 * the server a keep-alive GET once the previous answer was written (a client waiting for each
 * answer); the upstream stream answers every request it is written with nginx's head and a
 * `--size` byte body. Results are delivered through the runtime's own delivery queue
 * (deliverRecv/deliverWritten: one microtask per batch, no promise or closure per result), as
 * the runtime's streams deliver them. What the runtime and the kernel cost (submissions,
 * completions, copies) is not here: this is the JS work a change to the server loop, the chain
 * or the client moves, measured as CPU time (best of 5 rounds), steadier than a wrk run on a
 * shared machine; run it under callgrind for instruction counts (differences of two request
 * counts).
 *
 * Run: node --conditions=@loch/source --import tsx bench/proxy-core.ts [N] [--size 128] [--rounds 5]
 * [--log] [--log-file PATH] [--metrics] [--target /path?query] [--promises [--sites]] [--wire] (`--metrics`: metrics recorded,
 * as a worker of a config with an `[admin]` listener records them; `--log`: the access log on, written to
 * nowhere (stdout's buffer, dropped); `--log-file PATH`: the access log on, to that file as
 * `access_log = { path }` writes it (a file sink, as bench:http-proxy's "as shipped" runs);
 * `--promises`: count the promises made per request with async_hooks; `--sites`: and where they
 * are made). Heap bytes allocated per request are read in a round without a garbage collection:
 * run with `--expose-gc --min-semi-space-size=256 --max-semi-space-size=256` and N up to
 * ~50,000 (else the figure says it saw a collection), as h2-proxy-core.ts. Not a test and not the wire benchmark
 * (bench/http-proxy at the repository root).
 *
 * `--wire` (with `--promises`): the same chain over real loopback sockets of the runtime's
 * driver (LOCH_DRIVER=uring|legacy), a node:net client sending the next GET once an answer is
 * complete and a node:net upstream answering each request: both make no promises, so the count
 * is loch's own with the driver's completion batches, which the in-memory streams do not have.
 * Its CPU time includes both peers and the kernel: promises only. With `--wire` the JS -> native
 * crossings of the io_uring ring are printed per request too (@loch/native's crossings():
 * submit() calls, completion callbacks), with the one client in step (one request at a time:
 * no batching across connections, the most crossings a request can make; `--clients K`: K
 * clients at once, N / K requests each, whose completions the ring batches).
 */
import { createHook } from 'node:async_hooks';
import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import { PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { getHeapStatistics } from 'node:v8';
import type { StreamListener } from '@loch/uring-runtime';
import { createRuntime } from '@loch/uring-runtime';
import { MemoryStream } from '../../../bench/lib/memory-stream.js';
import { parseConfig } from '../src/config/load.js';
import { workerMetrics } from '../src/metrics/recorder.js';
import { MetricsRegistry } from '../src/metrics/registry.js';
import { benchProxy } from './bench-proxy.js';

const { values: flags, positionals } = parseArgs({
  options: {
    size: { type: 'string', default: '128' },
    rounds: { type: 'string', default: '5' },
    log: { type: 'boolean', default: false },
    'log-file': { type: 'string' },
    promises: { type: 'boolean', default: false },
    wire: { type: 'boolean', default: false },
    sites: { type: 'boolean', default: false },
    clients: { type: 'string', default: '1' },
    metrics: { type: 'boolean', default: false },
    target: { type: 'string', default: '/b128' },
  },
  allowPositionals: true,
});
const N = Number(positionals[0] ?? 200_000);
const SIZE = Number(flags.size);
const ROUNDS = Number(flags.rounds);
const LOG_FILE = flags['log-file'];
const ACCESS_LOG = flags.log || LOG_FILE !== undefined;
// `--target`: the request line's target. wrk's 5-character one hides what a real target pays per
// character (the access log's escaping, the router's path scan): count with a realistic one too.
const TARGET = flags.target;
if (!/^\/[\x21-\x7e]*$/.test(TARGET))
  throw new Error(`--target: an origin-form target of visible ASCII, got ${JSON.stringify(TARGET)}`);

// Plain Uint8Arrays, as the runtime delivers received bytes (a Buffer's subarray would run
// Node's JavaScript FastBuffer constructor on every body step: not what loch pays).
const REQUEST = new Uint8Array(
  Buffer.from(
    `GET ${TARGET} HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n`,
    'latin1',
  ),
);
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
const noop = () => {};

if (flags.metrics) {
  // Metrics recorded, as a worker of a config with an [admin] listener records them (the same
  // server and route as benchProxy's, so the same series).
  const config = parseConfig(`
[admin]
listener = { type = "socket", value = "127.0.0.1:18082" }

[servers.bench]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:18080" }

[[servers.bench.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:18081" }]
`);
  workerMetrics.attach(0, new MetricsRegistry(config, 1).share());
  if (!workerMetrics.enabled) throw new Error('--metrics: recording did not turn on');
}

/** The client: one request now, the next once an answer (head and body: one write) went out. */
class Downstream extends MemoryStream {
  left = 0;
  constructor(n: number) {
    super();
    this.left = n - 1;
    this.deliver(REQUEST);
  }
  protected override wrote(): void {
    this.deliver(this.left-- > 0 ? REQUEST : null);
  }
}

/** nginx: answers every request written to it. */
class Upstream extends MemoryStream {
  protected override wrote(): void {
    this.deliver(RESPONSE);
  }
}

const upstreams: Upstream[] = [];
const runtime = flags.wire ? await createRuntime({ log: noop }) : null;
/** --wire: nginx's part played by node:net, answering every request head it is sent. */
const wireUpstream = flags.wire
  ? createServer((s) => {
      s.setNoDelay(true);
      let text = '';
      s.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        for (let end = text.indexOf('\r\n\r\n'); end >= 0; end = text.indexOf('\r\n\r\n')) {
          text = text.slice(end + 4);
          s.write(RESPONSE);
        }
      });
    })
  : null;
if (wireUpstream !== null) await new Promise<void>((resolve) => wireUpstream.listen(0, '127.0.0.1', resolve));
const wirePort = (wireUpstream?.address() as { port: number } | null)?.port ?? 0;
const { http, connector, log } = benchProxy(async () => {
  if (runtime !== null) return runtime.driver.connectTcp({ host: '127.0.0.1', port: wirePort });
  const up = new Upstream();
  upstreams.push(up);
  return up;
}, ACCESS_LOG);
if (LOG_FILE !== undefined) {
  // The server's access log to a file, as loch's config would route it (the log's file sink).
  log.commitAccess(
    log.prepareAccess(
      parseConfig(`
[servers.bench]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:18080" }
access_log = { path = ${JSON.stringify(LOG_FILE)} }

[[servers.bench.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:18081" }]
`),
    ),
  );
}

// `--promises`: promises made per request (async_hooks, the last round's; the hook slows the
// run, so its CPU time is not the figure then). A count does not depend on the machine's load.
let promises = 0;
/** `--sites` (with `--promises`): where the promises are made (stack frames, counted). */
const sites = new Map<string, number>();
const promiseHook = flags.promises
  ? createHook({
      init(_id, type) {
        if (type !== 'PROMISE') return;
        promises++;
        if (flags.sites) {
          const stack = (new Error().stack ?? '').split('\n').slice(2, 7).join(' <- ');
          sites.set(stack, (sites.get(stack) ?? 0) + 1);
        }
      },
    })
  : null;
/** Prints the promise sites counted per request (`--sites`), most first. */
function printSites(n: number): void {
  for (const [site, count] of [...sites].sort((a, b) => b[1] - a[1]).slice(0, 12))
    console.log(`${(count / n).toFixed(2)}/request: ${site.replace(/\s+/g, ' ')}`);
  sites.clear();
}

/**
 * --wire: `n` keep-alive GETs through loch's listener on the runtime's driver, one at a time from
 * a node:net client; resolves once the last answer is complete.
 */
async function overTheWire(listener: StreamListener, n: number): Promise<void> {
  const accepted = listener.accept();
  const port = (listener.localAddress as { port: number }).port;
  const client: Socket = tcpConnect(port, '127.0.0.1');
  client.setNoDelay(true);
  void accepted.then((stream) => http.serveConnection(stream));
  await new Promise<void>((resolve, reject) => {
    let text = '';
    let left = n;
    client.on('error', reject);
    client.on('connect', () => client.write(REQUEST));
    client.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      for (;;) {
        const end = text.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = Number(/content-length: *(\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
        if (text.length < end + 4 + length) return;
        text = text.slice(end + 4 + length);
        if (--left === 0) {
          client.end();
          resolve();
          return;
        }
        client.write(REQUEST);
      }
    });
  });
}

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
let perRequest = 0;
let heapPerRequest = Number.NaN;
if (runtime !== null) {
  const listener = await runtime.driver.listenTcp({ host: '127.0.0.1', port: 0 });
  await overTheWire(listener, 2_000); // warm: the upstream connection made, code optimized
  // The uring driver's binding (its StreamHost); the legacy driver has none.
  const binding = (runtime.driver as { host?: { binding?: { crossings?(): [number, number, number] } } }).host
    ?.binding;
  const crossings = typeof binding?.crossings === 'function' ? () => binding.crossings!() : null;
  for (let round = 0; round < ROUNDS; round++) {
    promises = 0;
    promiseHook?.enable();
    const c0 = crossings?.();
    const clients = Number(flags.clients);
    await Promise.all(Array.from({ length: clients }, () => overTheWire(listener, Math.floor(N / clients))));
    const c1 = crossings?.();
    promiseHook?.disable();
    const ring =
      c0 === undefined || c1 === undefined
        ? ''
        : `, submit() ${((c1[0] - c0[0]) / N).toFixed(2)} and completion callbacks ${((c1[1] - c0[1]) / N).toFixed(2)} per request`;
    console.log(
      `proxy over ${runtime.driver.name} sockets ${SIZE} B: ${(promises / N).toFixed(2)} promises/request${ring} (round ${round + 1})`,
    );
    if (flags.sites) printSites(N);
  }
  await listener.close();
  connector.close();
  wireUpstream?.close();
  await runtime.close();
  process.exit(0);
}
for (let round = 0; round < ROUNDS; round++) {
  const down = new Downstream(N);
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
  if (collectionsNow() === seen) heapPerRequest = (heapAfter - heapBefore) / N;
  best = Math.min(best, (used.user + used.system) / N);
  perRequest = down.written / N;
}
const upstreamBytes = upstreams.reduce((n, u) => n + u.written, 0);
console.log(
  `proxy core ${SIZE} B${LOG_FILE !== undefined ? ' (access log to a file)' : ACCESS_LOG ? ' (access log)' : ''}: ${best.toFixed(3)} CPU us/request (best of ${ROUNDS} x ${N}), ` +
    `${Number.isNaN(heapPerRequest) ? 'heap: a collection in every round' : `${heapPerRequest.toFixed(0)} heap bytes/request`}, ` +
    `${perRequest.toFixed(0)} bytes/answer, ${upstreams.length} upstream connection(s), ${(upstreamBytes / (ROUNDS * N)).toFixed(0)} bytes/upstream request` +
    (promiseHook === null ? '' : `, ${(promises / N).toFixed(2)} promises/request`),
);
if (flags.sites) printSites(N * ROUNDS);
await log.close();
connector.close();
