/**
 * The HTTP reverse proxies the reference proxy benchmark compares, as a pluggable list: each
 * entry says whether it can run on this machine and starts one instance forwarding to the
 * static backend with N workers on the given CPUs. Adding a peer is adding an entry here.
 * Not the measuring loop (run.ts) and not the peers' own config writers (bench/lib/).
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHaproxy } from '../lib/haproxy.js';
import { type Peer, startPeer, waitForHttp } from '../lib/measure.js';
import { startNginxProxy } from '../lib/nginx.js';

/** Where and how to start one proxy instance. */
export interface ProxyStart {
  readonly port: number;
  readonly upstreamPort: number;
  readonly workers: number;
  /** taskset CPU list for the proxy ('1' or '0-1'). */
  readonly cpu: string;
  /** A path the backend serves with 200, to check that the proxy forwards. */
  readonly probePath: string;
}

/** One proxy under test. */
export interface ProxySpec {
  /** Short name used in tables and charts. */
  readonly name: string;
  /** How workers map onto the proxy (for the results page). */
  readonly workersNote: string;
  /** Why it cannot run on this machine, or null when it can. */
  unavailable(): string | null;
  /** Starts an instance and resolves once it forwards a request; throws with the reason if not. */
  start(options: ProxyStart): Promise<Peer>;
}

const here = fileURLToPath(new URL('.', import.meta.url));
const repoRoot = join(here, '..', '..');
const proxyDir = join(repoRoot, 'apps', 'proxy');

/** The built `loch` command of apps/proxy: its package.json `bin.loch`, under dist/ once built. */
export const LOCH_CLI = ((): string => {
  try {
    const pkg = JSON.parse(readFileSync(join(proxyDir, 'package.json'), 'utf8')) as {
      bin?: { loch?: string };
    };
    return join(proxyDir, pkg.bin?.loch ?? 'dist/cli.js');
  } catch {
    return join(proxyDir, 'dist', 'cli.js');
  }
})();

/** Stops `peer` if `ready` fails, so a peer that does not serve never lingers. */
async function ready(peer: Peer, check: Promise<void>): Promise<Peer> {
  try {
    await check;
    return peer;
  } catch (err) {
    await peer.stop();
    throw err;
  }
}

/**
 * A ProxySpec.start for a peer the bench lib starts (nginx, haproxy): pass port, upstream,
 * workers and CPU through, then wait until it answers the probe path.
 */
function startedByLib(
  start: (o: { port: number; upstreamPort: number; workers: number; cpu: string }) => Promise<Peer>,
): ProxySpec['start'] {
  return async (o) => {
    const peer = await start({ port: o.port, upstreamPort: o.upstreamPort, workers: o.workers, cpu: o.cpu });
    return ready(peer, waitForHttp(o.port, o.probePath));
  };
}

const nginx: ProxySpec = {
  name: 'nginx',
  workersNote: 'worker_processes N, `listen ... reuseport` when N > 1',
  unavailable: () => null,
  start: startedByLib(startNginxProxy),
};

const haproxy: ProxySpec = {
  name: 'haproxy',
  workersNote: 'one process, nbthread N',
  unavailable: () => null,
  start: startedByLib((o) => startHaproxy({ mode: 'http', ...o })),
};

const nodeHttp: ProxySpec = {
  name: 'node:http',
  workersNote: 'node:cluster with SCHED_NONE when N > 1 (N worker processes accept on one shared socket)',
  unavailable: () => null,
  async start(o) {
    const peer = startPeer(
      `node:http proxy (${o.workers}w)`,
      process.execPath,
      ['--import', 'tsx', 'node-proxy.ts', String(o.port), String(o.upstreamPort), String(o.workers)],
      { cpu: o.cpu, cwd: here },
    );
    return ready(peer, waitForHttp(o.port, o.probePath, '127.0.0.1', 15_000));
  },
};

/** Loch's reference proxy: `loch run -c <toml>` from apps/proxy's build, runtime.workers = N. */
const loch: ProxySpec = {
  name: 'loch',
  workersNote: 'runtime.workers = N (worker threads, one io_uring ring each, SO_REUSEPORT listeners)',
  unavailable: () => (existsSync(LOCH_CLI) ? null : `${LOCH_CLI} does not exist (apps/proxy not built yet)`),
  async start(o) {
    const dir = mkdtempSync(join(tmpdir(), 'loch-bench-loch-'));
    const config = join(dir, 'loch.toml');
    writeFileSync(
      config,
      `[runtime]
workers = ${o.workers}
cpu_affinity = false

[log]
level = "warn"

[servers.bench]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:${o.port}" }
access_log = false
timeouts = { server_keepalive = "300s" }

[[servers.bench.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${o.upstreamPort}" }]
`,
    );
    // LOCH_BENCH_NODE_ARGS: extra node flags for profiling runs (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p").
    const nodeArgs = (process.env.LOCH_BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
    const peer = startPeer(
      `loch (${o.workers}w)`,
      process.execPath,
      [...nodeArgs, LOCH_CLI, 'run', '-c', config],
      {
        cpu: o.cpu,
      },
    );
    return ready(peer, waitForHttp(o.port, o.probePath, '127.0.0.1', 15_000));
  },
};

/** Every proxy the benchmark knows, nginx first (the reference for ratios). */
export const PROXIES: readonly ProxySpec[] = [nginx, haproxy, nodeHttp, loch];
