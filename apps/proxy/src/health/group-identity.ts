/**
 * The identity of a route's upstream group: what makes two routes share one (route-group.ts, in
 * each worker) and what the main thread places retry budgets by (retry-slots.ts). A module of
 * its own so that the main thread, which only needs the key, does not load the groups
 * themselves (upstream-group.ts and, through it, @loch/transports' whole index). Not for the
 * groups.
 */
import type { RouteConfig } from '../config/schema.js';

/**
 * What makes two routes share a group: the upstreams, the health and retry settings and the
 * active-check and passive-health places (the main thread's retry placement keys on this too).
 */
export function groupIdentity(route: RouteConfig): string {
  return JSON.stringify([
    route.upstreams.map((u) => [u.label, u.address, u.limits ?? null]),
    route.outlierDetection ?? null,
    route.retries ?? null,
    route.healthSlots ?? null,
    route.outlierSlots ?? null,
  ]);
}
