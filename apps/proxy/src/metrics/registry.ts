/**
 * The admin side of the metrics, on the main thread: allocates one SharedArrayBuffer per worker
 * index at start (sized from the config, with room for what reloads add), owns the layout and
 * extends it on reload, sums the workers' buffers when scraped, and keeps what only the main
 * thread sees (reload outcomes, worker restarts). Counters read from workers' `stats` replies
 * (pool hits and misses, which live in the connectors) are made monotonic here: a value lower
 * than the last one seen (the worker was replaced, or a reload made a new connector) starts a
 * new run on top of the last value. Not for the request path (recorder.ts).
 */
import type { ProxyConfig } from '../config/schema.js';
import { MetricsLayout, type MetricsPlan } from './layout.js';
import type { MetricsShare } from './recorder.js';

/** The smallest buffer (doubles per worker): 128 KiB, room for about 700 routes. */
const MIN_CAPACITY = 16 * 1024;

/** How a reload ended (the `outcome` label of loch_reloads_total). */
export type ReloadOutcome = 'ok' | 'failed' | 'refused' | 'aborted';

/** The main thread's metrics. */
export class MetricsRegistry {
  readonly layout: MetricsLayout;
  readonly buffers: readonly SharedArrayBuffer[];
  readonly reloads: Record<ReloadOutcome, number> = { ok: 0, failed: 0, refused: 0, aborted: 0 };
  /** Workers replaced after a crash. */
  restarts = 0;
  #plan: MetricsPlan;
  readonly #views: readonly Float64Array[];
  readonly #last = new Map<string, number>();
  readonly #base = new Map<string, number>();

  /**
   * Lays out `config` and allocates a buffer per worker: four times what it needs (at least
   * MIN_CAPACITY doubles), so reloads can add servers and routes. Recording is on when `config`
   * has an `[admin]` listener.
   */
  constructor(config: ProxyConfig, workers: number) {
    const needed = new MetricsLayout().extend(config, false).size;
    const capacity = Math.max(MIN_CAPACITY, 2 ** Math.ceil(Math.log2(needed * 4)));
    this.layout = new MetricsLayout(capacity);
    this.#plan = this.layout.extend(config, config.admin !== undefined);
    this.buffers = Array.from({ length: workers }, () => new SharedArrayBuffer(capacity * 8));
    this.#views = this.buffers.map((b) => new Float64Array(b));
  }

  /** What workers start with (their start data). */
  share(): MetricsShare {
    return { buffers: this.buffers, plan: this.#plan };
  }

  /** The plan for a reload to `next` (the layout grows by what it adds). */
  plan(next: ProxyConfig): MetricsPlan {
    this.#plan = this.layout.extend(next, next.admin !== undefined);
    return this.#plan;
  }

  /** Every worker's buffer summed, slot by slot (replaced workers' counts included: same buffer). */
  sum(): Float64Array {
    const out = new Float64Array(this.layout.size);
    for (const view of this.#views) for (let i = 0; i < out.length; i++) out[i]! += view[i]!;
    return out;
  }

  /**
   * A cumulative value `value` that worker `worker` reports for `series` (its own count since its
   * connector or thread started): returns the process-wide value of this worker's share, which
   * never decreases.
   */
  monotonic(worker: number, series: string, value: number): number {
    const key = `${worker}\u0000${series}`;
    const last = this.#last.get(key) ?? 0;
    let base = this.#base.get(key) ?? 0;
    if (value < last) {
      base += last;
      this.#base.set(key, base);
    }
    this.#last.set(key, value);
    return base + value;
  }
}
