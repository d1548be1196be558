/**
 * The thrift servers of one proxy worker, beside its HTTP servers: per `proxy_type = "thrift"`
 * server a @loch/thrift ThriftServer whose handler is the worker's ServiceSlot of the thrift
 * proxy service (reloads swap the service; calls in flight finish on the old one; the upstream
 * pool carries over). The worker owns the listeners and its accept loops (worker.ts) and hands
 * each accepted connection here by server key; this module follows the worker's reload protocol
 * (precommit, commit, abort) and its graceful stop. Framing is detected per connection: framed,
 * THeader and TTHeader are served; unframed binary or compact is refused with a log line, as a
 * proxy can delimit it only by skipping every message, unless the server says
 * `accept_unframed`.
 */
import { ServiceSlot } from '@loch/service-async';
import { type FramingName, ThriftServer, ThriftTransportError } from '@loch/thrift';
import type { ByteStream } from '@loch/uring-runtime';
import { formatAddress } from '@loch/uring-runtime';
import type { ThriftServerConfig } from '../config/schema.js';
import type { ProxyLog } from '../proxy/log.js';
import { withPseudonyms } from './pseudonym.js';
import { type ThriftProxyService, thriftProxyFactory } from './service.js';

/** What `ThriftServers.stats()` reports per server. */
export interface ThriftPoolCounters {
  readonly idle: number;
  readonly active: number;
  readonly created: number;
  readonly reused: number;
  readonly muxConnections: number;
  readonly lateReplies: number;
  readonly retired: number;
  readonly onewayFailures: number;
}

/** Framings a thrift server accepts from clients. */
export const ACCEPTED_FRAMINGS: readonly FramingName[] = ['framed', 'theader', 'ttheader'];
/** With `accept_unframed`: unframed (buffered) binary and compact too, delimited by skipping. */
const WITH_UNFRAMED: readonly FramingName[] = [...ACCEPTED_FRAMINGS, 'unframed'];

interface ThriftEntry {
  readonly key: string;
  readonly slot: ServiceSlot<ThriftProxyService>;
  config: ThriftServerConfig;
  server: ThriftServer;
  /** Every ThriftServer of this entry that may still have connections (replaced ones drain). */
  readonly servers: Set<ThriftServer>;
  staged: ThriftServerConfig | null;
}

function serverOptionsKey(s: ThriftServerConfig): string {
  return `${s.timeouts.serverKeepalive}/${s.timeouts.serverMessage}/${s.maxFrameSize}/${s.maxHeaderSize}/${s.maxHeaderCount}/${s.maxPipelinedCalls}/${s.acceptUnframed}`;
}

/** What a closed connection's error is worth logging at (refusals and bad bytes: info). */
function describeConnectionError(error: unknown): { level: 'info' | 'debug'; text: string } {
  const text = (error as Error)?.message ?? String(error);
  if (error instanceof ThriftTransportError || (error as Error)?.name === 'ThriftProtocolError')
    return { level: 'info', text: `${text} (${(error as ThriftTransportError).code})` };
  return { level: 'debug', text };
}

/** The thrift servers of one worker. */
export class ThriftServers {
  readonly #entries = new Map<string, ThriftEntry>();
  #added: ThriftEntry[] = [];

  constructor(
    private readonly log: ProxyLog,
    private readonly workerIndex: number,
  ) {}

  /** Builds every server's next service from its current one; nothing is served from it yet. */
  precommit(configs: readonly ThriftServerConfig[]): void {
    this.abort();
    for (const config of configs) {
      let entry = this.#entries.get(config.key);
      if (entry === undefined) {
        entry = this.#newEntry(config);
        this.#added.push(entry);
      }
      entry.slot.precommit(thriftProxyFactory(config, this.log));
      entry.staged = config;
    }
  }

  /** Swaps the staged services in; servers the config no longer has stop (their pools close). */
  commit(configs: readonly ThriftServerConfig[]): void {
    for (const entry of this.#added) this.#entries.set(entry.key, entry);
    this.#added = [];
    const keep = new Set(configs.map((c) => c.key));
    for (const [key, entry] of this.#entries) {
      if (!keep.has(key)) {
        this.#entries.delete(key);
        void this.#retire(entry);
        continue;
      }
      if (entry.staged === null) continue;
      entry.slot.commit();
      const next = entry.staged;
      entry.staged = null;
      if (serverOptionsKey(next) !== serverOptionsKey(entry.config)) {
        // New connections get the new timeouts and limits; open ones keep theirs.
        entry.server = this.#thriftServer(entry, next);
        entry.servers.add(entry.server);
      }
      entry.config = next;
    }
  }

  /** Drops what precommit staged. */
  abort(): void {
    for (const entry of this.#entries.values()) {
      if (entry.staged !== null) entry.slot.abort();
      entry.staged = null;
    }
    for (const entry of this.#added) entry.slot.abort();
    this.#added = [];
  }

  /** Serves an accepted connection on server `key`; false when there is no such thrift server. */
  serve(key: string, stream: ByteStream): boolean {
    const entry = this.#entries.get(key);
    if (entry === undefined) return false;
    void entry.server.handleConnection(stream);
    return true;
  }

  /** Open client connections. */
  get connections(): number {
    let n = 0;
    for (const entry of this.#entries.values()) for (const s of entry.servers) n += s.connections;
    return n;
  }

  /**
   * Pool counters per server (exclusive pool), with the multiplexed connections open, late
   * replies dropped on tombstones, connections retired for timeouts and undelivered ONEWAYs.
   */
  stats(): Record<string, ThriftPoolCounters> {
    const out: Record<string, ThriftPoolCounters> = {};
    for (const [key, entry] of this.#entries) {
      if (entry.slot.isEmpty) continue;
      const s = entry.slot.get().upstreams.stats();
      out[key] = {
        idle: s.idle,
        active: s.active,
        created: s.created,
        reused: s.reused,
        muxConnections: s.muxConnections,
        lateReplies: s.lateReplies,
        retired: s.retired,
        onewayFailures: s.onewayFailures,
      };
    }
    return out;
  }

  /** The longest shutdown grace of the servers (ms). */
  get shutdownGrace(): number {
    let grace = 0;
    for (const entry of this.#entries.values()) grace = Math.max(grace, entry.config.timeouts.shutdownGrace);
    return grace;
  }

  /**
   * Graceful stop (listeners are closed by the worker first): waits until no call is being
   * forwarded or `graceMs` passed, then closes every connection and pool.
   */
  async shutdown(graceMs: number): Promise<void> {
    await Promise.all([...this.#entries.values()].map((entry) => this.#retire(entry, graceMs)));
  }

  /**
   * Ends a server that a reload removed or a stop ends: calls being forwarded get up to `graceMs`
   * (default: its shutdown grace), then its client connections and upstream pool are closed.
   */
  async #retire(entry: ThriftEntry, graceMs = entry.config.timeouts.shutdownGrace): Promise<void> {
    const upstreams = entry.slot.isEmpty ? undefined : entry.slot.get().upstreams;
    const deadline = Date.now() + graceMs;
    while (upstreams !== undefined && upstreams.inFlight > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    await Promise.all([...entry.servers].map((server) => server.close()));
    upstreams?.closeAll();
  }

  #newEntry(config: ThriftServerConfig): ThriftEntry {
    const entry: ThriftEntry = {
      key: config.key,
      slot: new ServiceSlot<ThriftProxyService>({ name: `${config.key}@worker-${this.workerIndex}` }),
      config,
      server: null as unknown as ThriftServer,
      servers: new Set(),
      staged: null,
    };
    entry.server = this.#thriftServer(entry, config);
    entry.servers.add(entry.server);
    return entry;
  }

  #thriftServer(entry: ThriftEntry, config: ThriftServerConfig): ThriftServer {
    const log = this.log;
    // The slot's current service per call (a reload's commit serves the calls that start after
    // it), with its dispatch() forwarded too: without it ThriftServer takes call(), the promise form.
    const current = entry.slot.service({ forward: ['dispatch'] });
    // The server's `pseudonymize` (if any) in front of the proxy service, per current config.
    const handler = withPseudonyms(current, () => entry.config, log);
    return new ThriftServer(handler, {
      framing: 'auto',
      framings: config.acceptUnframed ? WITH_UNFRAMED : ACCEPTED_FRAMINGS,
      maxFrameSize: config.maxFrameSize,
      maxHeaderSize: config.maxHeaderSize,
      maxHeaderCount: config.maxHeaderCount,
      idleTimeout: config.timeouts.serverKeepalive,
      readTimeout: config.timeouts.serverMessage,
      maxConcurrentCalls: config.maxPipelinedCalls,
      // The proxy service releases every call once its upstream write settled (service.ts): a
      // call of 1 KiB or more is relayed from the received chunk itself, not from a copy.
      callsInPlace: true,
      // FIFO: a client that pipelines gets its replies in its order, whatever it matches on.
      replyOrder: 'request',
      onConnectionError: (error, stream) => {
        const peer = (stream as Partial<ByteStream> | undefined)?.remoteAddress;
        const from = peer === undefined ? '' : ` from ${formatAddress(peer)}`;
        const { level, text } = describeConnectionError(error);
        log[level](`${entry.key}: thrift connection${from} closed: ${text}`);
      },
    });
  }
}
