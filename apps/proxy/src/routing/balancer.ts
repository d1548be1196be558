/**
 * Upstream selection per route: first, round_robin, random, weighted_random. One balancer per
 * route per worker (state such as the round-robin cursor is not shared across workers, as in
 * nginx). `pick` allocates nothing; `pickWhere` skips upstreams that are down (ejected or failing
 * their health checks: health/upstream-group.ts decides which). Not for health checking.
 */
import type { LoadBalancerName } from '../config/schema.js';

/** Picks the index of the upstream for the next request. */
export interface Balancer {
  pick(): number;
}

/** Builds the balancer for `weights.length` upstreams. `random` is injectable for tests. */
export function createBalancer(
  kind: LoadBalancerName,
  weights: readonly number[],
  random: () => number = Math.random,
): Balancer {
  const n = weights.length;
  if (n === 0) throw new RangeError('a balancer needs at least one upstream');
  switch (kind) {
    case 'first':
      return { pick: () => 0 };
    case 'round_robin': {
      let next = 0;
      return {
        pick() {
          const i = next;
          next = next + 1 === n ? 0 : next + 1;
          return i;
        },
      };
    }
    case 'random':
      return { pick: () => Math.min(n - 1, Math.floor(random() * n)) };
    case 'weighted_random': {
      const cumulative = new Float64Array(n);
      let total = 0;
      for (let i = 0; i < n; i++) cumulative[i] = total += Math.max(0, weights[i]!);
      if (total === 0) throw new RangeError('weighted_random needs a positive weight');
      return {
        pick() {
          const x = random() * total;
          let lo = 0;
          let hi = n - 1;
          while (lo < hi) {
            const mid = (lo + hi) >>> 1;
            if (cumulative[mid]! > x) hi = mid;
            else lo = mid + 1;
          }
          return lo;
        },
      };
    }
  }
}

/**
 * The balancer's choice among the upstreams for which `isUp` holds, or -1 when none does. The
 * balancer is asked again up to `n` times (round robin moves on, random draws again by weight),
 * then the upstreams are walked in order (`first` always answers 0). `avoid` (the upstream
 * that just failed, for a retry) is chosen only when no other one is up. Allocates nothing.
 */
export function pickWhere(balancer: Balancer, n: number, isUp: (i: number) => boolean, avoid = -1): number {
  for (let tries = 0; tries < n; tries++) {
    const i = balancer.pick();
    if (i !== avoid && isUp(i)) return i;
  }
  for (let i = 0; i < n; i++) if (i !== avoid && isUp(i)) return i;
  return avoid >= 0 && isUp(avoid) ? avoid : -1;
}
