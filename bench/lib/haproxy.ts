/**
 * HAProxy as a benchmark peer: `mode http` with `http-reuse always` (the HTTP reverse proxy)
 * and `mode tcp` (the L4 forwarder), run in the foreground (`-db`) from a config in its own
 * temp dir, threads = workers (`nbthread`). Not a general HAProxy config generator.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Peer, startPeer, waitForPort } from './measure.js';

/** A HAProxy peer and the temp dir that holds its config. */
export interface HaproxyPeer extends Peer {
  readonly dir: string;
  readonly port: number;
}

/** Starts HAProxy forwarding 127.0.0.1:`port` to 127.0.0.1:`upstreamPort`. */
export async function startHaproxy(options: {
  mode: 'http' | 'tcp';
  port: number;
  upstreamPort: number;
  workers: number;
  cpu?: string;
  /**
   * Log every request (`option httplog`) as syslog datagrams to this `host:port`; no logging
   * when absent. HAProxy 2.6 cannot write a file itself: an unbound UDP port takes the lines
   * (HAProxy formats and sends each one; the kernel finds no socket, drops it and answers an
   * ICMP port unreachable, rate limited).
   */
  logTo?: string;
}): Promise<HaproxyPeer> {
  const dir = mkdtempSync(join(tmpdir(), `loch-bench-haproxy-${options.mode}-`));
  const logGlobal = options.logTo === undefined ? '' : `  log ${options.logTo} local0 info\n`;
  const logDefaults =
    options.logTo === undefined
      ? ''
      : `  log global\n  option ${options.mode === 'http' ? 'httplog' : 'tcplog'}\n`;
  // maxconn 12000 wants 24,014 fds; the machine's hard limit is 20,000. `no strict-limits`
  // lets HAProxy start anyway: 10,000 idle clients plus a few upstream connections fit.
  const conf = `global
  nbthread ${options.workers}
  maxconn 12000
  no strict-limits
  tune.bufsize 16384
${logGlobal}
defaults
  mode ${options.mode}
  maxconn 12000
  timeout connect 5s
  timeout client 300s
  timeout server 300s
${logDefaults}${options.mode === 'http' ? '  timeout http-keep-alive 300s\n  option http-keep-alive\n  http-reuse always\n' : ''}
frontend fe
  bind 127.0.0.1:${options.port}
  default_backend be

backend be
  server s1 127.0.0.1:${options.upstreamPort}
`;
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, conf);
  const peer = startPeer(
    `haproxy ${options.mode} (${options.workers}w)`,
    'haproxy',
    ['-f', file, '-db'],
    options.cpu === undefined ? {} : { cpu: options.cpu },
  );
  try {
    await waitForPort(options.port);
  } catch (err) {
    await peer.stop();
    throw err;
  }
  return { ...peer, dir, port: options.port };
}

/**
 * HAProxy as an HTTPS reverse proxy: the `mode http` proxy of startHaproxy, terminating TLS on
 * `port` (`bind ... ssl crt`, certificate and key in one PEM file) with only the policy's version
 * and cipher suite, and serving plain HTTP on `plainPort` from the same threads. HAProxy's other
 * TLS defaults stay: session tickets on, its session cache (`tune.ssl.cachesize`).
 */
export async function startHaproxyTls(options: {
  port: number;
  plainPort: number;
  upstreamPort: number;
  workers: number;
  cpu?: string;
  tls: {
    /** Certificate followed by its key, one PEM file. */
    combined: string;
    version: 'TLSv1.2' | 'TLSv1.3';
    ciphersuites: string;
    ciphers: string;
  };
}): Promise<HaproxyPeer> {
  const dir = mkdtempSync(join(tmpdir(), 'loch-bench-haproxy-tls-'));
  const t = options.tls;
  const suites = t.version === 'TLSv1.3' ? `ciphersuites ${t.ciphersuites}` : `ciphers ${t.ciphers}`;
  // maxconn and `no strict-limits`: as in startHaproxy (10,000 idle clients within 20,000 fds).
  const conf = `global
  nbthread ${options.workers}
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
  bind 127.0.0.1:${options.port} ssl crt ${t.combined} ssl-min-ver ${t.version} ssl-max-ver ${t.version} ${suites}
  bind 127.0.0.1:${options.plainPort}
  default_backend be

backend be
  server s1 127.0.0.1:${options.upstreamPort}
`;
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, conf);
  const peer = startPeer(
    `haproxy ssl (${options.workers}w)`,
    'haproxy',
    ['-f', file, '-db'],
    options.cpu === undefined ? {} : { cpu: options.cpu },
  );
  try {
    await waitForPort(options.port);
  } catch (err) {
    await peer.stop();
    throw err;
  }
  return { ...peer, dir, port: options.port };
}
