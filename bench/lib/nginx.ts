/**
 * nginx as a benchmark peer: the static backend every proxy benchmark forwards to, the HTTP
 * reverse proxy (proxy_pass with upstream keep-alive) and the L4 `stream` forwarder. Each runs
 * as a non-daemon child with its own temp prefix (config, pid, error log, temp paths), so
 * nothing touches the system's nginx. Not a general nginx config generator.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Peer, startPeer, waitForPort } from './measure.js';

/** The dynamic stream module of Debian's nginx-light (libnginx-mod-stream). */
const STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';

/** Keep-alive requests per connection: high enough that wrk never reconnects mid-run. */
const KEEPALIVE_REQUESTS = 1_000_000;

/** An nginx peer and the temp prefix it lives in. */
export interface NginxPeer extends Peer {
  readonly prefix: string;
  readonly port: number;
}

/** worker_connections unless a peer asks for more (the idle-memory bench holds 50,000). */
const WORKER_CONNECTIONS = 16_384;

function prelude(prefix: string, workers: number, extra = '', connections = WORKER_CONNECTIONS): string {
  // More connections than the default: a descriptor each and room for upstream ones.
  const nofile = connections > WORKER_CONNECTIONS ? connections + 1_000 : 20_000;
  return `${extra}
worker_processes ${workers};
user root;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
worker_rlimit_nofile ${nofile};
events { worker_connections ${connections}; multi_accept on; }
`;
}

/**
 * The http block's common lines. `accessLog`: a file for nginx's access log as it ships
 * (`access_log <file>;`: the predefined `combined` format, no `buffer=`, so nginx writes each
 * line with its own write(2) as the request ends); without it `access_log off`.
 */
function httpCommon(prefix: string, accessLog?: string): string {
  return `  access_log ${accessLog ?? 'off'};
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  keepalive_requests ${KEEPALIVE_REQUESTS};
  keepalive_timeout 300s;
  tcp_nodelay on;`;
}

async function launch(
  name: string,
  conf: string,
  prefix: string,
  port: number,
  cpu: string | undefined,
): Promise<NginxPeer> {
  mkdirSync(join(prefix, 'logs'), { recursive: true });
  const file = join(prefix, 'nginx.conf');
  writeFileSync(file, conf);
  const peer = startPeer(name, 'nginx', ['-p', prefix, '-c', file, '-g', 'daemon off;'], {
    ...(cpu === undefined ? {} : { cpu }),
  });
  try {
    await waitForPort(port);
  } catch (err) {
    await peer.stop();
    throw err;
  }
  return { ...peer, prefix, port };
}

/**
 * nginx serving the files of `root` over HTTP/1.1 keep-alive on 127.0.0.1:`port`, or (`http2`)
 * over h2c by prior knowledge (nginx 1.22's plain `listen ... http2` speaks only HTTP/2).
 */
export function startNginxStatic(options: {
  root: string;
  port: number;
  workers?: number;
  cpu?: string;
  http2?: boolean;
}): Promise<NginxPeer> {
  const prefix = mkdtempSync(join(tmpdir(), 'loch-bench-nginx-static-'));
  const conf = `${prelude(prefix, options.workers ?? 1)}
http {
${httpCommon(prefix)}
  sendfile on;
  tcp_nopush on;
  open_file_cache max=64 inactive=600s;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${options.port}${options.http2 === true ? ' http2' : ''} backlog=4096;
    root ${options.root};
    location / { }
  }
}
`;
  return launch('nginx static', conf, prefix, options.port, options.cpu);
}

/**
 * nginx as an HTTP reverse proxy: upstream block with `keepalive 64`, HTTP/1.1 to the upstream
 * with the Connection header cleared (so upstream connections are reused), default in-memory
 * buffering but no temp files (a body larger than the buffers streams through instead).
 */
export function startNginxProxy(options: {
  port: number;
  upstreamPort: number;
  workers: number;
  cpu?: string;
  /** worker_connections (16,384 unless given; worker_rlimit_nofile follows). */
  connections?: number;
  /** Write the access log as nginx ships it (see httpCommon) to this file; off when absent. */
  accessLog?: string;
}): Promise<NginxPeer> {
  const prefix = mkdtempSync(join(tmpdir(), 'loch-bench-nginx-proxy-'));
  const conf = `${prelude(prefix, options.workers, '', options.connections)}
http {
${httpCommon(prefix, options.accessLog)}
  upstream backend {
    server 127.0.0.1:${options.upstreamPort};
    keepalive 64;
    keepalive_requests ${KEEPALIVE_REQUESTS};
  }
  server {
    listen 127.0.0.1:${options.port} backlog=4096${options.workers > 1 ? ' reuseport' : ''};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # Buffer in memory only: never write a large response to a temp file mid-benchmark.
      proxy_max_temp_file_size 0;
    }
  }
}
`;
  return launch(`nginx proxy_pass (${options.workers}w)`, conf, prefix, options.port, options.cpu);
}

/** nginx `stream` (L4): every client connection gets its own upstream connection. */
export function startNginxStream(options: {
  port: number;
  upstreamPort: number;
  workers: number;
  cpu?: string;
}): Promise<NginxPeer> {
  const prefix = mkdtempSync(join(tmpdir(), 'loch-bench-nginx-stream-'));
  const conf = `${prelude(prefix, options.workers, `load_module ${STREAM_MODULE};`)}
stream {
  upstream backend { server 127.0.0.1:${options.upstreamPort}; }
  server {
    listen 127.0.0.1:${options.port} backlog=4096${options.workers > 1 ? ' reuseport' : ''};
    proxy_pass backend;
    tcp_nodelay on;
  }
}
`;
  return launch(`nginx stream (${options.workers}w)`, conf, prefix, options.port, options.cpu);
}

/**
 * nginx as an HTTPS reverse proxy: the same proxy as startNginxProxy (upstream `keepalive 64`,
 * HTTP/1.1 upstream, no temp files), terminating TLS on `port` (`listen ... ssl`) with the given
 * certificate and only the policy's version and cipher suite, and serving plain HTTP on
 * `plainPort` from the same workers, so one instance gives both costs. nginx's other TLS
 * defaults stay: session tickets on (keys made at start, shared by the workers), no session
 * cache, `ssl_buffer_size 16k`.
 */
export function startNginxTlsProxy(options: {
  port: number;
  plainPort: number;
  upstreamPort: number;
  workers: number;
  cpu?: string;
  tls: {
    chain: string;
    key: string;
    version: 'TLSv1.2' | 'TLSv1.3';
    ciphersuites: string;
    ciphers: string;
  };
}): Promise<NginxPeer> {
  const prefix = mkdtempSync(join(tmpdir(), 'loch-bench-nginx-tls-'));
  const reuse = options.workers > 1 ? ' reuseport' : '';
  const t = options.tls;
  const conf = `${prelude(prefix, options.workers)}
http {
${httpCommon(prefix)}
  upstream backend {
    server 127.0.0.1:${options.upstreamPort};
    keepalive 64;
    keepalive_requests ${KEEPALIVE_REQUESTS};
  }
  server {
    listen 127.0.0.1:${options.port} ssl backlog=4096${reuse};
    listen 127.0.0.1:${options.plainPort} backlog=4096${reuse};
    ssl_certificate ${t.chain};
    ssl_certificate_key ${t.key};
    ssl_protocols ${t.version};
    ${t.version === 'TLSv1.3' ? `ssl_conf_command Ciphersuites ${t.ciphersuites};` : `ssl_ciphers ${t.ciphers};`}
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_max_temp_file_size 0;
    }
  }
}
`;
  return launch(`nginx ssl proxy_pass (${options.workers}w)`, conf, prefix, options.port, options.cpu);
}
