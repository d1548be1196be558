/**
 * Upstream health and retries for the admin listener, from the read-only API of
 * health/upstream-group.ts: per worker, each upstream group's retries, retries refused by the
 * budget, requests answered 503 for want of a healthy upstream, ejections and which upstreams are
 * ejected now. A group is named by its upstreams (the routes that share upstreams and settings
 * share one group). Read when stats are asked for, never on the request path. (The active
 * checks' verdicts live on the main thread: admin-listener.ts reads health/active-checks.ts's
 * activeHealthStats itself; a worker imports none of the checks' code through this file.)
 */
import { upstreamHealthStats } from '../health/upstream-group.js';

/** One upstream group of one worker, as sent to the main thread. */
export interface GroupHealth {
  /** The group's upstreams, joined with ",": the `upstreams` label. */
  readonly upstreams: string;
  /** Per upstream label: passively ejected now. */
  readonly ejected: Readonly<Record<string, boolean>>;
  readonly retries: number;
  readonly retriesOverBudget: number;
  readonly noHealthyUpstream: number;
  readonly ejections: number;
}

/** This worker's groups (worker side, for its `stats` reply). */
export function workerGroupHealth(): GroupHealth[] {
  const out: GroupHealth[] = [];
  for (const g of upstreamHealthStats().values()) {
    const ejected: Record<string, boolean> = {};
    g.upstreams.forEach((label, i) => {
      ejected[label] = (ejected[label] ?? false) || g.ejected[i] === true;
    });
    out.push({
      upstreams: g.upstreams.join(','),
      ejected,
      retries: g.retries,
      retriesOverBudget: g.retriesOverBudget,
      noHealthyUpstream: g.noHealthyUpstream,
      ejections: g.ejections,
    });
  }
  return out;
}
