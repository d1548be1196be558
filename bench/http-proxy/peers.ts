/**
 * The HTTP reverse proxies the reference proxy benchmark compares, as a pluggable list: each
 * entry says whether it can run on this machine and starts one instance forwarding to the
 * static backend with N workers on the given CPUs. Adding a peer is adding an entry here.
 * Not the measuring loop (run.ts) and not the peers' own config writers (bench/lib/).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHaproxy } from '../lib/haproxy.js';
import { freePort, type Peer, startPeer, waitForHttp } from '../lib/measure.js';
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
  /** Each peer's access log as it ships (see ProxySpec.accessLogNote); none unless true. */
  readonly accessLog?: boolean;
  /** Loch records its metrics (an `[admin]` listener on a free port) when true; the others ignore it. */
  readonly metrics?: boolean;
}

/** A started proxy and the file its access log grows in, if it writes one (run.ts trims it). */
export interface ProxyPeer extends Peer {
  readonly accessLogFile?: string | undefined;
}

/** One proxy under test. */
export interface ProxySpec {
  /** Short name used in tables and charts. */
  readonly name: string;
  /** How workers map onto the proxy (for the results page). */
  readonly workersNote: string;
  /** What the proxy logs per request with `--access-log on` (for the results page). */
  readonly accessLogNote: string;
  /** Why it cannot run on this machine, or null when it can. */
  unavailable(): string | null;
  /** Starts an instance and resolves once it forwards a request; throws with the reason if not. */
  start(options: ProxyStart): Promise<ProxyPeer>;
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
async function ready<P extends Peer>(peer: P, check: Promise<void>): Promise<P> {
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
 * workers, CPU and the access log through, then wait until it answers the probe path.
 */
function startedByLib(
  start: (o: {
    port: number;
    upstreamPort: number;
    workers: number;
    cpu: string;
    accessLog: boolean;
  }) => Promise<ProxyPeer>,
): ProxySpec['start'] {
  return async (o) => {
    const peer = await start({
      port: o.port,
      upstreamPort: o.upstreamPort,
      workers: o.workers,
      cpu: o.cpu,
      accessLog: o.accessLog === true,
    });
    return ready(peer, waitForHttp(o.port, o.probePath));
  };
}

const nginx: ProxySpec = {
  name: 'nginx',
  workersNote: 'worker_processes N, `listen ... reuseport` when N > 1',
  accessLogNote:
    '`access_log <file>;` as nginx ships it: the `combined` format, no `buffer=` (so unbuffered: one write(2) per request)',
  unavailable: () => null,
  start: startedByLib(async ({ accessLog, ...o }) => {
    if (!accessLog) return startNginxProxy(o);
    // The prefix is made inside startNginxProxy; the log goes to a temp dir of its own.
    const file = join(mkdtempSync(join(tmpdir(), 'loch-bench-nginx-log-')), 'access.log');
    return { ...(await startNginxProxy({ ...o, accessLog: file })), accessLogFile: file };
  }),
};

const haproxy: ProxySpec = {
  name: 'haproxy',
  workersNote: 'one process, nbthread N',
  accessLogNote:
    "`option httplog` to `log 127.0.0.1:<port> local0`, an unbound UDP port (HAProxy 2.6 writes no files: it formats and sends one syslog datagram per request; the kernel finds no socket, drops it and answers ICMP port unreachable, rate limited, on HAProxy's CPU time)",
  unavailable: () => null,
  start: startedByLib(async ({ accessLog, ...o }) => {
    const logTo = accessLog ? `127.0.0.1:${await freePort()}` : undefined;
    return startHaproxy({ mode: 'http', ...o, ...(logTo === undefined ? {} : { logTo }) });
  }),
};

const nodeHttp: ProxySpec = {
  name: 'node:http',
  workersNote: 'node:cluster with SCHED_NONE when N > 1 (N worker processes accept on one shared socket)',
  accessLogNote: "none (the bench's node:http proxy has no access log)",
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
  accessLogNote:
    '`access_log = { path = "<file>" }`: its default text line, written per worker every 50 ms or 64 KiB (apps/proxy README, Access log)',
  unavailable: () => (existsSync(LOCH_CLI) ? null : `${LOCH_CLI} does not exist (apps/proxy not built yet)`),
  async start(o) {
    const dir = mkdtempSync(join(tmpdir(), 'loch-bench-loch-'));
    const config = join(dir, 'loch.toml');
    // Not beside loch.toml: loch watches that directory, and every log write there would wake its
    // main thread (bench/http-proxy/gc-2026-12-06.md).
    const accessLogFile = o.accessLog === true ? join(dir, 'logs', 'access.log') : undefined;
    if (accessLogFile !== undefined) mkdirSync(dirname(accessLogFile));
    // Metrics are recorded only when an admin listener is configured (apps/proxy README).
    const admin =
      o.metrics === true
        ? `[admin]\nlistener = { type = "socket", value = "127.0.0.1:${await freePort()}" }\n\n`
        : '';
    writeFileSync(
      config,
      `${admin}[runtime]
workers = ${o.workers}
cpu_affinity = false

[log]
level = "warn"

[servers.bench]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:${o.port}" }
access_log = ${accessLogFile === undefined ? 'false' : `{ path = ${JSON.stringify(accessLogFile)} }`}
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
    return ready({ ...peer, accessLogFile }, waitForHttp(o.port, o.probePath, '127.0.0.1', 15_000));
  },
};

/** Every proxy the benchmark knows, nginx first (the reference for ratios). */
export const PROXIES: readonly ProxySpec[] = [nginx, haproxy, nodeHttp, loch];
