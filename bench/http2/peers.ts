/**
 * The HTTP/2 reverse proxies the HTTP/2 benchmark compares: nginx (`listen ... http2`, and
 * `ssl http2`), HAProxy (`bind ... proto h2`, and `ssl crt ... alpn h2`) and Loch (h2c sniffed
 * on a plain listener, h2 by ALPN on a TLS one: both on by default), each one process serving
 * h2c on one port and h2 over TLS on another, forwarding over HTTP/1.1 keep-alive to the plain
 * nginx static backend (Debian's nginx 1.22 cannot proxy to HTTP/2 upstreams, so every peer
 * speaks HTTP/1.1 upstream). start() resolves only once both ports answer an h2load request.
 * Not the measuring loop (run.ts).
 */
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOCH_CLI } from '../http-proxy/peers.js';
import { type Peer, startPeer, waitForPort } from '../lib/measure.js';
import type { TlsCertificate } from '../lib/tls-certs.js';
import { waitForH2 } from './h2load.js';

/** Where and how to start one HTTP/2 proxy instance. */
export interface H2ProxyStart {
  /** The h2c (prior knowledge) port. */
  readonly port: number;
  /** The h2 (TLS, ALPN) port of the same instance. */
  readonly tlsPort: number;
  readonly upstreamPort: number;
  /**
   * What the proxy speaks to the backend: HTTP/1.1 keep-alive (the page's comparison with nginx),
   * or h2c by prior knowledge (`--upstream h2`: HAProxy and Loch only).
   */
  readonly upstream?: 'h1' | 'h2';
  readonly workers: number;
  /** taskset CPU list for the proxy. */
  readonly cpu: string;
  readonly certificate: TlsCertificate;
  /** A path the backend serves with 200, to check that both ports forward. */
  readonly probePath: string;
}

/** One HTTP/2 proxy under test. */
export interface H2ProxySpec {
  /** Short name used in tables and charts. */
  readonly name: string;
  /** How it is configured (for the results page). */
  readonly note: string;
  /** Why it cannot run on this machine (or with this upstream protocol), or null when it can. */
  unavailable(upstream: 'h1' | 'h2'): string | null;
  /** Starts an instance; resolves once both ports forward, throws with the reason if not. */
  start(options: H2ProxyStart): Promise<Peer>;
}

/** How long a peer has to answer its probes (Loch starts worker threads first). */
const PROBE_TIMEOUT_MS = 15_000;
/** Keep-alive requests per connection: high enough that no client reconnects mid-run. */
const KEEPALIVE_REQUESTS = 1_000_000;

/** Probes both ports of a started peer; stops it and throws (with its output) if either fails. */
export async function probed(
  peer: Peer,
  o: Pick<H2ProxyStart, 'port' | 'tlsPort' | 'probePath'>,
): Promise<Peer> {
  const exited = peer.exited.then((code) => {
    throw new Error(`exited with ${code} before serving`);
  });
  exited.catch(() => undefined);
  try {
    await Promise.race([waitForPort(o.port, '127.0.0.1', PROBE_TIMEOUT_MS), exited]);
    await Promise.race([waitForH2(`http://127.0.0.1:${o.port}${o.probePath}`, PROBE_TIMEOUT_MS), exited]);
    await Promise.race([waitForH2(`https://127.0.0.1:${o.tlsPort}${o.probePath}`, PROBE_TIMEOUT_MS), exited]);
    return peer;
  } catch (err) {
    await peer.stop();
    const output = peer.output().trim();
    throw new Error(`${peer.name}: ${(err as Error).message}${output ? `\n${output}` : ''}`);
  }
}

const nginx: H2ProxySpec = {
  name: 'nginx',
  note:
    'worker_processes N; `listen ... http2` (h2c) and `listen ... ssl http2` (TLS 1.3, ECDSA P-256); ' +
    "upstream `keepalive 256` (as loch's `upstream_keepalive` default: with 64, -c16 -m16 closed and opened " +
    'again 0.47 upstream connections per request), `proxy_http_version 1.1`; http2_max_concurrent_streams 128 (default)',
  unavailable: (upstream) =>
    upstream === 'h2'
      ? "Debian's nginx 1.22 cannot proxy to HTTP/2 upstreams (no proxy_http_version 2)"
      : null,
  async start(o) {
    const prefix = mkdtempSync(join(tmpdir(), 'loch-bench-nginx-h2-'));
    mkdirSync(join(prefix, 'logs'), { recursive: true });
    const reuse = o.workers > 1 ? ' reuseport' : '';
    const conf = `worker_processes ${o.workers};
user root;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 16384; multi_accept on; }
http {
  access_log off;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  keepalive_requests ${KEEPALIVE_REQUESTS};
  keepalive_timeout 300s;
  tcp_nodelay on;
  upstream backend {
    server 127.0.0.1:${o.upstreamPort};
    keepalive 256;
    keepalive_requests ${KEEPALIVE_REQUESTS};
  }
  server {
    listen 127.0.0.1:${o.port} http2 backlog=4096${reuse};
    listen 127.0.0.1:${o.tlsPort} ssl http2 backlog=4096${reuse};
    ssl_certificate ${o.certificate.chain};
    ssl_certificate_key ${o.certificate.key};
    ssl_protocols TLSv1.3;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_max_temp_file_size 0;
    }
  }
}
`;
    const file = join(prefix, 'nginx.conf');
    writeFileSync(file, conf);
    const peer = startPeer(
      `nginx http2 (${o.workers}w)`,
      'nginx',
      ['-p', prefix, '-c', file, '-g', 'daemon off;'],
      { cpu: o.cpu },
    );
    return probed(peer, o);
  },
};

const haproxy: H2ProxySpec = {
  name: 'haproxy',
  note:
    'one process, nbthread N; `bind ... proto h2` (h2c) and `bind ... ssl crt ... alpn h2` (TLS 1.3); ' +
    '`mode http`, `http-reuse always` to the backend (`proto h2` on its server line for an h2c backend)',
  unavailable: () => null,
  async start(o) {
    const dir = mkdtempSync(join(tmpdir(), 'loch-bench-haproxy-h2-'));
    const conf = `global
  nbthread ${o.workers}
  maxconn 12000
  no strict-limits
  tune.bufsize 16384

defaults
  mode http
  maxconn 12000
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-keep-alive 300s
  option http-keep-alive
  http-reuse always

frontend fe
  bind 127.0.0.1:${o.port} proto h2
  bind 127.0.0.1:${o.tlsPort} ssl crt ${o.certificate.combined} alpn h2 ssl-min-ver TLSv1.3
  default_backend be

backend be
  server s1 127.0.0.1:${o.upstreamPort}${o.upstream === 'h2' ? ' proto h2' : ''}
`;
    const file = join(dir, 'haproxy.cfg');
    writeFileSync(file, conf);
    const peer = startPeer(`haproxy h2 (${o.workers}w)`, 'haproxy', ['-f', file, '-db'], { cpu: o.cpu });
    return probed(peer, o);
  },
};

/**
 * Loch's config for this benchmark, written to a new temporary directory (its path returned): an
 * h2c and an h2 (TLS) server in one process (bench/ab/http2.ts runs the same for both builds).
 */
export function writeLochH2Config(o: Omit<H2ProxyStart, 'cpu' | 'probePath'>): string {
  const dir = mkdtempSync(join(tmpdir(), 'loch-bench-loch-h2-'));
  const config = join(dir, 'loch.toml');
  const server = (key: string, port: number, tls: string) => `[servers.${key}]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:${port}" }
access_log = false
timeouts = { server_keepalive = "300s" }
${tls}
${o.upstream === 'h2' ? 'upstream_http_version = "http2"\n' : ''}
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

${server('h2c', o.port, '')}
${server(
  'h2',
  o.tlsPort,
  `tls = { chain = "${o.certificate.chain}", key = "${o.certificate.key}", min_version = "TLSv1.3" }\n`,
)}`,
  );
  return config;
}

/** Loch: `loch run -c <toml>` from apps/proxy's build, an h2c and an h2 (TLS) server in one config. */
const loch: H2ProxySpec = {
  name: 'loch',
  note:
    'runtime.workers = N (worker threads, one io_uring ring each); `proxy_type = "http"` servers with ' +
    'HTTP/2 on (default: h2c sniffed on the plain listener, h2 by ALPN on the TLS one, TLS 1.3); ' +
    'HTTP/1.1 upstream (`upstream_http_version = "http11"`, default; idle upstream connections kept: ' +
    '`upstream_keepalive` default 256; with an h2c backend `upstream_http_version = "http2"`: shared multiplexed ' +
    'upstream connections)',
  unavailable: () => (existsSync(LOCH_CLI) ? null : `${LOCH_CLI} does not exist (run \`pnpm build\` first)`),
  async start(o) {
    const config = writeLochH2Config(o);
    // LOCH_BENCH_NODE_ARGS: extra node flags for profiling runs, as in http-proxy.
    const nodeArgs = (process.env.LOCH_BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
    const peer = startPeer(
      `loch (${o.workers}w)`,
      process.execPath,
      [...nodeArgs, LOCH_CLI, 'run', '-c', config],
      {
        cpu: o.cpu,
      },
    );
    return probed(peer, o);
  },
};

/** Every HTTP/2 proxy the benchmark knows, nginx first (the reference for ratios). */
export const H2_PROXIES: readonly H2ProxySpec[] = [nginx, haproxy, loch];
