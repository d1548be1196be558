/**
 * The HTTPS reverse proxy benchmark (issue 13, "Benchmark"), the TLS companion of http-proxy:
 * wrk over TLS with keep-alive -> proxy terminating TLS -> the same plain nginx static backend,
 * for nginx, HAProxy and Loch with 1 and 2 workers and every body size. Each proxy instance also
 * serves plain HTTP on a second port, measured right after each HTTPS point, so the page shows
 * what TLS adds to the CPU per request (HTTPS minus HTTP) beside the HTTPS cost itself. With
 * --handshakes: server CPU per new-connection handshake (full and resumed, ECDSA P-256 and RSA
 * 2048). Then memory per idle TLS (and plain) keep-alive connection. Writes
 * bench/results/https.md (+ .json) and SVG charts; a run that leaves anything out or shortens it
 * writes to results/partial/ instead. Never installs or builds anything.
 *
 * Usage: tsx --conditions=@loch/source https/run.ts [--sizes 128,3269,11268,165854]
 *   [--workers 1,2] [--peers nginx,haproxy,loch] [--seconds N] [--warmup N] [--quick]
 *   [--handshakes] [--idle-connections N] [--no-memory] [--tls-version 1.3|1.2]
 *   [--records loch,openssl] [--rounds N] [--handshake-warmup N]
 * --records (default loch): Loch once per record layer (LOCH_TLS_RECORDS): `loch` (Loch's own TLS
 * 1.3 record layer, loch's default) is the peer `loch`, `openssl` (OpenSSL's, the opt-out) the peer
 * `loch-openssl`, measured right after it with the same everything; both are checked against the
 * targets. --rounds (default 3): HTTPS and HTTP points
 * alternate that many times per size on one instance (HTTPS first in odd rounds, HTTP first in
 * even ones) and the page shows medians; TLS adds is the median of the per-round differences.
 * For a decision between two builds or record layers, or loch against nginx, use the interleaved
 * A/B form (bench:ab:https, ab/https.ts): fresh instances per round, sides alternating.
 * Handshakes run --rounds windows per peer and mode, interleaved: every peer of a worker count
 * and certificate is started at once, and each round gives each peer one window in turn (the order
 * reversed every other round), so the host's drift lands on all of them; the page shows each
 * peer's median window and, against nginx, the median of the per-round ratios.
 * --handshake-warmup (default 20 s): handshakes before each handshake window (V8 compiles Loch's
 * per-connection code in the first thousands, once per worker: ~6,000 handshakes on this machine,
 * bench/results/https-handshake-steady-2026-12-05.md, so 10 s still charged compilation to 2 workers).
 * Each handshake point's log line is followed by the proxy's CPU per handshake split by thread
 * (threads.ts: Loch's main thread, each worker thread, V8's platform threads, the rest; nginx's
 * worker processes), also kept in the JSON (`h.threads`, and the client's own `h.client`); the
 * handshake instances of Loch run with thread-roles.cjs preloaded for that (it only names
 * threads). The handshake part alone, with more probes: handshake-threads.ts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openTree } from '../ab/tree.js';
import { runnerArgs, TIMING_OPTIONS, timing } from '../lib/args.js';
import { formatSize, MONOLAKE_SIZES, writeBodies } from '../lib/bodies.js';
import {
  freePort,
  killLivePeers,
  type Measurement,
  machineSummary,
  measure,
  stopPeersOnSignal,
  waitForHttp,
} from '../lib/measure.js';
import { type IdleMemory, idleConnectionMemory } from '../lib/memory.js';
import { type NginxPeer, startNginxStatic } from '../lib/nginx.js';
import { log } from '../lib/report.js';
import { type TlsCertificate, tlsPolicy, writeTlsCertificates } from '../lib/tls-certs.js';
import { type HandshakeCost, handshakeCost, idleTlsConnectionMemory } from './clients.js';
import {
  type HandshakePoint,
  type MemoryPoint,
  median,
  medianMeasurement,
  type RequestPoint,
  renderPage,
  writeCharts,
} from './page.js';
import { HTTPS_PROXIES, type HttpsProxy, type HttpsProxySpec, lochSpec, takenOver } from './peers.js';
import { formatRoleCosts, withThreadRoles } from './threads.js';

const { values: args } = parseArgs({
  args: runnerArgs(),
  options: {
    ...TIMING_OPTIONS,
    workers: { type: 'string', default: '1,2' },
    sizes: { type: 'string' },
    peers: { type: 'string' },
    handshakes: { type: 'boolean', default: false },
    'idle-connections': { type: 'string', default: '10000' },
    'no-memory': { type: 'boolean', default: false },
    'tls-version': { type: 'string', default: '1.3' },
    records: { type: 'string', default: 'loch' },
    rounds: { type: 'string', default: '3' },
    'handshake-warmup': { type: 'string', default: '20' },
  },
});

const { quick, seconds, warmupSeconds } = timing(args);
const workerCounts = args.workers.split(',').map(Number);
const sizes = args.sizes ? args.sizes.split(',').map(Number) : MONOLAKE_SIZES;
const wanted = args.peers?.split(',');
const idleCount = Number(args['idle-connections']);
if (args['tls-version'] !== '1.3' && args['tls-version'] !== '1.2') {
  process.stderr.write(`--tls-version: 1.3 or 1.2, not ${args['tls-version']}\n`);
  process.exit(2);
}
const policy = tlsPolicy(args['tls-version'] === '1.2' ? 'TLSv1.2' : 'TLSv1.3');
const recordLayers = args.records.split(',');
if (recordLayers.length === 0 || recordLayers.some((r) => r !== 'openssl' && r !== 'loch')) {
  process.stderr.write(`--records: a list of openssl and loch, not ${args.records}\n`);
  process.exit(2);
}
const rounds = Number(args.rounds);
if (!Number.isInteger(rounds) || rounds < 1) {
  process.stderr.write(`--rounds: a positive integer, not ${args.rounds}\n`);
  process.exit(2);
}
/**
 * Warm-up before each handshake window, in seconds: longer than the request points' because a
 * handshake window starts on a fresh instance, whose V8 isolates (one per Loch worker) compile
 * their per-connection code during the first thousands of handshakes (page.ts says what it cost).
 */
const handshakeWarmupSeconds = Number(args['handshake-warmup']);
if (!(handshakeWarmupSeconds >= 0)) {
  process.stderr.write(`--handshake-warmup: seconds, not ${args['handshake-warmup']}\n`);
  process.exit(2);
}
/**
 * A run in which the peer served fewer requests than this per connection stalled (the last full
 * run's 1-worker plain 11 KB point of loch: 64 responses in 10 s): a failure, not a CPU figure.
 */
const STALL_REQUESTS_PER_CONNECTION = 10;
const CONNECTIONS = 64;
/** wrk, the backend and the handshake / idle clients share CPU 0; a 1-worker proxy has CPU 1. */
const LOAD_CPU = '0';
const cpuFor = (workers: number) => (workers === 1 ? '1' : '0-1');
const MEMORY_PATH = '/128';
/** Quiet time before each idle-memory reading (as http-proxy: steady state, after Loch's idle trim). */
const IDLE_SETTLE_MS = 5000;
/** A point with more failed requests or handshakes than this share is a failure, not a result. */
const MAX_FAILED_SHARE = 0.01;

/**
 * The committed page needs everything at full length: all peers and sizes, 1 and 2 workers,
 * handshakes, memory at 10,000 connections, default timing, TLS 1.3. Anything else is partial
 * and writes to results/partial/ (git-ignored), so a quick check never replaces the reference.
 */
const partial = Boolean(
  args.peers ||
    args.sizes ||
    args.seconds ||
    args.warmup ||
    quick ||
    args.workers !== '1,2' ||
    args['no-memory'] ||
    !args.handshakes ||
    rounds !== 3 ||
    handshakeWarmupSeconds !== 20 ||
    process.env.LOCH_BENCH_LOCH_SOURCE === '1' ||
    idleCount !== 10_000 ||
    policy.version !== 'TLSv1.3',
);
const here = fileURLToPath(new URL('.', import.meta.url));
const resultsDir = join(here, '..', 'results', ...(partial ? ['partial'] : []));

/** Thrown when a peer cannot be measured at all: the run stops (exit 1) instead of leaving it out. */
class PeerNotServingError extends Error {
  readonly code = 'ERR_BENCH_PEER_NOT_SERVING';
}

/** The window with the median server CPU per handshake (the lower middle of an even count). */
function medianHandshake(windows: readonly HandshakeCost[]): HandshakeCost {
  const sorted = [...windows].sort((a, b) => a.cpuUsPerHandshake - b.cpuUsPerHandshake);
  return sorted[(sorted.length - 1) >> 1]!;
}

async function main(): Promise<void> {
  const started = new Date();
  const loadBefore = loadavg();
  const specs: HttpsProxySpec[] = [];
  const records = new Map<string, string>();
  for (const name of wanted ?? HTTPS_PROXIES.map((s) => s.name)) {
    const spec = HTTPS_PROXIES.find((s) => s.name === name);
    if (spec === undefined)
      throw new PeerNotServingError(
        `--peers: unknown peer ${name} (${HTTPS_PROXIES.map((s) => s.name).join(', ')})`,
      );
    // Loch once per record layer asked for, one right after the other.
    const variants =
      name === 'loch'
        ? recordLayers.map((r) => ({ spec: lochSpec(r as 'openssl' | 'loch'), records: r }))
        : [{ spec, records: undefined }];
    for (const { spec: variant, records: layer } of variants) {
      const reason = variant.unavailable();
      if (reason !== null) throw new PeerNotServingError(`${variant.name}: not available (${reason})`);
      specs.push(variant);
      if (layer !== undefined) records.set(variant.name, layer);
    }
  }
  const warnings: string[] = [];
  if (process.env.LOCH_BENCH_LOCH_SOURCE === '1') {
    warnings.push('loch ran from its sources through tsx (LOCH_BENCH_LOCH_SOURCE=1), not from its build.');
    log(`WARNING: ${warnings.at(-1)}`);
  } else if (records.size > 0) {
    const stale = openTree('loch', join(here, '..', '..')).staleBuilds;
    if (stale.length) {
      warnings.push(
        `sources newer than the build in ${stale.join(', ')}: loch runs the build (\`pnpm build\`).`,
      );
      log(`WARNING: ${warnings.at(-1)}`);
    }
  }
  const certs = writeTlsCertificates();
  log(`certificates (openssl req): ${certs.ecdsa.chain}, ${certs.rsa.chain}`);
  const root = writeBodies([...new Set([...sizes, 128])]);
  const backendPort = await freePort();
  const backend: NginxPeer = await startNginxStatic({ root, port: backendPort, cpu: LOAD_CPU });
  await waitForHttp(backendPort, '/128');
  log(`backend nginx on 127.0.0.1:${backendPort} (CPU ${LOAD_CPU}), bodies in ${root}`);

  const points: RequestPoint[] = [];
  const handshakes: HandshakePoint[] = [];
  const memory: MemoryPoint[] = [];
  const negotiated = new Map<string, string>();
  const failures: string[] = [];
  const names = specs.map((s) => s.name);

  /** Starts `spec` on fresh ports; a peer that does not serve HTTPS stops the run. */
  const start = async (spec: HttpsProxySpec, workers: number, certificate: TlsCertificate) => {
    const port = await freePort();
    const plainPort = await freePort();
    let proxy: HttpsProxy;
    try {
      proxy = await spec.start({
        port,
        plainPort,
        upstreamPort: backendPort,
        workers,
        cpu: cpuFor(workers),
        certificate,
        policy,
        probePath: '/128',
      });
    } catch (err) {
      throw new PeerNotServingError(`${spec.name} does not serve HTTPS: ${(err as Error).message}`);
    }
    const n = proxy.negotiated;
    negotiated.set(spec.name, `${n.protocol}, ${n.cipher}, ${n.group}`);
    return { ...proxy, port, plainPort };
  };
  const writeResults = () => {
    mkdirSync(resultsDir, { recursive: true });
    writeCharts(resultsDir, { points, handshakes, sizes, workerCounts, names });
    const page = renderPage({
      command: `pnpm --filter @loch/bench bench:https${runnerArgs().length ? ` -- ${runnerArgs().join(' ')}` : ''}`,
      started,
      loadBefore,
      machine: machineSummary(),
      quick,
      partial,
      seconds,
      warmupSeconds,
      handshakeWarmupSeconds,
      rounds,
      records,
      connections: CONNECTIONS,
      policy,
      certificate: certs.ecdsa.kind,
      idleCount,
      idleSettleMs: IDLE_SETTLE_MS,
      memoryPath: MEMORY_PATH,
      cpuFor,
      sizes,
      workerCounts,
      specs,
      negotiated,
      points,
      handshakes,
      memory,
      failures,
      warnings,
    });
    writeFileSync(join(resultsDir, 'https.md'), page);
    writeFileSync(
      join(resultsDir, 'https.json'),
      `${JSON.stringify({ started, machine: machineSummary(), seconds, warmupSeconds, policy, negotiated: [...negotiated], points, handshakes, memory, failures }, null, 2)}\n`,
    );
    log(`wrote ${join(resultsDir, 'https.md')}`);
  };

  /** One wrk point, or undefined after recording why it failed (with Loch's /stats on a stall). */
  const point = async (what: string, proxy: HttpsProxy, url: string): Promise<Measurement | undefined> => {
    try {
      const m = await measure(proxy.peer, url, {
        connections: CONNECTIONS,
        seconds,
        warmupSeconds,
        cpu: LOAD_CPU,
      });
      if (m.requests < CONNECTIONS * STALL_REQUESTS_PER_CONNECTION) {
        const stats = await proxy.stats?.().catch((e: Error) => `(no /stats: ${e.message})`);
        throw new Error(
          `stalled: ${m.requests} requests in ${m.seconds.toFixed(1)} s over ${CONNECTIONS} connections` +
            (stats === undefined ? '' : `; /stats: ${stats.replace(/\s+/g, ' ')}`),
        );
      }
      if (m.errors > m.requests * MAX_FAILED_SHARE)
        throw new Error(`${m.requests} requests, ${m.errors} errors`);
      return m;
    } catch (err) {
      const reason = (err as Error).message.split('\n').slice(0, 2).join(' ');
      failures.push(`${what}: ${reason}`);
      log(`${what}: FAILED (${reason})`);
      return undefined;
    }
  };

  try {
    for (const workers of workerCounts) {
      for (const spec of specs) {
        let proxy = await start(spec, workers, certs.ecdsa);
        try {
          for (const size of sizes) {
            const what = `${spec.name} ${workers}w ${formatSize(size)}`;
            const measured: { https: Measurement; http: Measurement }[] = [];
            const before = await takenOver(proxy);
            for (let round = 1; round <= rounds; round++) {
              // HTTPS first in odd rounds, HTTP first in even ones: a drift of the instance or the
              // machine during a round (warming, another job) then lands on both schemes.
              const readHttps = () =>
                point(`${what} https`, proxy, `https://127.0.0.1:${proxy.port}/${size}`);
              const readHttp = () =>
                point(`${what} http`, proxy, `http://127.0.0.1:${proxy.plainPort}/${size}`);
              let https: Measurement | undefined;
              let http: Measurement | undefined;
              if (round % 2 === 1) {
                https = await readHttps();
                if (https !== undefined) http = await readHttp();
              } else {
                http = await readHttp();
                if (http !== undefined) https = await readHttps();
              }
              if (https === undefined || http === undefined) break;
              measured.push({ https, http });
              log(
                `${what} round ${round}/${rounds}: https ${Math.round(https.requestsPerSecond)} req/s, ` +
                  `${https.cpuUsPerRequest.toFixed(1)} us/req; http ${http.cpuUsPerRequest.toFixed(1)} us/req; ` +
                  `TLS adds ${(https.cpuUsPerRequest - http.cpuUsPerRequest).toFixed(1)} us/req`,
              );
            }
            if (measured.length < rounds) {
              // A fresh instance for the next size, as http-proxy does after a failed point.
              await proxy.peer.stop();
              proxy = await start(spec, workers, certs.ecdsa);
              continue;
            }
            const after = await takenOver(proxy);
            if (records.get(spec.name) === 'loch' && before !== undefined && after !== undefined) {
              // Every wrk run opens its connections afresh: each should be on Loch's record layer.
              const expected = rounds * (warmupSeconds > 0 ? 2 : 1) * CONNECTIONS;
              log(
                `${what}: ${after - before} connections taken over by Loch's record layer (of ${expected} TLS ones)`,
              );
              if (after - before < expected)
                warnings.push(
                  `${what}: only ${after - before} of ${expected} TLS connections taken over by Loch's record layer`,
                );
            }
            const https = medianMeasurement(measured.map((m) => m.https));
            const http = medianMeasurement(measured.map((m) => m.http));
            const adds = median(measured.map((m) => m.https.cpuUsPerRequest - m.http.cpuUsPerRequest));
            points.push({ proxy: spec.name, workers, size, https, http, rounds: measured, tlsAdds: adds });
            // After every point: a run cut short (a time limit, ^C) keeps all it measured.
            writeResults();
            log(
              `${what}: https ${Math.round(https.requestsPerSecond)} req/s, p50 ${https.p50Ms} ms, p99 ${https.p99Ms} ms, ` +
                `${https.cpuUsPerRequest.toFixed(1)} us/req; http ${http.cpuUsPerRequest.toFixed(1)} us/req; ` +
                `TLS adds ${adds.toFixed(1)} us/req (median of ${rounds})`,
            );
          }
        } finally {
          await proxy.peer.stop();
        }
      }
    }
    writeResults();

    if (args.handshakes) {
      for (const workers of workerCounts) {
        for (const certificate of [certs.ecdsa, certs.rsa]) {
          // Every peer at once, idle but for its own windows, so the rounds can interleave them.
          const instances: {
            spec: HttpsProxySpec;
            proxy: Awaited<ReturnType<typeof start>>;
            rolesDir: string | undefined;
          }[] = [];
          try {
            for (const spec of specs) {
              // Loch's threads name their roles (thread-roles.cjs) for the per-thread split.
              const started = spec.name.startsWith('loch')
                ? await withThreadRoles(() => start(spec, workers, certificate))
                : { value: await start(spec, workers, certificate), rolesDir: undefined };
              instances.push({ spec, proxy: started.value, rolesDir: started.rolesDir });
            }
            for (const mode of ['full', 'resumed'] as const) {
              const measured = new Map<string, HandshakeCost[]>(instances.map((i) => [i.spec.name, []]));
              const failed = new Set<string>();
              for (let round = 1; round <= rounds; round++) {
                // Peers in turn, the order reversed every other round: the machine's drift within a
                // round lands on every peer, not on whichever ran its windows last.
                const order = round % 2 === 1 ? instances : [...instances].reverse();
                for (const { spec, proxy, rolesDir } of order) {
                  if (failed.has(spec.name)) continue;
                  const what = `${spec.name} ${workers}w ${certificate.kind} ${mode}`;
                  const h = await handshakeCost(proxy.peer, proxy.port, {
                    mode,
                    seconds,
                    // The first window of a mode compiles and warms; later ones only refill caches.
                    warmupSeconds: round === 1 ? handshakeWarmupSeconds : warmupSeconds,
                    clientCpu: LOAD_CPU,
                    ...(rolesDir === undefined ? {} : { rolesDir }),
                  });
                  if (h.handshakes === 0 || h.failed > h.handshakes * MAX_FAILED_SHARE) {
                    const reason = `${h.handshakes} handshakes, ${h.failed} failed (${h.lastError})`;
                    failures.push(`${what}: ${reason}`);
                    log(`${what}: FAILED (${reason})`);
                    failed.add(spec.name);
                    continue;
                  }
                  measured.get(spec.name)?.push(h);
                  log(
                    `${what} round ${round}/${rounds}: ${Math.round(h.handshakesPerSecond)} handshakes/s (client-bound), ` +
                      `server ${h.cpuUsPerHandshake.toFixed(0)} us/handshake, resumed ${h.resumed}/${h.handshakes}` +
                      (h.noTicket ? `, ${h.noTicket} without a ticket` : '') +
                      (h.failed ? `, ${h.failed} failed` : '') +
                      `; per thread, per handshake:\n${formatRoleCosts(h.threads)}`,
                  );
                }
              }
              for (const { spec } of instances) {
                const windows = measured.get(spec.name) ?? [];
                if (failed.has(spec.name) || windows.length === 0) continue;
                handshakes.push({
                  proxy: spec.name,
                  workers,
                  kind: certificate.kind,
                  mode,
                  h: medianHandshake(windows),
                  rounds: windows,
                });
              }
              writeResults();
            }
          } finally {
            for (const { proxy } of instances) await proxy.peer.stop();
          }
        }
      }
      writeResults();
    }

    if (!args['no-memory']) {
      for (const spec of specs) {
        const tls = await idleReading(spec, 'https');
        const plain = await idleReading(spec, 'http');
        if (tls === undefined) continue;
        memory.push({ proxy: spec.name, tls, ...(plain === undefined ? {} : { plain }) });
        writeResults();
      }
    }
  } finally {
    await backend.stop();
  }
  writeResults();
  if (failures.length) {
    log(`${failures.length} point(s) failed (listed on the page)`);
    process.exitCode = 1;
  }

  /** One idle-memory reading of a fresh 1-worker instance on its TLS or its plain port. */
  async function idleReading(
    spec: HttpsProxySpec,
    scheme: 'https' | 'http',
  ): Promise<IdleMemory | undefined> {
    const proxy = await start(spec, 1, certs.ecdsa);
    const what = `${spec.name} idle ${scheme}`;
    try {
      const port = scheme === 'https' ? proxy.port : proxy.plainPort;
      // One short load first, so the baseline includes pools, TLS state and JIT warmed by traffic.
      await measure(proxy.peer, `${scheme}://127.0.0.1:${port}${MEMORY_PATH}`, {
        connections: CONNECTIONS,
        seconds: 1,
        cpu: LOAD_CPU,
      });
      const options = { count: idleCount, path: MEMORY_PATH, clientCpu: LOAD_CPU, settleMs: IDLE_SETTLE_MS };
      const i =
        scheme === 'https'
          ? await idleTlsConnectionMemory(proxy.peer, port, options)
          : await idleConnectionMemory(proxy.peer, port, options);
      log(
        `${what}: ${i.connections} conns (${i.failed} failed), RSS ${i.baselineKiB} -> ${i.idleKiB} KiB, ` +
          `${Math.round(i.bytesPerConnection)} B/conn`,
      );
      if (i.failed > idleCount * MAX_FAILED_SHARE)
        throw new Error(`${i.failed} of ${idleCount} connections failed`);
      return { ...i, peer: spec.name };
    } catch (err) {
      const reason = (err as Error).message.split('\n').slice(0, 2).join(' ');
      failures.push(`${what}: ${reason}`);
      log(`${what}: FAILED (${reason})`);
      return undefined;
    } finally {
      await proxy.peer.stop();
    }
  }
}

stopPeersOnSignal();
// An error or a normal end leaves nothing listening either (clients.ts kills its own clients).
process.once('exit', killLivePeers);
try {
  await main();
} catch (err) {
  log(`FAILED: ${(err as Error).message}`);
  process.exitCode = 1;
}
