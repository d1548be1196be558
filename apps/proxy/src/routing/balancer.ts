/**
 * Upstream selection per route: first, round_robin, random, weighted_random. One balancer per
 * route per worker (state such as the round-robin cursor is not shared across workers, as in
 * nginx). `pick` allocates nothing. Not for health checking: a balancer picks among what it
 * is given.
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
