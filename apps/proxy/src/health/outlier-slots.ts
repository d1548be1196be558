/**
 * Where each route group's passive health sits in the process's shared memory (health-flags.ts),
 * decided by the main thread before the workers see a config, as the active checker does for
 * its verdicts: routes with `outlier_detection` get `outlierSlots` (a group word and one place
 * per upstream). The same upstreams with the same outlier settings share one place (as Envoy's
 * outlier detection is per cluster), however many routes name them; a reload keeps the places
 * of the groups it keeps (with their failure counts and ejections), and a replaced worker gets
 * the same config, so it sees the current ejections. `update(next)` places new groups and moves
 * nothing; `retain(running)` frees the places the committed config no longer uses (zeroed when
 * given out again, and only once the never-used ones ran out: a dropped group's routes may
 * still serve requests on connections that drain after the reload, and those must not count
 * into another group's words). When the table is full a group gets no place and each worker keeps its own
 * state (warned). Not for the outlier arithmetic (outlier-state.ts).
 */
import type { ProxyConfig, RouteConfig } from '../config/schema.js';
import { OUTLIER_GROUPS, OUTLIER_UPSTREAMS, OUTLIER_WORDS_PER_UPSTREAM } from './health-flags.js';

/** A route group's place in the passive part of the shared memory (indices into its words). */
export interface OutlierSlotRef {
  /** The group's ejected-count word. */
  readonly group: number;
  /** Per upstream, its first word. */
  readonly upstreams: readonly number[];
}

interface Entry {
  readonly ref: OutlierSlotRef;
  /** Upstream place numbers (not word indices), for freeing. */
  readonly places: readonly number[];
}

/** The identity of a group's passive state: its upstreams (in order) and outlier settings. */
function groupKey(route: RouteConfig): string {
  return JSON.stringify([route.upstreams.map((u) => [u.label, u.address]), route.outlierDetection]);
}

/** Places route groups in the passive part of the shared memory (main thread). */
export class OutlierSlots {
  readonly #words: Int32Array;
  readonly #warn: (message: string) => void;
  readonly #entries = new Map<string, Entry>();
  readonly #freeGroups: number[] = [];
  readonly #freePlaces: number[] = [];
  #nextGroup = 0;
  #nextPlace = 0;

  /** `words`: the passive part (health-flags.ts outlierWords()). */
  constructor(words: Int32Array, warn: (message: string) => void) {
    this.#words = words;
    this.#warn = warn;
  }

  /** `config` with every route that has `outlier_detection` given its place (new ones placed now). */
  update(config: ProxyConfig): ProxyConfig {
    const withSlots = (route: RouteConfig): RouteConfig => {
      if (route.outlierDetection === undefined) return route;
      const ref = this.#place(groupKey(route), route.upstreams.length);
      return ref === undefined ? route : { ...route, outlierSlots: ref };
    };
    const servers = config.servers.map((s) =>
      s.routes.some((r) => r.outlierDetection !== undefined) ? { ...s, routes: s.routes.map(withSlots) } : s,
    );
    return servers.every((s, i) => s === config.servers[i]) ? config : { ...config, servers };
  }

  /** Frees the places that `config` (the config the workers run now) does not use. */
  retain(config: ProxyConfig): void {
    const wanted = new Set<string>();
    for (const server of config.servers)
      for (const route of server.routes)
        if (route.outlierDetection !== undefined) wanted.add(groupKey(route));
    for (const [key, entry] of this.#entries) {
      if (wanted.has(key)) continue;
      this.#entries.delete(key);
      this.#freeGroups.push(entry.ref.group);
      this.#freePlaces.push(...entry.places);
    }
  }

  /** Groups placed now. */
  get size(): number {
    return this.#entries.size;
  }

  #place(key: string, upstreams: number): OutlierSlotRef | undefined {
    const existing = this.#entries.get(key);
    if (existing !== undefined) return existing.ref;
    const freePlaces = this.#freePlaces.length + (OUTLIER_UPSTREAMS - this.#nextPlace);
    const group = this.#nextGroup < OUTLIER_GROUPS ? this.#nextGroup++ : (this.#freeGroups.shift() ?? -1);
    if (group < 0 || freePlaces < upstreams) {
      if (group >= 0) this.#freeGroups.unshift(group);
      this.#warn(
        `outlier detection: more than ${OUTLIER_GROUPS} groups or ${OUTLIER_UPSTREAMS} upstreams, each worker keeps its own state for the rest`,
      );
      return undefined;
    }
    const places: number[] = [];
    for (let i = 0; i < upstreams; i++)
      places.push(this.#nextPlace < OUTLIER_UPSTREAMS ? this.#nextPlace++ : this.#freePlaces.shift()!);
    // A place given out again starts clean (nothing ejected, no failures).
    Atomics.store(this.#words, group, 0);
    const first = places.map((p) => OUTLIER_GROUPS + p * OUTLIER_WORDS_PER_UPSTREAM);
    for (const at of first)
      for (let k = 0; k < OUTLIER_WORDS_PER_UPSTREAM; k++) Atomics.store(this.#words, at + k, 0);
    const ref: OutlierSlotRef = { group, upstreams: first };
    this.#entries.set(key, { ref, places });
    return ref;
  }
}
