/**
 * One proxy worker (a thread started by the runtime's start()): binds its listeners, serves
 * each accepted connection with the HttpServer of its server, and runs the reload protocol the
 * main thread drives over the command channel:
 *   precommit(config): build every server's next chain from its current one (make(old): pools
 *                      carry over) and bind listeners the new config adds; nothing is served
 *                      yet, and any failure undoes both and is reported;
 *   commit:            swap the staged chains in, start accepting on new listeners, close the
 *                      listeners of removed servers or changed addresses;
 *   abort:             drop the staged chains, close the listeners bound for them.
 * TCP listeners are bound in every worker with SO_REUSEPORT (the kernel spreads connections);
 * a Unix path can be bound by one socket only, so worker 0 owns every Unix listener.
 * On stop (context.signal) it closes its listeners, lets in-flight requests finish with
 * `connection: close` within the server's shutdown grace, then closes what is left.
 * Not for config loading or signal handling (run.ts).
 */
import { getHeapSpaceStatistics } from 'node:v8';
import { resourceLimits } from 'node:worker_threads';
import { HttpServer } from '@loch/http';
import { ServiceSlot } from '@loch/service-async';
import type { TlsServerContext } from '@loch/tls';
import { proxyProtocolAccept } from '@loch/transports';
import {
  acceptLoop,
  type ByteStream,
  RuntimeStream,
  type StreamListener,
  TcpListener,
  UnixListener,
  type WorkerContext,
} from '@loch/uring-runtime';
import type { ListenAddress, ProxyConfig, ServerConfig } from '../config/schema.js';
import { trustedPeersOf } from '../config/trusted-peers.js';
import { attachHealthFlags } from '../health/health-flags.js';
import { reportHealthTo } from '../health/upstream-group.js';
import { lazyModule } from '../lazy-module.js';
import { workerGroupHealth } from '../metrics/health-stats.js';
import { workerMetrics } from '../metrics/recorder.js';
import { runtimeStats } from '../metrics/runtime-stats.js';
import type { ThriftServers } from '../thrift/servers.js';
import { clientCertHeader } from './client-cert.js';
import { ConnectionLimit } from './connection-limit.js';
import { type ConnectionCx, connectionContext, type ServerIdentity } from './context.js';
import { RequestHooks } from './core.js';
import { type DebugAids, NO_DEBUG_AIDS, runBeforeStats } from './debug-aids.js';
import { forwardedFor } from './header-hygiene.js';
import { ProxyLog, type StagedAccessLogs } from './log.js';
import { answerPlainHttp } from './plain-http.js';
import type { ServerLifecycle } from './reuse.js';
import { closeGatewayUpstreams } from './route.js';
import { connectorOf, type ServerHandler, serverStack } from './stack.js';
import type { TicketKeySets } from './ticket-rotation.js';
import { drainTunnels } from './tunnel.js';
import { newUpstreamConnector, UpstreamStreams } from './upstream.js';
import {
  listenId,
  type TlsRecordCounts,
  type WorkerCommand,
  type WorkerData,
  type WorkerStats,
} from './worker-protocol.js';

/** ALPN offered on HTTPS listeners, in preference order (h2 first, as nginx and Envoy). */
const HTTPS_ALPN: readonly string[] = ['h2', 'http/1.1'];
const HTTPS_ALPN_H1: readonly string[] = ['http/1.1'];
/**
 * The TLS side of the listeners (worker-tls.ts: @loch/tls), imported in the precommit of the
 * first config with a TLS server; every TLS context a worker holds was made by it, so code that
 * has one reads it from `loaded`.
 */
const WORKER_TLS = lazyModule(() => import('./worker-tls.js'));

/**
 * How long a stopping worker waits for the tunnel drain's log line once its connections are
 * closed (the drain is over by then, a few microtasks behind; the bound is only a backstop).
 */
const TUNNEL_LOG_WAIT_MS = 1000;

interface ServerEntry {
  readonly key: string;
  readonly slot: ServiceSlot<ServerHandler>;
  /** What connections know of their server; its scheme follows reloads (TLS on or off). */
  readonly identity: { readonly key: string; scheme: ServerIdentity['scheme'] };
  config: ServerConfig;
  lifecycle: ServerLifecycle;
  http: HttpServer<ConnectionCx>;
  /** The server's TLS context (this worker's own), or null for plain HTTP. */
  tls: TlsServerContext | null;
  staged: { config: ServerConfig; lifecycle: ServerLifecycle; tls: TlsServerContext | null } | null;
  /** recordStats() of the TLS contexts that reloads replaced, so the worker's counts only grow. */
  retiredRecords: { loch: number; declined: number };
}

interface ListenerEntry {
  readonly id: string;
  readonly listener: StreamListener;
  serverKey: string;
  accepting: boolean;
}

/** What the HttpServer is built from: a reload that changes it makes a new one. */
function timeoutsKey(s: ServerConfig): string {
  const t = s.timeouts;
  return `${t.serverKeepalive}/${t.serverReadHeader}/${t.serverReadBody}/${t.serverWrite}/${s.http2}/${s.maxHeaderSize}/${s.maxHeaderCount}`;
}

/**
 * The idle-trim period: env LOCH_IDLE_TRIM_MS (milliseconds) when set, like LOCH_DRIVER over
 * `runtime.driver`, else the config's `runtime.idle_memory_trim`.
 */
export function idleTrimMs(
  config: ProxyConfig,
  env: string | undefined = process.env.LOCH_IDLE_TRIM_MS,
): number {
  const fromEnv = env === undefined || env === '' ? Number.NaN : Number(env);
  return Number.isFinite(fromEnv) && fromEnv >= 0 ? fromEnv : config.runtime.idleMemoryTrimMs;
}

/** The slice of the worker's Runtime the proxy configures (runtime.idle_memory_trim). */
export interface IdleTrimTarget {
  setIdleTrim(ms: number): boolean;
}

/** The proxy worker. */
export class ProxyWorker {
  readonly log: ProxyLog;
  generation = 0;
  #config: ProxyConfig;
  readonly #servers = new Map<string, ServerEntry>();
  readonly #listeners = new Map<string, ListenerEntry>();
  /** Every HttpServer that may still have connections (replaced ones drain on their own). */
  readonly #https = new Set<HttpServer<ConnectionCx>>();
  /**
   * Client connections not yet handed to an HttpServer (a PROXY header or a TLS handshake in
   * progress, a plain-HTTP answer on a TLS port). An attached one is counted and closed by its
   * HttpServer (connections, closeAll()): a set entry per idle connection here cost ~20-40 B more.
   */
  readonly #open = new Set<ByteStream>();
  /** One close callback for every served connection: HttpServer released it before the call. */
  readonly #closed = (): void => {
    this.#limit.released();
  };
  readonly #upstreamStreams = new UpstreamStreams();
  #staged: {
    generation: number;
    config: ProxyConfig;
    listeners: ListenerEntry[];
    added: ServerEntry[];
    access: StagedAccessLogs;
  } | null = null;
  #stopping = false;
  readonly #runtime: IdleTrimTarget | undefined;
  readonly #debug: DebugAids;
  #idleTrimMs: number | undefined;
  /**
   * The `proxy_type = "thrift"` servers (their listeners are in #listeners like the others),
   * from the first config that has one: until then the worker has not loaded the Thrift relay
   * (thrift/servers.ts and what it imports), which an HTTP-only worker never uses.
   */
  #thrift: ThriftServers | null = null;
  /** runtime.max_connections_per_worker: accepting pauses at the limit (connection-limit.ts). */
  readonly #limit: ConnectionLimit;

  constructor(
    readonly index: number,
    config: ProxyConfig,
    runtime?: IdleTrimTarget,
    debug: DebugAids = NO_DEBUG_AIDS,
  ) {
    this.#config = config;
    this.#runtime = runtime;
    this.#debug = debug;
    this.log = new ProxyLog(config.logLevel, `worker ${index}: `);
    // A bad LOCH_LOG is reported once, by the main thread.
    this.log.configureLevels(config);
    this.#limit = new ConnectionLimit(
      config.runtime.maxConnectionsPerWorker,
      () => this.#httpConnections() + (this.#thrift?.connections ?? 0),
      (max, pauses) =>
        this.log.warn(
          `max_connections_per_worker (${max}) reached: accepting paused until a connection closes` +
            (pauses > 1 ? ` (${pauses} pauses since the last report)` : ''),
        ),
    );
  }

  /**
   * Open HTTP client connections: not yet attached (#open) and served by an HttpServer (a
   * replaced one drains its own). H1 and H2 release a connection from its server before they
   * call #closed, so the count is right when the limit asks.
   */
  #httpConnections(): number {
    let n = this.#open.size;
    for (const http of this.#https) n += http.connections;
    return n;
  }

  /** Binds and builds the first config (generation 0). */
  async start(): Promise<void> {
    await this.precommit(0, this.#config);
    this.commit(0);
  }

  /** Runs a command of the reload protocol. */
  command(msg: WorkerCommand): unknown {
    switch (msg.t) {
      case 'precommit':
        workerMetrics.adopt(msg.metrics);
        return this.precommit(msg.generation, msg.config);
      case 'commit':
        return this.commit(msg.generation);
      case 'abort':
        return this.abort(msg.generation);
      case 'stats':
        return this.stats();
      case 'reopen':
        return this.log.reopen();
      case 'startup':
        return true;
      case 'ticket-keys':
        return this.setTicketKeys(msg.keys);
    }
  }

  /**
   * Installs rotated session ticket keys: the next handshake issues tickets under the new first
   * key and still accepts the kept ones. A reload staged meanwhile (it cannot be: run.ts rotates
   * between reloads) would carry the keys of its own config.
   */
  setTicketKeys(keys: TicketKeySets): number {
    let set = 0;
    for (const [key, ticketKeys] of Object.entries(keys)) {
      const entry = this.#servers.get(key);
      if (entry?.tls == null || entry.config.tls === null) continue;
      entry.tls.setTicketKeys(ticketKeys);
      entry.config = { ...entry.config, tls: { ...entry.config.tls, ticketKeys } };
      set++;
    }
    return set;
  }

  #owns(address: ListenAddress): boolean {
    return address.kind === 'tcp' || this.index === 0;
  }

  /**
   * The Thrift relay, loaded when a config first has a thrift server. A failure to load fails
   * that config's precommit with a clear error (at start: loch does not start; on reload: the
   * running config stays), never the worker.
   */
  async #loadThrift(): Promise<ThriftServers> {
    let servers: typeof import('../thrift/servers.js');
    try {
      servers = await import('../thrift/servers.js');
    } catch (error) {
      throw new Error(`cannot load the thrift server code: ${(error as Error)?.message ?? String(error)}`, {
        cause: error,
      });
    }
    return new servers.ThriftServers(this.log.at('thrift'), this.index);
  }

  /**
   * The TLS side of the listeners, for a config with a TLS server. A failure to load fails that
   * config's precommit with a clear error (as #loadThrift), never the worker.
   */
  async #loadTls(): Promise<typeof import('./worker-tls.js')> {
    try {
      return await WORKER_TLS.load();
    } catch (error) {
      throw new Error(`cannot load the TLS server code: ${(error as Error)?.message ?? String(error)}`, {
        cause: error,
      });
    }
  }

  async precommit(generation: number, config: ProxyConfig): Promise<void> {
    if (this.#stopping) throw new Error('worker is stopping');
    if (this.#staged !== null) this.abort(this.#staged.generation);
    // Access-log files first: one that cannot be opened refuses the config (nginx does too).
    const access = this.log.prepareAccess(config);
    const staged = {
      generation,
      config,
      listeners: [] as ListenerEntry[],
      added: [] as ServerEntry[],
      access,
    };
    this.#staged = staged;
    try {
      const tlsCode = config.servers.some((s) => s.tls !== null) ? await this.#loadTls() : null;
      for (const server of config.servers) {
        const lifecycle: ServerLifecycle = { retired: false };
        const factory = serverStack({
          server,
          routes: server.routes,
          log: this.log,
          lifecycle,
          // The HttpServer's RequestHooks answer failures and close a retired server's connections.
          serverHooks: true,
          newConnector: () =>
            newUpstreamConnector({
              idleTimeout: 30_000,
              streams: this.#upstreamStreams,
              maxIdlePerKey: server.upstreamKeepalive,
            }),
        });
        let entry = this.#servers.get(server.key);
        if (entry === undefined) {
          entry = this.#newEntry(server, lifecycle);
          staged.added.push(entry);
        }
        entry.slot.precommit(factory);
        // A certificate this worker cannot load fails the reload here (the old config stays).
        const tls =
          server.tls === null
            ? null
            : tlsCode!.tlsServerContext(server.tls, server.http2 ? HTTPS_ALPN : HTTPS_ALPN_H1);
        entry.staged = { config: server, lifecycle, tls };
        const id = listenId(server.listen);
        if (this.#owns(server.listen) && !this.#listeners.has(id)) {
          staged.listeners.push({
            id,
            listener: await bind(server.listen),
            serverKey: server.key,
            accepting: false,
          });
        }
      }
      if (config.thriftServers.length > 0) this.#thrift ??= await this.#loadThrift();
      this.#thrift?.precommit(config.thriftServers);
      for (const server of config.thriftServers) {
        const id = listenId(server.listen);
        if (this.#owns(server.listen) && !this.#listeners.has(id))
          staged.listeners.push({
            id,
            listener: await bind(server.listen),
            serverKey: server.key,
            accepting: false,
          });
      }
    } catch (error) {
      this.abort(generation);
      throw error;
    }
  }

  #newEntry(server: ServerConfig, lifecycle: ServerLifecycle): ServerEntry {
    const entry: ServerEntry = {
      key: server.key,
      slot: new ServiceSlot<ServerHandler>({ name: `${server.key}@worker-${this.index}` }),
      identity: { key: server.key, scheme: server.tls === null ? 'http' : 'https' },
      config: server,
      lifecycle,
      http: null as unknown as HttpServer<ConnectionCx>,
      tls: null,
      staged: null,
      retiredRecords: { loch: 0, declined: 0 },
    };
    entry.http = this.#httpServer(entry, server);
    return entry;
  }

  #httpServer(entry: ServerEntry, server: ServerConfig): HttpServer<ConnectionCx> {
    const t = server.timeouts;
    const identity = entry.identity;
    const slot = entry.slot;
    const log = this.log;
    const hooks = new RequestHooks(identity.key, log, entry);
    const http = new HttpServer<ConnectionCx>(
      // The chain is the server's handler as it is; the slot's service follows reloads.
      slot.service(),
      {
        // A proxy forwards any method token (RFC 9110 §9.1: extension methods included); CONNECT
        // is refused by the route layer (405).
        // Head limits: max_header_size and max_header_count (431 above them).
        limits: { methods: 'any', maxHeadSize: server.maxHeaderSize, maxHeaderCount: server.maxHeaderCount },
        // HTTP/2: h2 by ALPN on TLS listeners, h2c by prior knowledge (preface sniff) on plain ones.
        http2: server.http2,
        timeouts: {
          idle: t.serverKeepalive,
          head: t.serverReadHeader,
          body: t.serverReadBody,
          write: t.serverWrite,
        },
        // HTTP/1.1 makes the connection keys' context per request (the context layer forks it
        // into the request's anyway): an idle keep-alive connection holds none (56 B each).
        contextPerRequest: true,
        context: (stream) => {
          // A subset context (its 4 connection keys only): an HTTP/2 connection keeps one.
          // A verified client certificate, forwarded when the server says so (mTLS only), takes
          // the subset with a slot for it. The facts are read only where they can say more than
          // the socket does (TLS, PROXY): a plain stream's would be one more object per idle
          // connection (RuntimeStream.hasPlainFacts).
          const der =
            entry.config.tls?.forwardClientCertificate === true ? stream.facts.peerCertificate : null;
          return connectionContext(
            // The client: a PROXY header's source when the listener reads one, else the socket's peer.
            RuntimeStream.clientAddressOf(stream),
            // The stream itself, not its local address: read only for a PROXY header (ConnectionSocket).
            stream,
            stream.driver,
            identity,
            der === null ? undefined : clientCertHeader(der),
          );
        },
        onError: (error) =>
          log.at('http').debug(`${identity.key}: ${(error as Error)?.message ?? String(error)}`),
        // Metrics and the access log of every answer (a streamed one's line at its body's end); a
        // client gone before its answer cancels the upstream exchange; the chain's failures
        // (serverHooks) answered as its core layer would, without a reaction there.
        ...hooks.serverOptions(),
        // Requests the HTTP/1.1 codec rejected (400, 414, 431, 505), timed out (408) or
        // refused (417) never reach the chain: log them here, in the same format (the config
        // may change on reload without a new HttpServer, so it is read per line).
        onRejected: (r, cx) => {
          workerMetrics.rejected(identity.key, r.status);
          if (entry.config.accessLog)
            log.access(
              identity.key,
              cx.get('peerAddr'),
              r.method ?? '-',
              r.target ?? '-',
              r.status,
              r.bytes,
              undefined,
              0,
            );
        },
      },
    );
    this.#https.add(http);
    return http;
  }

  commit(generation: number): void {
    const staged = this.#staged;
    if (staged === null || staged.generation !== generation)
      throw new Error(`nothing staged for generation ${generation}`);
    this.#staged = null;
    workerMetrics.commit();
    for (const entry of staged.added) this.#servers.set(entry.key, entry);
    const keep = new Set(staged.config.servers.map((s) => s.key));
    for (const entry of this.#servers.values()) {
      if (entry.staged === null) continue;
      entry.slot.commit();
      const next = entry.staged;
      entry.staged = null;
      if (timeoutsKey(next.config) !== timeoutsKey(entry.config))
        entry.http = this.#httpServer(entry, next.config);
      entry.config = next.config;
      entry.lifecycle = next.lifecycle;
      if (entry.tls !== null && entry.tls !== next.tls) {
        const r = entry.tls.recordStats();
        entry.retiredRecords.loch += r.loch;
        entry.retiredRecords.declined += r.declined;
      }
      entry.tls = next.tls;
      entry.identity.scheme = next.tls === null ? 'http' : 'https';
    }
    // Servers the new config removes: their chain serves what is in flight, then clients are told to reconnect.
    for (const [key, entry] of this.#servers) {
      if (keep.has(key)) continue;
      entry.lifecycle.retired = true;
      this.#servers.delete(key);
      connectorOf(entry.slot.get()).close();
    }
    // Listeners: point kept ones at their (possibly renamed) server, start new ones, close the rest.
    const wanted = new Map<string, string>();
    for (const s of staged.config.servers) if (this.#owns(s.listen)) wanted.set(listenId(s.listen), s.key);
    this.#thrift?.commit(staged.config.thriftServers);
    for (const s of staged.config.thriftServers)
      if (this.#owns(s.listen)) wanted.set(listenId(s.listen), s.key);
    for (const l of staged.listeners) this.#listeners.set(l.id, l);
    for (const [id, l] of this.#listeners) {
      const key = wanted.get(id);
      if (key === undefined) {
        this.#listeners.delete(id);
        void l.listener.close().catch(() => {});
        continue;
      }
      l.serverKey = key;
      if (!l.accepting) {
        l.accepting = true;
        void this.#accept(l);
      }
    }
    this.#config = staged.config;
    this.log.configureLevels(staged.config);
    this.log.commitAccess(staged.access);
    this.#limit.max = staged.config.runtime.maxConnectionsPerWorker;
    this.#limit.released();
    const trimMs = idleTrimMs(staged.config);
    if (this.#runtime !== undefined && trimMs !== this.#idleTrimMs) {
      this.#idleTrimMs = trimMs;
      this.#runtime.setIdleTrim(trimMs);
    }
    this.generation = generation;
    for (const http of this.#https)
      if (http.connections === 0 && !this.#isCurrent(http)) this.#https.delete(http);
  }

  #isCurrent(http: HttpServer<ConnectionCx>): boolean {
    for (const e of this.#servers.values()) if (e.http === http) return true;
    return false;
  }

  abort(generation: number): void {
    const staged = this.#staged;
    if (staged === null || staged.generation !== generation) return;
    this.#staged = null;
    this.log.abortAccess(staged.access);
    this.#thrift?.abort();
    for (const entry of this.#servers.values()) {
      entry.slot.abort();
      entry.staged = null;
    }
    for (const entry of staged.added) this.#https.delete(entry.http);
    for (const l of staged.listeners) void l.listener.close().catch(() => {});
  }

  /**
   * The runtime's acceptLoop on one listener (it backs off on EMFILE and friends), until the
   * worker stops or a reload replaced or removed the listener. Three closures per listener, none
   * per connection.
   */
  #accept(l: ListenerEntry): Promise<void> {
    return acceptLoop(l.listener, (stream) => this.#serve(l, stream), {
      stopping: () => this.#stopping || this.#listeners.get(l.id) !== l,
      onError: (error) => this.log.at('accept').warn(`accept on ${l.id}: ${(error as Error).message}`),
      whenFull: this.#limit.whenFull,
    });
  }

  /** Hands an accepted connection to its server's HttpServer; closes it when that server is gone. */
  #serve(l: ListenerEntry, stream: ByteStream): void {
    if (!this.#stopping && this.#thrift?.serve(l.serverKey, stream) === true) return;
    const entry = this.#servers.get(l.serverKey);
    if (entry === undefined || this.#stopping) {
      void stream.close().catch(() => {});
      return;
    }
    const pp = entry.config.proxyProtocol;
    if (pp !== undefined && (pp.from === undefined || trustedPeersOf(pp.from).has(stream.remoteAddress))) {
      this.#open.add(stream);
      this.#serveProxyHeader(entry, pp.timeout, stream);
      return;
    }
    if (entry.tls !== null) {
      this.#open.add(stream);
      this.#serveTls(entry, entry.tls, stream);
      return;
    }
    this.#attach(entry, stream);
  }

  /**
   * Hands a connection to its server's HttpServer, which counts it and closes it at shutdown
   * (the worker keeps no entry of its own per attached connection). The server goes back into
   * #https first: a PROXY header or TLS handshake may have ended after a reload removed the
   * entry's server, whose HttpServer a commit then dropped from #https (no connections then);
   * untracked, this one would be neither counted nor closed at shutdown.
   */
  #attach(entry: ServerEntry, stream: ByteStream): void {
    this.#https.add(entry.http);
    // A response body the server did not send (the client reset before its head went out) is
    // released by the HttpServer itself, which frees its upstream connection.
    // attach, not serveConnection: no promise, reaction or closure per idle connection.
    entry.http.attach(stream, this.#closed);
  }

  /**
   * The PROXY-protocol step of the accept order (docs/DESIGN.md), first on listeners with
   * `proxy_protocol = true`: the header under its deadline, then TLS or HTTP over the stream that
   * carries the client's address (facts.clientAddress). A missing, bad or slow header closes only
   * its connection (logged at debug), and nothing of it is parsed as HTTP.
   */
  #serveProxyHeader(entry: ServerEntry, timeout: number, stream: ByteStream): void {
    proxyProtocolAccept(stream, { timeout }).then(
      (inner) => {
        this.#open.delete(stream);
        if (this.#stopping) {
          void inner.close().catch(() => {});
          return;
        }
        if (entry.tls !== null) {
          this.#open.add(inner);
          this.#serveTls(entry, entry.tls, inner);
        } else this.#attach(entry, inner);
      },
      (error: unknown) => {
        this.#open.delete(stream);
        this.log
          .at('proxy_protocol')
          .debug(
            `${entry.key}: PROXY protocol header from ${forwardedFor(stream.remoteAddress)}: ${(error as Error).message}`,
          );
      },
    );
  }

  /**
   * The TLS step of the accept order (docs/DESIGN.md): the handshake under its deadline, then
   * HTTP over the TlsStream. A failed handshake ends only its connection (logged at debug: scanners
   * and clients that distrust the certificate are routine). Plain HTTP sent to the TLS port is
   * answered 400 and closed, as nginx does.
   */
  #serveTls(entry: ServerEntry, context: TlsServerContext, stream: ByteStream): void {
    // `context` was made by the TLS side, so it is loaded (WORKER_TLS).
    const code = WORKER_TLS.loaded!;
    code.tlsAccept(stream, context, { plainHttp: 'hand-over' }).then(
      (tls) => {
        this.#open.delete(stream);
        if (this.#stopping) {
          void tls.close().catch(() => {});
          return;
        }
        workerMetrics.tlsHandshake(entry.key, true);
        this.#attach(entry, tls);
      },
      (error: unknown) => {
        workerMetrics.tlsHandshake(entry.key, false);
        if (error instanceof code.TlsPlainHttpError && error.stream !== undefined) {
          void answerPlainHttp(error.stream).finally(() => this.#open.delete(stream));
          return;
        }
        this.#open.delete(stream);
        this.log
          .at('tls')
          .debug(
            `${entry.key}: TLS handshake with ${forwardedFor(stream.remoteAddress)}: ${(error as Error).message}`,
          );
      },
    );
  }

  stats(): WorkerStats {
    runBeforeStats(this.#debug, this.index);
    const upstream: WorkerStats['upstream'] = {};
    for (const [key, entry] of this.#servers) {
      const s = connectorOf(entry.slot.get()).stats();
      upstream[key] = { idle: s.idle, active: s.active, created: s.created, reused: s.reused };
    }
    if (this.#thrift !== null) Object.assign(upstream, this.#thrift.stats());
    let idleConnections = 0;
    for (const http of this.#https) idleConnections += http.idleConnections;
    const tlsRecords: Record<string, TlsRecordCounts> = {};
    for (const [key, entry] of this.#servers) {
      const retired = entry.retiredRecords;
      if (entry.tls === null && retired.loch + retired.declined === 0) continue;
      const now = entry.tls?.recordStats() ?? { loch: 0, declined: 0 };
      tlsRecords[key] = { loch: retired.loch + now.loch, declined: retired.declined + now.declined };
    }
    const memory = process.memoryUsage();
    return {
      worker: this.index,
      generation: this.generation,
      connections: this.#httpConnections() + (this.#thrift?.connections ?? 0),
      idleConnections,
      listeners: [...this.#listeners.keys()],
      upstream,
      heapUsed: memory.heapUsed,
      heapTotal: memory.heapTotal,
      external: memory.external,
      arrayBuffers: memory.arrayBuffers,
      heapSpaces: Object.fromEntries(getHeapSpaceStatistics().map((h) => [h.space_name, h.space_size])),
      heapLimits: resourceLimits,
      runtime: runtimeStats(this.#runtime),
      health: workerGroupHealth(),
      tlsRecords,
    };
  }

  /**
   * Graceful stop: stop accepting, let in-flight requests finish (idle keep-alive connections
   * close now), and after the longest shutdown grace close whatever is still open.
   */
  async shutdown(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#limit.stop();
    const grace = Math.max(0, ...this.#config.servers.map((s) => s.timeouts.shutdownGrace));
    await Promise.all([...this.#listeners.values()].map((l) => l.listener.close().catch(() => {})));
    this.#listeners.clear();
    const thriftStopped = this.#thrift?.shutdown(this.#thrift.shutdownGrace);
    // Tunnels (WebSocket) get their server's tunnel_drain, then are closed; requests keep the grace.
    const tunnelsDrained = drainTunnels().then((closed) => {
      if (closed > 0) this.log.at('tunnel').info(`tunnel_drain over: closed ${closed} tunnel(s)`);
    });
    const drained = Promise.all([...this.#https].map((h) => h.close()));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), grace);
    });
    const outcome = await Promise.race([drained.then(() => 'drained' as const), late]);
    clearTimeout(timer);
    if (outcome === 'late') {
      this.log.warn(`shutdown grace (${grace} ms) over: closing ${this.#httpConnections()} connection(s)`);
      await Promise.all([
        ...Array.from(this.#open, (s) => s.close().catch(() => {})),
        ...Array.from(this.#https, (h) => h.closeAll()),
      ]);
      // Exchanges still waiting on an upstream hold its stream: close those too, so the worker
      // has nothing in flight when it exits.
      await this.#upstreamStreams.closeAll();
    }
    for (const entry of this.#servers.values()) {
      connectorOf(entry.slot.get()).close();
    }
    // The gateway's upstream pool, if the route layer loaded its dispatch.
    closeGatewayUpstreams();
    await thriftStopped;
    // The drain's own line must be written before the log closes: the tunnels' connections can
    // end (and `drained` resolve) a turn before drainTunnels() resolves, so without this wait a
    // loaded worker dropped it (seen in CI). Bounded: every connection is closed by now, so the
    // drain is over or ends at once; the bound only keeps a bug there from hanging the stop.
    await Promise.race([tunnelsDrained, new Promise((r) => setTimeout(r, TUNNEL_LOG_WAIT_MS).unref())]);
    await this.log.close();
  }
}

async function bind(address: ListenAddress): Promise<StreamListener> {
  if (address.kind === 'unix') return UnixListener.bind({ path: address.path, removeStale: true });
  return TcpListener.bind({ host: address.host, port: address.port, reusePort: true });
}

/**
 * The worker entry that start() runs. A failure to start (a listener that cannot bind) does
 * not reject main: it is reported through the `startup` command, and the main thread then
 * stops every worker gracefully. (Rejecting would make start() terminate the other workers
 * with their io_uring operations in flight, which crashes the process: reported to
 * @loch/uring-runtime.)
 */
export async function main(context: WorkerContext): Promise<void> {
  const { config, debug, health } = context.data as WorkerData;
  attachHealthFlags(health, context.index);
  workerMetrics.attach(context.index, (context.data as WorkerData).metrics);
  const worker = new ProxyWorker(context.index, config, context.runtime, debug);
  const upstreamLog = worker.log.at('upstream');
  reportHealthTo({ warn: (m) => upstreamLog.warn(m), info: (m) => upstreamLog.info(m) });
  let startError: unknown = null;
  try {
    await worker.start();
  } catch (error) {
    startError = error;
  }
  context.onCommand((msg) => {
    if ((msg as WorkerCommand).t === 'startup') {
      if (startError !== null) throw startError;
      return true;
    }
    return worker.command(msg as WorkerCommand);
  });
  const stopped = new Promise<void>((resolve) => {
    context.signal.addEventListener('abort', () => void worker.shutdown().finally(resolve), { once: true });
  });
  // main resolves when ready; a graceful stop ends the thread only after the shutdown (its last
  // log lines, the access log written through and closed), not as soon as the last stream closes.
  context.waitUntil(stopped);
}
