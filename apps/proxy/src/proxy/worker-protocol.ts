/**
 * What the main thread and a proxy worker say to each other (run.ts <-> worker.ts): the data a
 * worker starts with, the reload protocol's commands, the `stats` answer, and the identity of a
 * listener across reloads. A module of its own, with types and one small function only: the
 * main thread imports it without loading worker.ts's graph (the HTTP server, TLS, the Thrift
 * relay), which is the workers' own. Not for either side's logic.
 */
import type { ResourceLimits } from 'node:worker_threads';
import type { ListenAddress, ProxyConfig } from '../config/schema.js';
import type { GroupHealth } from '../metrics/health-stats.js';
import type { MetricsPlan } from '../metrics/layout.js';
import type { MetricsShare } from '../metrics/recorder.js';
import type { WorkerRuntimeStats } from '../metrics/runtime-stats.js';
import type { DebugAids } from './debug-aids.js';
import type { TicketKeySets } from './ticket-rotation.js';

/** What the main thread hands every worker at start. */
export interface WorkerData {
  readonly config: ProxyConfig;
  /** Debugging aids, read once from the environment by the main thread (debug-aids.ts). */
  readonly debug?: DebugAids;
  /** The metrics buffers (one per worker index) and plan (metrics/recorder.ts). */
  readonly metrics?: MetricsShare;
  /** The active health checks' verdicts (health/health-flags.ts), shared with the main thread. */
  readonly health?: SharedArrayBuffer;
}

/** Commands of the reload protocol (main -> worker). */
export type WorkerCommand =
  | {
      readonly t: 'precommit';
      readonly generation: number;
      readonly config: ProxyConfig;
      /** The metrics layout with what `config` adds (absent: keep the current one). */
      readonly metrics?: MetricsPlan;
    }
  | { readonly t: 'commit'; readonly generation: number }
  | { readonly t: 'abort'; readonly generation: number }
  | { readonly t: 'stats' }
  /** SIGUSR1: open the access-log files again by their paths (after logrotate renamed them). */
  | { readonly t: 'reopen' }
  | { readonly t: 'startup' }
  /** New session ticket keys per TLS server (ticket-rotation.ts), for every worker at once. */
  | { readonly t: 'ticket-keys'; readonly keys: TicketKeySets };

/** A worker's answer to `stats`. */
export interface WorkerStats {
  readonly worker: number;
  readonly generation: number;
  readonly connections: number;
  /** HTTP client connections between requests (HttpServer.idleConnections, over every server). */
  readonly idleConnections: number;
  readonly listeners: readonly string[];
  readonly upstream: Record<string, { idle: number; active: number; created: number; reused: number }>;
  /**
   * V8 heap in use by this worker's isolate (bytes). With the `gcBeforeStats` debugging aid
   * (LOCH_DEBUG_GC=1, debug-aids.ts) a full GC runs first, so memory per connection can be read.
   */
  readonly heapUsed: number;
  /**
   * The rest of this isolate's memory (bytes, process.memoryUsage()): heap committed, memory of
   * V8-managed C++ objects (external) and of ArrayBuffers/Buffers, the part of external
   * outside the heap (bench/idle-memory/busy.ts attributes RSS per connection with them).
   */
  readonly heapTotal: number;
  readonly external: number;
  readonly arrayBuffers: number;
  /** Committed bytes of each V8 heap space (new_space, old_space, ...; v8.getHeapSpaceStatistics). */
  readonly heapSpaces: Record<string, number>;
  /** The isolate's V8 limits (worker_threads' resourceLimits: runtime.worker_young_generation_bytes). */
  readonly heapLimits: ResourceLimits;
  /** The runtime's streams, tasks and receive buffers (metrics/runtime-stats.ts). */
  readonly runtime?: WorkerRuntimeStats | undefined;
  /** Upstream groups' retries, ejections and 503s (metrics/health-stats.ts). */
  readonly health?: readonly GroupHealth[];
  /**
   * Per TLS server: connections this worker moved to Loch's own TLS 1.3 record layer after the
   * handshake (`loch`), and TLS 1.3 ones that stayed on OpenSSL because the point was not clean
   * (`declined`); both 0 when the server's `tls.records` is "openssl" (or
   * LOCH_TLS_RECORDS=openssl sets it; Loch's record layer is the default). Counted since the
   * worker started (a reload's new context adds to the old one's counts).
   */
  readonly tlsRecords?: Record<string, TlsRecordCounts>;
}

/** Connections taken over by Loch's TLS record layer, and declined (TlsServerContext.recordStats()). */
export interface TlsRecordCounts {
  readonly loch: number;
  readonly declined: number;
}

/** Identity of a listen address (equal ids = the same listener across reloads). */
export function listenId(address: ListenAddress): string {
  return address.kind === 'tcp' ? `tcp:${address.host}:${address.port}` : `unix:${address.path}`;
}
