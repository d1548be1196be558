/**
 * The health of one route's upstreams as one worker sees it, and the route's retry budget:
 * passive health (outlier detection: consecutive failures eject an upstream for a while, longer
 * each time, never more than max_ejection_percent of the group unless every upstream fails)
 * combined with the active checker's verdicts (health-flags.ts). The upstream layer asks
 * `pick` for an upstream that is up (-1: none, the route answers 503 at once) and reports each
 * exchange's outcome. Groups are kept per worker by identity (the same upstreams and settings),
 * so their state survives a reload. The passive state lives in the process's shared health
 * memory when the main thread placed the group there (outlier-state.ts, outlier-slots.ts), so
 * every worker ejects an upstream once the failures of all of them reach the threshold; the
 * retry budget counts the requests and retries of every worker the same way (retry-budget.ts);
 * connection limits and counters stay per worker, as the balancers'. Not for checking
 * (active-checks.ts) or choosing among the healthy (routing/balancer.ts).
 */
import { UpstreamLimit } from '@loch/transports';
import { type Balancer, pickWhere } from '../routing/balancer.js';
import type { OutlierConfig, RetryConfig } from './config.js';
import { SLOT_UP } from './health-flags.js';
import { type OutlierEvents, type OutlierPlace, OutlierState } from './outlier-state.js';
import { RetryBudget, type RetryPlace } from './retry-budget.js';

/** What a group reports to the metrics (read-only copies). */
export interface UpstreamGroupStats {
  /** The upstreams' labels (endpoints as written), in route order. */
  readonly upstreams: readonly string[];
  /** Per upstream: passively ejected now. */
  readonly ejected: readonly boolean[];
  /** Per upstream: the active checker says down (false without checks). */
  readonly activeDown: readonly boolean[];
  /** Per upstream: failures in a row. */
  readonly consecutiveFailures: readonly number[];
  /** Ejections since the group was made (survives reloads). */
  readonly ejections: number;
  /** Requests sent again after a failure. */
  readonly retries: number;
  /** Retries refused because the budget was spent (the failure was answered). */
  readonly retriesOverBudget: number;
  /** Requests answered 503 because no upstream of the route was up. */
  readonly noHealthyUpstream: number;
  /** Per upstream with max_connections: connections in use, requests waiting, requests refused (503). */
  readonly limits: readonly ({ inUse: number; pending: number; refused: number } | null)[];
}

/** Where a worker reports ejections and returns (its log's `upstream` module). */
export interface HealthReport {
  warn(message: string): void;
  info(message: string): void;
}

/** This worker's report sink; none until the worker sets one (unit tests). */
let report: HealthReport | null = null;

/** Sends this worker's ejections (warn) and returns (info) to `sink` (worker start). */
export function reportHealthTo(sink: HealthReport | null): void {
  report = sink;
}

/** One route's upstreams' health and retry budget, in one worker. */
export class UpstreamGroup {
  readonly size: number;
  readonly labels: readonly string[];
  readonly outlier: OutlierConfig | undefined;
  readonly retry: RetryConfig | undefined;
  /** The retried methods, for a lookup per request. */
  readonly retryMethods: ReadonlySet<string>;
  /** Per upstream: its connection limit (max_connections, max_pending), kept with the group across reloads. */
  readonly limits: readonly (UpstreamLimit | undefined)[];
  /**
   * The retry budget (null without `retry`): requests and retries in flight, the process's when
   * placed; the upstream layer counts each attempt in and out.
   */
  readonly budget: RetryBudget | null;
  retries = 0;
  retriesOverBudget = 0;
  noHealthyUpstream = 0;
  /** Ejections this worker made (each ejection is made, counted and logged by one worker). */
  ejections = 0;
  /** Passive health (null without outlier_detection): shared by the workers when placed. */
  readonly #outlier: OutlierState | null;
  /** The active checker's slot per upstream (-1: unchecked), with the shared table. */
  readonly #slots: Int32Array | null;
  readonly #flags: Int32Array | null;
  /** Bound once: the predicate `pick` hands the balancer walk. */
  readonly #isUp = (i: number): boolean => this.isUp(i);
  /** Up, and under its connection limit. */
  readonly #isFree = (i: number): boolean => {
    const limit = this.limits[i];
    return (limit === undefined || limit.maxConnections > limit.inUse) && this.isUp(i);
  };
  /** Some upstream has a connection limit. */
  readonly #limited: boolean;

  constructor(options: {
    labels: readonly string[];
    outlier?: OutlierConfig | undefined;
    retry?: RetryConfig | undefined;
    /** Active-check slots per upstream (-1 unchecked), and the table they index. */
    slots?: readonly number[] | undefined;
    flags?: Int32Array | null | undefined;
    /** Where the passive state sits in the process's shared memory (absent: this worker's own). */
    outlierPlace?: OutlierPlace | undefined;
    /** Where the retry budget's counts sit in the process's shared memory (absent: this worker's own). */
    retryPlace?: RetryPlace | undefined;
    /** Per upstream: its max_connections / max_pending, if any. */
    limits?: readonly ({ maxConnections: number; maxPending: number } | undefined)[] | undefined;
    now?: () => number;
  }) {
    const n = options.labels.length;
    this.size = n;
    this.labels = options.labels;
    this.outlier = options.outlier;
    this.retry = options.retry;
    this.retryMethods = new Set(options.retry?.methods ?? []);
    this.budget = options.retry === undefined ? null : new RetryBudget(options.retry, options.retryPlace);
    this.limits = options.labels.map((_, i) => {
      const l = options.limits?.[i];
      return l === undefined ? undefined : new UpstreamLimit(l.maxConnections, l.maxPending);
    });
    this.#limited = this.limits.some((l) => l !== undefined);
    this.#outlier =
      options.outlier === undefined
        ? null
        : new OutlierState(options.outlier, n, this.#events, options.outlierPlace, options.now);
    const flags = options.flags ?? null;
    const slots = options.slots;
    this.#flags = slots !== undefined && flags !== null ? flags : null;
    this.#slots = this.#flags === null ? null : Int32Array.from(slots!);
  }

  /** Whether this group can ever mark an upstream down (else the upstream layer skips it). */
  get watches(): boolean {
    return this.outlier !== undefined || this.#flags !== null || this.#limited;
  }

  /**
   * Whether upstream `i` may take a request: the active checker does not say down and it is not
   * ejected (an ejection that ran out ends here). Reads the clock only while something is ejected.
   */
  isUp(i: number): boolean {
    const flags = this.#flags;
    if (flags !== null) {
      const slot = this.#slots![i]!;
      if (slot >= 0 && flags[slot] !== SLOT_UP) return false;
    }
    return this.#outlier === null || !this.#outlier.ejected(i);
  }

  /**
   * The index of an upstream that is up, chosen by `balancer` among those, or -1 when none is
   * (counted, for a first attempt: the route answers 503). `avoid` (a failed upstream, for a
   * retry) is taken only when no other upstream is up.
   */
  pick(balancer: Balancer, avoid = -1): number {
    // An upstream at its connection limit counts as unavailable while another can take the
    // request (nginx's max_conns); when all are at theirs, the request queues on one of them.
    if (this.#limited) {
      const free = pickWhere(balancer, this.size, this.#isFree, avoid);
      if (free >= 0) return free;
    }
    const i = pickWhere(balancer, this.size, this.#isUp, avoid);
    // Counted only for a first attempt: a retry with nowhere to go answers its own failure.
    if (i < 0 && avoid < 0) this.noHealthyUpstream++;
    return i;
  }

  /** A response head arrived from upstream `i`. */
  succeeded(i: number): void {
    this.#outlier?.succeeded(i);
  }

  /** Upstream `i` failed (refused, timed out, reset or broke protocol before a response). */
  failed(i: number): void {
    this.#outlier?.failed(i);
  }

  /**
   * Whether a retry may start now: the retries in flight stay under the budget, a percentage of
   * the route group's requests in flight, or the minimum concurrency (Envoy's retry_budget),
   * counted over every worker when the group is placed; a refusal is counted.
   */
  mayRetry(): boolean {
    if (this.budget?.allows()) return true;
    if (this.budget !== null) this.retriesOverBudget++;
    return false;
  }

  /** A read-only copy of the group's state (metrics). */
  stats(): UpstreamGroupStats {
    const ejected: boolean[] = [];
    const activeDown: boolean[] = [];
    const consecutiveFailures: number[] = [];
    const outlier = this.#outlier;
    for (let i = 0; i < this.size; i++) {
      ejected.push(outlier?.ejectedNow(i) ?? false);
      consecutiveFailures.push(outlier?.failures(i) ?? 0);
      const slot = this.#slots?.[i] ?? -1;
      activeDown.push(slot >= 0 && this.#flags![slot] !== SLOT_UP);
    }
    return {
      upstreams: this.labels,
      ejected,
      activeDown,
      consecutiveFailures,
      ejections: this.ejections,
      retries: this.retries,
      retriesOverBudget: this.retriesOverBudget,
      noHealthyUpstream: this.noHealthyUpstream,
      limits: this.limits.map((l) =>
        l === undefined ? null : { inUse: l.inUse, pending: l.pending, refused: l.refused },
      ),
    };
  }

  /** Made once: the outlier state tells the ejections and returns this worker won. */
  readonly #events: OutlierEvents = {
    ejected: (i, ms, failures, streak) => {
      this.ejections++;
      report?.warn(
        `upstream ${this.labels[i]} ejected for ${ms} ms after ${failures} failures in a row (ejection ${streak} in a row)`,
      );
    },
    returned: (i) => {
      report?.info(`upstream ${this.labels[i]} back from its ejection`);
    },
  };
}

/**
 * This worker's groups by identity, so a reload keeps their state. Held weakly: the compiled
 * routes hold their groups, so a group lives while some route (of the running config, or of
 * one still draining) uses it, and a reload that drops it lets it go.
 */
const groups = new Map<string, WeakRef<UpstreamGroup>>();

/**
 * The group of a route's upstreams: the existing one when a group with the same identity
 * (upstreams, settings, check slots) exists in this worker, else a new one.
 */
export function upstreamGroup(identity: string, make: () => UpstreamGroup): UpstreamGroup {
  let group = groups.get(identity)?.deref();
  if (group === undefined) groups.set(identity, new WeakRef((group = make())));
  return group;
}

/**
 * The state of every upstream group of this worker (read-only copies), by identity: the
 * read-only API the metrics export (ejections, retries, health state, connection limits).
 */
export function upstreamHealthStats(): ReadonlyMap<string, UpstreamGroupStats> {
  const out = new Map<string, UpstreamGroupStats>();
  for (const [id, ref] of groups) {
    const group = ref.deref();
    if (group === undefined) groups.delete(id);
    else out.set(id, group.stats());
  }
  return out;
}
