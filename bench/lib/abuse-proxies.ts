/**
 * The proxies of the abuse benchmarks (upload-starvation, slow-readers, bench/abuse's worker
 * crash), each started fresh in the same setup: `loch run` from apps/proxy's build (as
 * bench/https runs it; LOCH_BENCH_LOCH_SOURCE=1 runs the sources through tsx instead, for a tree
 * whose build is broken by work in progress) on io_uring or on the legacy driver, nginx and HAProxy, routing path prefixes to upstreams on loopback, with the
 * same read/write timeouts everywhere and each peer's defaults otherwise (nginx buffers request
 * and response bodies, spooling them to disk; HAProxy streams through its 16 KiB buffers).
 * Not the wrk benchmarks' peers (bench/lib/nginx.ts, haproxy.ts: pinned CPUs, one upstream).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Peer, startPeer, waitForPort } from './measure.js';

/** The proxies every abuse scenario compares. */
export const ABUSE_PEERS = ['loch-uring', 'loch-legacy', 'nginx', 'haproxy'] as const;
export type AbusePeer = (typeof ABUSE_PEERS)[number];

/** Checks a comma-separated peer list. */
export function abusePeers(list: string): AbusePeer[] {
  const peers = list.split(',').filter((p) => p !== '');
  for (const p of peers)
    if (!(ABUSE_PEERS as readonly string[]).includes(p))
      throw new Error(`unknown peer ${p} (known: ${ABUSE_PEERS.join(', ')})`);
  return peers as AbusePeer[];
}

/** Requests whose path starts with `prefix` go to 127.0.0.1:`port`; the last route is `/`. */
export interface AbuseRoute {
  prefix: string;
  port: number;
}

export interface AbuseProxyOptions {
  /** Where the proxy listens (127.0.0.1). */
  port: number;
  routes: readonly AbuseRoute[];
  /** A temp dir of the proxy's own (config, nginx's temp files). */
  dir: string;
  /** Worker threads (loch), processes (nginx) or threads (HAProxy); default 1. */
  workers?: number;
  /**
   * Seconds of every read and write timeout (loch server_read_body, server_write, upstream_read;
   * nginx client_body_timeout, send_timeout, proxy_read/send_timeout; HAProxy timeout
   * client/server); default 60 (nginx's send_timeout and loch's server_write defaults).
   */
  timeoutSeconds?: number;
  /** loch only: an admin listener on this port (/stats). */
  adminPort?: number;
  /** loch only: more environment (LOCH_DEBUG_CRASH_WORKER...). */
  env?: Record<string, string>;
}

const PROXY_DIR = fileURLToPath(new URL('../../apps/proxy', import.meta.url));

/** Starts `peer` and resolves once it accepts connections. */
export async function startAbuseProxy(peer: AbusePeer, o: AbuseProxyOptions): Promise<Peer> {
  const started =
    peer === 'nginx' ? startNginx(o) : peer === 'haproxy' ? startHaproxy(o) : startLoch(peer.slice(5), o);
  try {
    await waitForPort(o.port, '127.0.0.1', 30_000);
  } catch (error) {
    await started.stop();
    throw error;
  }
  return started;
}

function startLoch(driver: string, o: AbuseProxyOptions): Peer {
  const t = `${o.timeoutSeconds ?? 60}s`;
  const routes = o.routes
    .map(
      (r) => `
[[servers.web.routes]]
path = "${r.prefix}"
upstreams = [{ endpoint = "http://127.0.0.1:${r.port}" }]
`,
    )
    .join('');
  const config = join(o.dir, 'loch.toml');
  writeFileSync(
    config,
    `
[runtime]
workers = ${o.workers ?? 1}
max_connections_per_worker = 12000
${o.adminPort === undefined ? '' : `\n[admin]\nlistener = { type = "socket", value = "127.0.0.1:${o.adminPort}" }\n`}
[log]
access = false

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${o.port}" }
timeouts = { server_keepalive = "60s", server_read_body = "${t}", server_write = "${t}", upstream_read = "${t}" }
${routes}`,
  );
  // From the build, as a user runs it: through tsx a replacement worker spends seconds
  // transpiling its modules again (bench/abuse's worker crash measured 1.5-3.4 s to replace one).
  const source = process.env.LOCH_BENCH_LOCH_SOURCE === '1';
  const cli = join(PROXY_DIR, 'dist/bin.js');
  if (!source && !existsSync(cli)) throw new Error(`${cli} does not exist (run \`pnpm build\` first)`);
  const entry = source
    ? ['--conditions=@loch/source', '--import', 'tsx', join(PROXY_DIR, 'src/bin.ts')]
    : [cli];
  return startPeer(`loch ${driver}`, process.execPath, [...entry, 'run', '-c', config], {
    cwd: PROXY_DIR,
    env: { ...process.env, ...o.env, LOCH_DRIVER: driver },
    nofile: 20_000,
  });
}

function startNginx(o: AbuseProxyOptions): Peer {
  const t = `${o.timeoutSeconds ?? 60}s`;
  mkdirSync(join(o.dir, 'logs'), { recursive: true });
  const upstreams = o.routes
    .map((r, i) => `  upstream u${i} { server 127.0.0.1:${r.port}; keepalive 16; }`)
    .join('\n');
  const locations = o.routes
    .map(
      (r, i) =>
        `    location ${r.prefix} { proxy_pass http://u${i}; proxy_http_version 1.1; proxy_set_header Connection ""; }`,
    )
    .join('\n');
  const conf = `worker_processes ${o.workers ?? 1};
user root;
pid ${o.dir}/nginx.pid;
error_log ${o.dir}/error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 12000; }
http {
  access_log off;
  client_body_temp_path ${o.dir}/client_body;
  proxy_temp_path ${o.dir}/proxy;
  client_max_body_size 0;
  client_body_timeout ${t};
  send_timeout ${t};
  proxy_read_timeout ${t};
  proxy_send_timeout ${t};
${upstreams}
  server {
    listen 127.0.0.1:${o.port} reuseport;
${locations}
  }
}
`;
  const file = join(o.dir, 'nginx.conf');
  writeFileSync(file, conf);
  return startPeer('nginx', 'nginx', ['-p', o.dir, '-c', file, '-g', 'daemon off;'], { nofile: 20_000 });
}

function startHaproxy(o: AbuseProxyOptions): Peer {
  const t = `${o.timeoutSeconds ?? 60}s`;
  const uses = o.routes
    .slice(0, -1)
    .map((r, i) => `  use_backend b${i} if { path_beg ${r.prefix} }`)
    .join('\n');
  const backends = o.routes.map((r, i) => `backend b${i}\n  server s${i} 127.0.0.1:${r.port}\n`).join('\n');
  const conf = `global
  nbthread ${o.workers ?? 1}
  maxconn 12000
  no strict-limits

defaults
  mode http
  maxconn 12000
  timeout connect 5s
  timeout client ${t}
  timeout server ${t}
  timeout http-keep-alive 60s
  option http-keep-alive
  http-reuse always

frontend fe
  bind 127.0.0.1:${o.port}
${uses}
  default_backend b${o.routes.length - 1}

${backends}`;
  const file = join(o.dir, 'haproxy.cfg');
  writeFileSync(file, conf);
  return startPeer('haproxy', 'haproxy', ['-f', file, '-db'], { nofile: 20_000 });
}
