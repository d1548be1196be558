/**
 * The health of one route's upstreams as one worker sees it, and the route's retry budget:
 * passive health (outlier detection: consecutive failures eject an upstream for a while, longer
 * each time, never more than max_ejection_percent of the group unless every upstream fails)
 * combined with the active checker's verdicts (health-flags.ts). The upstream layer asks
 * `pick` for an upstream that is up (-1: none, the route answers 503 at once) and reports each
 * exchange's outcome. Groups are kept per worker by identity (the same upstreams and settings),
 * so their state survives a reload; state is per worker, as the balancers' (like nginx's
 * max_fails, each worker learns from its own traffic). Not for checking (active-checks.ts) or
 * choosing among the healthy (routing/balancer.ts).
 */
import { UpstreamLimit } from '@loch/transports';
import { type Balancer, pickWhere } from '../routing/balancer.js';
import type { OutlierConfig, RetryConfig } from './config.js';
import { SLOT_UP } from './health-flags.js';

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
  /** Requests of the route in flight to an upstream (head not yet arrived), counted only with `retry`. */
  active = 0;
  /** Retries in flight. */
  retriesActive = 0;
  retries = 0;
  retriesOverBudget = 0;
  noHealthyUpstream = 0;
  ejections = 0;
  readonly #failures: Int32Array;
  /** Date.now() when each ejection ends; 0 = not ejected. */
  readonly #ejectedUntil: Float64Array;
  /** Ejections of each upstream in a row (the back-off multiplier's exponent). */
  readonly #streak: Int32Array;
  /** When each upstream last came back from an ejection. */
  readonly #returnedAt: Float64Array;
  #ejectedCount = 0;
  /** The active checker's slot per upstream (-1: unchecked), with the shared table. */
  readonly #slots: Int32Array | null;
  readonly #flags: Int32Array | null;
  readonly #now: () => number;
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
    this.limits = options.labels.map((_, i) => {
      const l = options.limits?.[i];
      return l === undefined ? undefined : new UpstreamLimit(l.maxConnections, l.maxPending);
    });
    this.#limited = this.limits.some((l) => l !== undefined);
    this.#failures = new Int32Array(n);
    this.#ejectedUntil = new Float64Array(n);
    this.#streak = new Int32Array(n);
    this.#returnedAt = new Float64Array(n);
    const flags = options.flags ?? null;
    const slots = options.slots;
    this.#flags = slots !== undefined && flags !== null ? flags : null;
    this.#slots = this.#flags === null ? null : Int32Array.from(slots!);
    this.#now = options.now ?? Date.now;
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
    if (this.#ejectedCount === 0) return true;
    const until = this.#ejectedUntil[i]!;
    if (until === 0) return true;
    const now = this.#now();
    if (now < until) return false;
    this.#return(i, now);
    return true;
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
    if (this.outlier === undefined) return;
    this.#failures[i] = 0;
    // Healthy for a whole base ejection time since it came back: the back-off starts over.
    if (this.#streak[i]! > 0 && this.#now() - this.#returnedAt[i]! >= this.outlier.baseEjectionTime)
      this.#streak[i] = 0;
  }

  /** Upstream `i` failed (refused, timed out, reset or broke protocol before a response). */
  failed(i: number): void {
    const outlier = this.outlier;
    if (outlier === undefined) return;
    const failures = ++this.#failures[i]!;
    if (failures < outlier.consecutiveFailures || this.#ejectedUntil[i] !== 0) return;
    const now = this.#now();
    this.#expire(now);
    const cap = Math.max(1, Math.floor((this.size * outlier.maxEjectionPercent) / 100));
    if (this.#ejectedCount < cap) {
      this.#eject(i, now);
      return;
    }
    // Over the cap, unless every upstream still in use fails too: then all go (the route
    // answers 503 at once instead of sending every request to a dead upstream).
    for (let j = 0; j < this.size; j++)
      if (this.#ejectedUntil[j] === 0 && this.#failures[j]! < outlier.consecutiveFailures) return;
    for (let j = 0; j < this.size; j++) if (this.#ejectedUntil[j] === 0) this.#eject(j, now);
  }

  /**
   * Whether a retry may start now: retries in flight stay under the budget, a percentage of
   * the route's requests in flight, or the minimum concurrency (Envoy's retry_budget).
   */
  mayRetry(): boolean {
    const retry = this.retry;
    if (retry === undefined) return false;
    const allowed = Math.max(retry.minRetryConcurrency, (this.active * retry.budgetPercent) / 100);
    if (this.retriesActive < allowed) return true;
    this.retriesOverBudget++;
    return false;
  }

  /** A read-only copy of the group's state (metrics). */
  stats(): UpstreamGroupStats {
    const ejected: boolean[] = [];
    const activeDown: boolean[] = [];
    const now = this.#now();
    for (let i = 0; i < this.size; i++) {
      const until = this.#ejectedUntil[i]!;
      ejected.push(until !== 0 && now < until);
      const slot = this.#slots?.[i] ?? -1;
      activeDown.push(slot >= 0 && this.#flags![slot] !== SLOT_UP);
    }
    return {
      upstreams: this.labels,
      ejected,
      activeDown,
      consecutiveFailures: Array.from(this.#failures),
      ejections: this.ejections,
      retries: this.retries,
      retriesOverBudget: this.retriesOverBudget,
      noHealthyUpstream: this.noHealthyUpstream,
      limits: this.limits.map((l) =>
        l === undefined ? null : { inUse: l.inUse, pending: l.pending, refused: l.refused },
      ),
    };
  }

  #eject(i: number, now: number): void {
    const outlier = this.outlier!;
    const streak = this.#streak[i]!;
    const ms = Math.min(outlier.maxEjectionTime, outlier.baseEjectionTime * 2 ** Math.min(streak, 30));
    this.#streak[i] = streak + 1;
    this.#ejectedUntil[i] = now + ms;
    this.#ejectedCount++;
    this.ejections++;
    report?.warn(
      `upstream ${this.labels[i]} ejected for ${ms} ms after ${this.#failures[i]} failures in a row (ejection ${streak + 1} in a row)`,
    );
  }

  #return(i: number, now: number): void {
    this.#ejectedUntil[i] = 0;
    this.#ejectedCount--;
    this.#returnedAt[i] = now;
    report?.info(`upstream ${this.labels[i]} back from its ejection`);
    // One more failure ejects it again (for twice as long), as Envoy's outlier detection.
    this.#failures[i] = this.outlier!.consecutiveFailures - 1;
  }

  #expire(now: number): void {
    for (let j = 0; j < this.size; j++) {
      const until = this.#ejectedUntil[j]!;
      if (until !== 0 && now >= until) this.#return(j, now);
    }
  }
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
