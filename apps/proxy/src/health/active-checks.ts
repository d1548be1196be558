/**
 * Active health checks, run once per process by the main thread (never per worker): for every
 * upstream of a route with `health_check`, a GET of the check path every interval, with a
 * deadline; `unhealthy_threshold` failures in a row mark it down, `healthy_threshold` passes in
 * a row bring it back. Verdicts go to the shared table (health-flags.ts) that every worker reads
 * on its request path. Each distinct (upstream, check settings) is one target with one slot,
 * checked once however many routes name it; on each reload `update(next)` starts the new ones
 * and keeps the rest (with their state and slot), and `retain(running)` stops those the
 * committed config no longer names, so verdicts survive reloads and worker replacements (a
 * replacement reads the same table).
 * Checks use node:http (node:http2 for HTTP/2 upstreams, node:tls for https ones) on the main
 * thread, off the request path.
 * Not for passive health (upstream-group.ts).
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect as connectHttp2 } from 'node:http2';
import { connect as netConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import type { ProxyConfig, RouteConfig, UpstreamAddress, UpstreamConfig } from '../config/schema.js';
import { lazyModule } from '../lazy-module.js';
import type { HealthCheckConfig } from './config.js';
import { HEALTH_SLOTS, SLOT_DOWN, SLOT_UP } from './health-flags.js';

/** A target's state, as the metrics read it. */
export interface HealthTargetStats {
  /** The upstream as written in the config. */
  readonly upstream: string;
  readonly path: string;
  readonly healthy: boolean;
  /** Checks run, and how many failed. */
  readonly checks: number;
  readonly failures: number;
  /** Why the last failed check failed ("" when it passed). */
  readonly lastError: string;
}

/** Where the checker reports changes of state. */
export interface HealthLog {
  info(message: string): void;
  warn(message: string): void;
}

interface Target {
  readonly key: string;
  readonly slot: number;
  readonly label: string;
  readonly address: UpstreamAddress;
  readonly check: HealthCheckConfig;
  healthy: boolean;
  /** Passes (when down) or failures (when up) in a row. */
  streak: number;
  checks: number;
  failures: number;
  lastError: string;
  /** Protocol and PROXY header of the checks. */
  /** Its proxyHeader is set before the first check of an upstream that expects one. */
  transport: CheckTransport;
  timer: NodeJS.Timeout | undefined;
  /** Cancels the check in flight. */
  inFlight: (() => void) | undefined;
  stopped: boolean;
}

/** Identity of an upstream address for checks: the same address and TLS settings share a target. */
function addressKey(address: UpstreamAddress): string {
  return address.kind === 'unix'
    ? `unix:${address.path}`
    : `${address.scheme}://${address.host}:${address.port}${address.tls === undefined ? '' : `|${address.tls.serverName}|${address.tls.verify}|${address.tls.ca}`}`;
}

/** Identity of a check target: the upstream's address and the check's settings. */
function targetKey(upstream: UpstreamConfig, check: HealthCheckConfig, http2: boolean): string {
  return `${addressKey(upstream.address)}|${http2 ? 'h2' : 'h1'}|${upstream.sendProxyProtocol ?? ''}|${JSON.stringify(check)}`;
}

/** How the checks of `upstream` connect: protocol, and the PROXY header version it expects. */
function transportOf(upstream: UpstreamConfig, http2: boolean): CheckTransport {
  const send = upstream.sendProxyProtocol;
  return { http2, ...(send === undefined ? {} : { proxyVersion: send === 'v1' ? 1 : 2 }) };
}

/**
 * @loch/transports (for its PROXY header encoder), loaded with the first check that sends a
 * header: the package's index brings the HTTP, TLS and Thrift code that `loch run`'s main
 * thread, where the checks run, never uses otherwise (~4 MiB of heap;
 * bench/idle-memory/readings-2026-12-06c.md). A failed import is retried by the next check.
 */
const transports = lazyModule(() => import('@loch/transports'));

/** The header a check sends first: v1 "PROXY UNKNOWN" or a v2 LOCAL header (no addresses). */
async function checkProxyHeader(version: 1 | 2): Promise<Uint8Array> {
  return (await transports.load()).encodeProxyHeader({ version, source: null, destination: null });
}

/** Runs every configured check of the process and keeps the shared table current. */
export class ActiveHealthChecker {
  readonly #flags: Int32Array;
  readonly #log: HealthLog;
  readonly #targets = new Map<string, Target>();
  readonly #free: number[] = [];
  #nextSlot = 0;
  #closed = false;

  constructor(flags: Int32Array, log: HealthLog) {
    this.#flags = flags;
    this.#log = log;
    processChecker = this;
  }

  /**
   * Starts the checks `config` needs that are not running yet and returns `config` with each
   * checked route's `healthSlots` set (one per upstream, -1 for an upstream beyond the table's
   * capacity): the config to hand the workers. Stops nothing: a reload stops the checks it no
   * longer needs with `retain` once it committed (or keeps the running config's on abort), so
   * the slots the running workers read never change under them.
   */
  update(config: ProxyConfig): ProxyConfig {
    const withSlots = (route: RouteConfig): RouteConfig => {
      const check = route.healthCheck;
      if (check === undefined) return route;
      const slots = route.upstreams.map((u) => {
        const http2 = route.upstreamHttpVersion === 'http2';
        return this.#target(targetKey(u, check, http2), u, check, transportOf(u, http2))?.slot ?? -1;
      });
      return { ...route, healthSlots: slots };
    };
    const servers = config.servers.map((s) =>
      s.routes.some((r) => r.healthCheck !== undefined) ? { ...s, routes: s.routes.map(withSlots) } : s,
    );
    return servers.every((s, i) => s === config.servers[i]) ? config : { ...config, servers };
  }

  /** Stops every check that `config` (the config the workers run now) does not use; frees its slot. */
  retain(config: ProxyConfig): void {
    const wanted = new Set<string>();
    for (const server of config.servers)
      for (const route of server.routes) {
        const check = route.healthCheck;
        if (check !== undefined)
          for (const u of route.upstreams)
            wanted.add(targetKey(u, check, route.upstreamHttpVersion === 'http2'));
      }
    for (const [key, target] of this.#targets) if (!wanted.has(key)) this.#stop(target);
  }

  /** Every target's state (read-only copies). */
  stats(): HealthTargetStats[] {
    return [...this.#targets.values()].map((t) => ({
      upstream: t.label,
      path: t.check.path,
      healthy: t.healthy,
      checks: t.checks,
      failures: t.failures,
      lastError: t.lastError,
    }));
  }

  /** Stops every check (shutdown). */
  close(): void {
    this.#closed = true;
    for (const target of this.#targets.values()) this.#stop(target);
  }

  #target(
    key: string,
    upstream: UpstreamConfig,
    check: HealthCheckConfig,
    transport: CheckTransport,
  ): Target | undefined {
    const label = upstream.label;
    const existing = this.#targets.get(key);
    if (existing !== undefined) return existing;
    const slot = this.#free.pop() ?? (this.#nextSlot < HEALTH_SLOTS ? this.#nextSlot++ : -1);
    if (slot < 0) {
      this.#log.warn(`health check of ${label}: more than ${HEALTH_SLOTS} checked upstreams, not checked`);
      return undefined;
    }
    Atomics.store(this.#flags, slot, SLOT_UP);
    const target: Target = {
      key,
      slot,
      label,
      address: upstream.address,
      check,
      transport,
      healthy: true,
      streak: 0,
      checks: 0,
      failures: 0,
      lastError: '',
      timer: undefined,
      inFlight: undefined,
      stopped: this.#closed,
    };
    this.#targets.set(key, target);
    if (!this.#closed) this.#run(target);
    return target;
  }

  #stop(target: Target): void {
    target.stopped = true;
    clearTimeout(target.timer);
    target.inFlight?.();
    this.#targets.delete(target.key);
    // A freed slot reads healthy for whoever gets it next.
    Atomics.store(this.#flags, target.slot, SLOT_UP);
    this.#free.push(target.slot);
  }

  #schedule(target: Target): void {
    if (target.stopped) return;
    target.timer = setTimeout(() => this.#run(target), target.check.interval);
    // Checks never keep the process alive on their own.
    target.timer.unref();
  }

  #run(target: Target): void {
    if (target.stopped) return;
    const version = target.transport.proxyVersion;
    if (version !== undefined && target.transport.proxyHeader === undefined) {
      checkProxyHeader(version).then(
        (proxyHeader) => {
          target.transport = { ...target.transport, proxyHeader };
          this.#run(target);
        },
        (error: unknown) =>
          this.#checked(target, `PROXY header: ${(error as Error)?.message ?? String(error)}`),
      );
      return;
    }
    checkOnce(target.address, target.check, target.transport, (cancel) => {
      target.inFlight = cancel;
    }).then(
      (error) => this.#checked(target, error),
      // A check that could not even start (a request node:http refused) is a failed check,
      // and the next one still comes.
      (error: unknown) => this.#checked(target, (error as Error | null)?.message ?? String(error)),
    );
  }

  #checked(target: Target, error: string | null): void {
    target.inFlight = undefined;
    if (target.stopped) return;
    this.#record(target, error);
    this.#schedule(target);
  }

  #record(target: Target, error: string | null): void {
    target.checks++;
    const check = target.check;
    if (error !== null) {
      target.failures++;
      target.lastError = error;
    } else {
      target.lastError = '';
    }
    const passed = error === null;
    if (passed === target.healthy) {
      target.streak = 0;
      return;
    }
    target.streak++;
    const threshold = target.healthy ? check.unhealthyThreshold : check.healthyThreshold;
    if (target.streak < threshold) return;
    target.healthy = passed;
    target.streak = 0;
    Atomics.store(this.#flags, target.slot, passed ? SLOT_UP : SLOT_DOWN);
    if (passed) this.#log.info(`upstream ${target.label} is healthy again (${check.path})`);
    else this.#log.warn(`upstream ${target.label} is down: ${check.path}: ${error}`);
  }
}

/** The process's checker (the one `loch run` made), for activeHealthStats. */
let processChecker: ActiveHealthChecker | null = null;

/**
 * Every active check target of this process with its state (read-only copies; main thread,
 * where `loch run` runs the checks): the read-only API the metrics export. Empty when no route
 * has `health_check` or outside `loch run`.
 */
export function activeHealthStats(): HealthTargetStats[] {
  return processChecker?.stats() ?? [];
}

/** How a check reaches its upstream besides the address: protocol and a PROXY header. */
export interface CheckTransport {
  /** Over HTTP/2 (h2c by prior knowledge, h2 by ALPN), as the route's upstream_http_version = "http2". */
  readonly http2?: boolean;
  /**
   * A PROXY header sent first on the connection (the upstream has send_proxy_protocol): v1
   * "PROXY UNKNOWN" or a v2 LOCAL header, which tell the receiver the connection is the
   * proxy's own (a health check), as haproxy sends to its checked servers.
   */
  readonly proxyHeader?: Uint8Array | undefined;
  /** The PROXY header version the upstream expects; the checker sets proxyHeader from it. */
  readonly proxyVersion?: 1 | 2 | undefined;
}

/**
 * One check: a GET of the check path under the deadline, over HTTP/1.1 (`Connection: close`)
 * or HTTP/2 (`transport.http2`), after a PROXY header when the upstream expects one, over TLS
 * for https upstreams (verified as the route's requests are). Resolves with null when it
 * passed, else with why it failed; never rejects. `started` gets a function that cancels the
 * check (it then settles as failed).
 */
export function checkOnce(
  address: UpstreamAddress,
  check: HealthCheckConfig,
  transport: CheckTransport = {},
  started: (cancel: () => void) => void = () => {},
): Promise<string | null> {
  return new Promise((resolve) => {
    let settled = false;
    let cancel: () => void = () => {};
    const done = (error: string | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      cancel();
      resolve(error);
    };
    const verdict = (status: number) =>
      done(
        check.expectedStatuses.some(([lo, hi]) => status >= lo && status <= hi) ? null : `status ${status}`,
      );
    const failed = (error: NodeJS.ErrnoException) => done(error.code ?? error.message);
    const host = check.host ?? address.authority;
    const http2 = transport.http2 === true;
    // One way to connect for every case: the raw socket (and the PROXY header first), then TLS
    // over it for https upstreams.
    const connect = (): Duplex => {
      const raw = address.kind === 'unix' ? netConnect(address.path) : netConnect(address.port, address.host);
      if (transport.proxyHeader !== undefined) raw.write(transport.proxyHeader);
      if (address.kind !== 'tcp' || address.scheme !== 'https') return raw;
      const tls = address.tls;
      return tlsConnect({
        socket: raw,
        servername: tls?.serverName ?? address.host,
        rejectUnauthorized: tls?.verify ?? true,
        ALPNProtocols: [http2 ? 'h2' : 'http/1.1'],
        ...(tls !== undefined && tls.ca !== 'system' ? { ca: readCa(tls.ca) } : {}),
      });
    };
    const timer = setTimeout(() => done(`no answer within ${check.timeout} ms`), check.timeout);
    // A check in flight never keeps the process alive.
    timer.unref();
    if (http2) {
      const scheme = address.kind === 'tcp' ? address.scheme : 'http';
      const session = connectHttp2(`${scheme}://${host}`, { createConnection: connect });
      cancel = () => session.destroy();
      session.on('error', failed);
      session.on('close', () => done('closed before an answer'));
      const stream = session.request({
        ':method': 'GET',
        ':path': check.path,
        ':authority': host,
        'user-agent': 'loch-health-check',
      });
      stream.on('response', (headers) => verdict(Number(headers[':status'] ?? 0)));
      stream.on('error', failed);
      stream.end();
    } else {
      const req = httpRequest(
        {
          method: 'GET',
          path: check.path,
          headers: { host, 'user-agent': 'loch-health-check', connection: 'close' },
          createConnection: connect,
        },
        (res: IncomingMessage) => {
          res.resume();
          verdict(res.statusCode ?? 0);
        },
      );
      cancel = () => req.destroy();
      req.on('error', failed);
      req.on('close', () => done('closed before an answer'));
      req.end();
    }
    started(() => done('stopped'));
  });
}

function readCa(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
}
