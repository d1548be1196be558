/**
 * The HTTPS reverse proxies the HTTPS benchmark compares: nginx (`listen ... ssl`), HAProxy
 * (`bind ... ssl crt`) and Loch (`tls = { chain, key }`), each started with one certificate and
 * the run's TLS policy, terminating TLS on one port and serving plain HTTP on a second port from
 * the same process, both forwarding to the plain static backend. start() resolves only once the
 * TLS port answers a GET over TLS and the plain port a plain GET; otherwise it throws with the
 * peer's output. Not the measuring loop (run.ts).
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOCH_CLI } from '../http-proxy/peers.js';
import { startHaproxyTls } from '../lib/haproxy.js';
import { type HttpsProbe, waitForHttps } from '../lib/https-probe.js';
import { freePort, type Peer, startPeer, waitForHttp } from '../lib/measure.js';
import { startNginxTlsProxy } from '../lib/nginx.js';
import type { TlsCertificate, TlsPolicy } from '../lib/tls-certs.js';

/** Where and how to start one HTTPS proxy instance. */
export interface HttpsProxyStart {
  /** The TLS port. */
  readonly port: number;
  /** The plain HTTP port of the same instance. */
  readonly plainPort: number;
  readonly upstreamPort: number;
  readonly workers: number;
  /** taskset CPU list for the proxy ('1' or '0-1'). */
  readonly cpu: string;
  readonly certificate: TlsCertificate;
  readonly policy: TlsPolicy;
  /** A path the backend serves with 200, to check that both ports forward. */
  readonly probePath: string;
}

/** A running instance and what its TLS port negotiated with the probe. */
export interface HttpsProxy {
  readonly peer: Peer;
  readonly negotiated: HttpsProbe;
  /** Loch: its admin /stats (JSON text). */
  readonly stats?: () => Promise<string>;
}

/** One HTTPS proxy under test. */
export interface HttpsProxySpec {
  /** Short name used in tables and charts. */
  readonly name: string;
  /** How workers and TLS are configured (for the results page). */
  readonly note: string;
  /** Why it cannot run on this machine, or null when it can. */
  unavailable(): string | null;
  /** Starts an instance; resolves once both ports forward, throws with the reason if not. */
  start(options: HttpsProxyStart): Promise<HttpsProxy>;
}

/** How long a peer has to answer its probes (Loch starts worker threads first). */
const PROBE_TIMEOUT_MS = 15_000;

/** Probes both ports of a started peer; stops it and throws (with its output) if either fails. */
async function probed(peer: Peer, o: HttpsProxyStart): Promise<HttpsProxy> {
  // A peer that exits (a bad config, a bad flag) fails at once, not after the probe's timeout.
  const exited = peer.exited.then((code) => {
    throw new Error(`exited with ${code} before serving`);
  });
  exited.catch(() => undefined);
  try {
    const negotiated = await Promise.race([
      waitForHttps(o.port, o.probePath, '127.0.0.1', PROBE_TIMEOUT_MS),
      exited,
    ]);
    await Promise.race([waitForHttp(o.plainPort, o.probePath, '127.0.0.1', PROBE_TIMEOUT_MS), exited]);
    if (negotiated.protocol !== o.policy.version)
      throw new Error(`negotiated ${negotiated.protocol}, the run asks for ${o.policy.version} only`);
    return { peer, negotiated };
  } catch (err) {
    await peer.stop();
    const output = peer.output().trim();
    throw new Error(`${peer.name}: ${(err as Error).message}${output ? `\n${output}` : ''}`);
  }
}

const nginx: HttpsProxySpec = {
  name: 'nginx',
  note:
    'worker_processes N (`reuseport` when N > 1); `listen ... ssl`, `ssl_protocols` and `ssl_conf_command Ciphersuites` ' +
    '(TLS 1.2: `ssl_ciphers`) from the policy; session tickets on (default), no session cache (default)',
  unavailable: () => null,
  async start(o) {
    const peer = await startNginxTlsProxy({
      port: o.port,
      plainPort: o.plainPort,
      upstreamPort: o.upstreamPort,
      workers: o.workers,
      cpu: o.cpu,
      tls: { chain: o.certificate.chain, key: o.certificate.key, ...o.policy },
    });
    return probed(peer, o);
  },
};

const haproxy: HttpsProxySpec = {
  name: 'haproxy',
  note:
    'one process, nbthread N; `bind ... ssl crt <cert+key>` with `ssl-min-ver`/`ssl-max-ver` and `ciphersuites` ' +
    '(TLS 1.2: `ciphers`) from the policy; session tickets on and its session cache (defaults)',
  unavailable: () => null,
  async start(o) {
    const peer = await startHaproxyTls({
      port: o.port,
      plainPort: o.plainPort,
      upstreamPort: o.upstreamPort,
      workers: o.workers,
      cpu: o.cpu,
      tls: { combined: o.certificate.combined, ...o.policy },
    });
    return probed(peer, o);
  },
};

/**
 * Loch: `loch run -c <toml>` from apps/proxy's build, an HTTPS and an HTTP server in one config,
 * and an admin listener whose /stats the run reads (connections Loch's own record layer took
 * over; what a stalled point looked like). `records` is LOCH_TLS_RECORDS, always set: 'loch' (Loch's
 * own TLS 1.3 record layer, loch's default) is the peer `loch`, 'openssl' the peer `loch-openssl`. LOCH_BENCH_LOCH_SOURCE=1
 * runs the sources through tsx instead of the build (a tree whose build is broken by work in
 * progress; not for the committed page). `build` runs another checkout's built CLI instead (the
 * HTTPS A/B, bench/ab/https.ts): its `cli`, from its root (`cwd`), with `env` on top of
 * LOCH_TLS_RECORDS, under its own `name`.
 */
export function lochSpec(
  records: 'openssl' | 'loch',
  build?: { name: string; cli: string; cwd: string; env: Readonly<Record<string, string>> },
): HttpsProxySpec {
  const source = build === undefined && process.env.LOCH_BENCH_LOCH_SOURCE === '1';
  const entry = build?.cli ?? (source ? join(LOCH_CLI, '..', '..', 'src', 'bin.ts') : LOCH_CLI);
  const name = build?.name ?? (records === 'loch' ? 'loch' : 'loch-openssl');
  // cwd = the checkout under test, so nothing of the harness's checkout leaks into resolution.
  const cwd = build?.cwd ?? (source ? join(LOCH_CLI, '..', '..') : undefined);
  return {
    name,
    note:
      'runtime.workers = N (worker threads, one io_uring ring each, SO_REUSEPORT listeners); ' +
      '`tls = { chain, key }` plus `min_version`/`max_version` and `ciphersuites` (TLS 1.2: `ciphers`) from the policy; ' +
      `session tickets with keys shared by all workers (default); LOCH_TLS_RECORDS=${records}`,
    unavailable: () => (existsSync(entry) ? null : `${entry} does not exist (run \`pnpm build\` first)`),
    async start(o) {
      const dir = mkdtempSync(join(tmpdir(), 'loch-bench-loch-tls-'));
      const config = join(dir, 'loch.toml');
      const adminPort = await freePort();
      const p = o.policy;
      const suites =
        p.version === 'TLSv1.3' ? `ciphersuites = "${p.ciphersuites}"` : `ciphers = "${p.ciphers}"`;
      const server = (key: string, port: number, tls: string) => `[servers.${key}]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:${port}" }
access_log = false
timeouts = { server_keepalive = "300s" }
${tls}
[[servers.${key}.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${o.upstreamPort}" }]
`;
      writeFileSync(
        config,
        `[runtime]
workers = ${o.workers}
cpu_affinity = false

[log]
level = "warn"

[admin]
listener = { type = "socket", value = "127.0.0.1:${adminPort}" }

${server(
  'https',
  o.port,
  `tls = { chain = "${o.certificate.chain}", key = "${o.certificate.key}", min_version = "${p.version}", max_version = "${p.version}", ${suites} }\n`,
)}
${server('http', o.plainPort, '')}`,
      );
      // LOCH_BENCH_NODE_ARGS: extra node flags for profiling runs, as in http-proxy.
      const nodeArgs = (process.env.LOCH_BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
      if (source) nodeArgs.push('--conditions=@loch/source', '--import', 'tsx');
      const peer = startPeer(
        `${name} (${o.workers}w)`,
        process.execPath,
        [...nodeArgs, entry, 'run', '-c', config],
        {
          cpu: o.cpu,
          env: { ...process.env, LOCH_TLS_RECORDS: records, ...build?.env },
          ...(cwd === undefined ? {} : { cwd }),
        },
      );
      const proxy = await probed(peer, o);
      return { ...proxy, stats: () => getText(adminPort, '/stats') };
    },
  };
}

/**
 * Connections Loch's own record layer took over so far on the `https` server (the name every
 * bench config gives it), summed over the workers from /stats; undefined for a peer without
 * /stats or when it does not answer.
 */
export async function takenOver(proxy: HttpsProxy): Promise<number | undefined> {
  const text = await proxy.stats?.().catch(() => undefined);
  if (text === undefined) return undefined;
  const stats = JSON.parse(text) as { workers: { tlsRecords?: Record<string, { loch: number }> }[] };
  return stats.workers.reduce((n, w) => n + (w.tlsRecords?.https?.loch ?? 0), 0);
}

/** A GET on 127.0.0.1:port (the admin listener), resolving with the body. */
function getText(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Every HTTPS proxy the benchmark knows, nginx first (the reference for ratios). */
export const HTTPS_PROXIES: readonly HttpsProxySpec[] = [nginx, haproxy, lochSpec('loch')];
