/**
 * The upstream group of a configured route in this worker: found by identity (the upstreams'
 * addresses, the health and retry settings, the active-check slots), so a reload that keeps a
 * route's upstreams keeps their ejections, failure counts, connection limits and counters, and
 * two routes with the same upstreams and settings share one group. The passive state sits where
 * the main thread placed it in the process's shared memory (`outlierSlots`), shared by every
 * worker, and so do the retry budget's counts (`retrySlot`). Not for the state itself
 * (upstream-group.ts, outlier-state.ts, retry-budget.ts).
 */
import type { RouteConfig } from '../config/schema.js';
import { groupIdentity } from './group-identity.js';
import { healthFlags, outlierWords, retryBlock, retryWords } from './health-flags.js';
import { UpstreamGroup, upstreamGroup } from './upstream-group.js';

/** The group of `route`'s upstreams (new, or this worker's existing one with the same identity). */
export function routeGroup(route: RouteConfig): UpstreamGroup {
  const identity = `${groupIdentity(route)}#${route.retrySlot ?? -1}`;
  const words = outlierWords();
  const place = route.outlierSlots;
  const counts = retryWords();
  const worker = retryBlock();
  const slot = route.retrySlot;
  return upstreamGroup(
    identity,
    () =>
      new UpstreamGroup({
        labels: route.upstreams.map((u) => u.label),
        outlier: route.outlierDetection,
        retry: route.retries,
        slots: route.healthSlots,
        flags: healthFlags(),
        limits: route.upstreams.map((u) => u.limits),
        outlierPlace:
          words === null || place === undefined
            ? undefined
            : { words, group: place.group, upstreams: place.upstreams },
        retryPlace:
          counts === null || worker < 0 || slot === undefined
            ? undefined
            : { words: counts, group: slot, worker },
      }),
  );
}
