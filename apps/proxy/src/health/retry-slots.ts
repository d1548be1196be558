/**
 * Where each route group's retry budget counts sit in the process's shared memory
 * (health-flags.ts retry blocks), decided by the main thread before the workers see a config,
 * as outlier-slots.ts does for passive health: a route with `retries` gets `retrySlot`, one
 * index for its group in every worker's block. Routes whose workers share one upstream group
 * (routeGroup's identity) share the slot; a reload keeps the slots of the groups it keeps, and
 * frees the rest once a committed config no longer uses them. A freed slot is given out again
 * (cleared in every block) only once the never-used ones ran out, as requests of a dropped
 * group may still be in flight on connections that drain after the reload. When all are in use
 * a group gets none and each worker keeps its own budget (warned).
 * Not for the budget arithmetic (retry-budget.ts).
 */
import type { ProxyConfig, RouteConfig } from '../config/schema.js';
import { groupIdentity } from './group-identity.js';
import { RETRY_BLOCK_WORDS, RETRY_GROUPS, RETRY_WORDS_PER_GROUP } from './health-flags.js';

/** Places route groups' retry counts (main thread). */
export class RetrySlots {
  readonly #words: Int32Array;
  readonly #warn: (message: string) => void;
  readonly #slots = new Map<string, number>();
  readonly #free: number[] = [];
  #next = 0;

  /** `words`: the retry blocks (health-flags.ts retryWords()). */
  constructor(words: Int32Array, warn: (message: string) => void) {
    this.#words = words;
    this.#warn = warn;
  }

  /** `config` with every route that has `retries` given its slot (new groups placed now). */
  update(config: ProxyConfig): ProxyConfig {
    const withSlot = (route: RouteConfig): RouteConfig => {
      if (route.retries === undefined) return route;
      const slot = this.#place(groupIdentity(route));
      return slot === undefined ? route : { ...route, retrySlot: slot };
    };
    const servers = config.servers.map((s) =>
      s.routes.some((r) => r.retries !== undefined) ? { ...s, routes: s.routes.map(withSlot) } : s,
    );
    return servers.every((s, i) => s === config.servers[i]) ? config : { ...config, servers };
  }

  /** Frees the slots that `config` (the config the workers run now) does not use. */
  retain(config: ProxyConfig): void {
    const wanted = new Set<string>();
    for (const server of config.servers)
      for (const route of server.routes) if (route.retries !== undefined) wanted.add(groupIdentity(route));
    for (const [key, slot] of this.#slots) {
      if (wanted.has(key)) continue;
      this.#slots.delete(key);
      this.#free.push(slot);
    }
  }

  /** Groups placed now. */
  get size(): number {
    return this.#slots.size;
  }

  #place(key: string): number | undefined {
    const existing = this.#slots.get(key);
    if (existing !== undefined) return existing;
    const slot = this.#next < RETRY_GROUPS ? this.#next++ : this.#free.shift();
    if (slot === undefined) {
      this.#warn(
        `retries: more than ${RETRY_GROUPS} route groups, each worker keeps its own retry budget for the rest`,
      );
      return undefined;
    }
    // A slot given out again starts at zero in every worker's block.
    for (let at = slot * RETRY_WORDS_PER_GROUP; at < this.#words.length; at += RETRY_BLOCK_WORDS)
      for (let k = 0; k < RETRY_WORDS_PER_GROUP; k++) Atomics.store(this.#words, at + k, 0);
    this.#slots.set(key, slot);
    return slot;
  }
}
