/**
 * The wave-collect policy: when a thread's open streams fall by a large share from their
 * high-water mark (a wave of connections came and went), run one memory-reducing collection,
 * also while the thread is busy, at most once per `minIntervalMs`. Why: the closed connections'
 * objects sit in old space as garbage, and a busy worker runs no mark-compact for them (old-space
 * allocation under steady load is slow) nor an idle trim (it never has a quiet second), so it
 * keeps a wave's memory: 19,000 connections opened and closed under wrk left 22.6-40.1 MiB (issue
 * 18, bench/idle-memory/readings-2026-12-07.md section 3). The collection is @loch/native's
 * collectAfterWave (V8's MemoryPressureNotification(kModerate)): a plain full GC freed the objects
 * but left old space fragmented (RSS 99-108 MiB after the wave against 87-89 with it; a 5 ms call
 * and an ~11 ms final pause against the plain GC's 20-24 ms; readings-2026-12-07c.md). Not a GC
 * tuner: a stable connection count never triggers it, whatever the churn; the idle trim
 * (idle-trim.ts) stays what gives everything back when the thread goes quiet.
 *
 * Its counterpart, the open wave: when open streams rose by WAVE_MIN_DROP or more above their
 * low-water mark and stopped rising, the same collection runs once (at most once per
 * `minIntervalMs`, apart from the close waves' interval). Why: the new connections' objects
 * survive scavenges, so V8 doubles the semi-spaces while they open (a worker's new space 4 -> 16
 * MiB under a burst of ~16,700 connections: 36 MiB for 3 workers at 50,000 idle connections,
 * bench/idle-memory/readings-2026-12-07d.md), and a busy worker shrinks new space only after a
 * memory-reducing mark-compact: V8's memory reducer ran one 37-67 s after the burst ended (2
 * rounds), this collection runs it when the burst settles (its end is V8's new-space
 * shrink, to the initial size: 50,000 idle, busy 711-781 B/conn against 1,347-1,383 five seconds
 * after the burst; readings-2026-12-07f.md). Steady load grows new space again at its own pace
 * (the survivors of in-flight requests: 4 -> 8 MiB within 30-120 s there), so this gives back
 * what the burst grew, sooner, not what the load needs. No test of the young generation's size
 * first: a read of it does not tell the burst's growth from the load's, and the collection also
 * takes the burst's own garbage out of old space.
 *
 * Off by default (opt-in: LOCH_WAVE_COLLECT_OPEN=1): read held over a 50,000-connection burst
 * with wrk -c16 on (readings-2026-12-07g.md, 3 rounds each), it cost the busy clients while the
 * burst opened: wrk's req/s over the burst 3,059-4,775 against 5,572-8,754 off, p99 189-261 ms
 * against 81-176, the burst 80-117 s long against 60-100; and at + 180 s the memory was where it is
 * without it (895-1,002 B/conn against 795-1,185). Its first call comes mid-burst (each burst
 * paused ~70% in, at ~12,000 of ~16,700 a worker), so the rest of the burst opens after it.
 */
import { getHeapSpaceStatistics } from 'node:v8';
import { resolveMillisSetting } from './idle-trim.js';

/** What the policy watches and what it calls. */
export interface WaveCollectHooks {
  /** Streams open on the thread now (the runtime's count: either driver). */
  openStreams(): number;
  /**
   * One collection: in production @loch/native's collectAfterWave (V8's memory-reducing
   * collection, started incrementally; it may finish after the call returns). Returns false when
   * it did not start one (a marking V8 began on its own was still running): tried again at the
   * next steps (WAVE_RETRIES). Any other answer (none) counts as started. `wave` says which
   * wave it is for (a retry keeps its wave's), for the caller's log.
   */
  collect(wave: 'open' | 'close'): unknown;
  /** Milliseconds since some fixed point (performance.now in production). */
  now(): number;
  /**
   * Bytes the old generation holds in objects now (default: V8's old, code and large-object
   * spaces), read before collect() and at the next step (the collection may finish after it returns).
   */
  heapUsed?(): number;
}

/** Default least time between two collections, in milliseconds. */
export const DEFAULT_WAVE_COLLECT_MS = 30_000;

/** A drop counts as a wave when open streams are at most this share of the high-water mark... */
export const WAVE_SHARE = 0.5;

/** ...and at least this many streams below it (a few connections coming and going are no wave). */
export const WAVE_MIN_DROP = 1000;

/** How often the open-stream count is read, in milliseconds (an unref'd timer). */
export const WAVE_CHECK_MS = 500;

/**
 * How many times a collection that did not start is called again, one step (WAVE_CHECK_MS)
 * apart: V8's own markings finish within that under load (20-60 ms in --trace-gc).
 */
export const WAVE_RETRIES = 3;

/**
 * Reads whether the collector also collects after an open wave: the option, else env
 * LOCH_WAVE_COLLECT_OPEN ("1"/"on" or "0"/"off"), else off (DEFAULT_WAVE_COLLECT_OPEN). Any other
 * env value falls back to the default.
 */
export function resolveWaveCollectOpen(
  option: boolean | undefined,
  env: string | undefined = process.env.LOCH_WAVE_COLLECT_OPEN,
): boolean {
  if (option !== undefined) return option;
  if (env === '1' || env === 'on') return true;
  if (env === '0' || env === 'off') return false;
  return DEFAULT_WAVE_COLLECT_OPEN;
}

/** Whether open waves are collected by default: no, it cost a burst's clients (the file's comment). */
export const DEFAULT_WAVE_COLLECT_OPEN = false;

/**
 * Reads the least time between collections: the option, else env LOCH_WAVE_COLLECT_MS, else
 * 30,000 ms. 0 disables. A value that is not a finite number >= 0 falls back to the default.
 */
export function resolveWaveCollectMs(
  option: number | undefined,
  env: string | undefined = process.env.LOCH_WAVE_COLLECT_MS,
): number {
  return resolveMillisSetting(option, env, DEFAULT_WAVE_COLLECT_MS);
}

/**
 * Reads the open-stream count every WAVE_CHECK_MS and keeps its high-water mark since the last
 * collection. Collects when the count is at most WAVE_SHARE of that mark and WAVE_MIN_DROP or
 * more below it, no lower than at the step before (the wave has finished closing), and `minIntervalMs` passed since the last collection (the first may come at
 * once); the
 * mark then restarts from the count now. The hot path pays nothing: the count is one the
 * runtime keeps anyway.
 */
export class WaveCollector {
  /**
   * Waves collected so far: one per wave, counted at its first call (a wave whose calls all
   * did not start counts here and in `misses`).
   */
  collections = 0;
  /** Milliseconds spent inside collect() so far (by hooks.now). */
  collectMs = 0;
  /** Collections that threw (counted, then retried no sooner than the interval). */
  failures = 0;
  /** collect() calls again after one that did not start (a marking was already running). */
  retries = 0;
  /**
   * Collections that never started: WAVE_RETRIES more calls did not either. The wave's garbage
   * then went with V8's own markings, which do not compact (its pages stay).
   */
  misses = 0;
  /** Milliseconds the last collect() call took (0 before the first). */
  lastMs = 0;
  /**
   * Old-generation bytes the collections freed so far: used before each call that started one
   * less used at the step after it (WAVE_CHECK_MS later), each at least 0. A call that did not
   * start counts nothing (what V8's own marking frees meanwhile is not the collection's).
   */
  freedBytes = 0;
  /** The open-stream high-water mark since the last collection. */
  highWater: number;
  /**
   * Collections after an open wave (the count rose by WAVE_MIN_DROP or more and settled), one per
   * wave as `collections`, which counts the waves of closes; `retries`, `misses` and `failures`
   * count both kinds.
   */
  openCollections = 0;
  /** The open-stream low-water mark since the last collection after an open wave. */
  lowWater: number;
  readonly #minIntervalMs: number;
  readonly #hooks: WaveCollectHooks;
  /** Whether open waves are collected too (resolveWaveCollectOpen). */
  readonly #openWaves: boolean;
  #lastAt = Number.NEGATIVE_INFINITY;
  #previous: number;
  /** Old-generation bytes used when the last collection started, until the step after it reads the drop. */
  #usedBefore: number | undefined;
  /** Calls left for a collection that did not start (0: none pending). */
  #retriesLeft = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #openLastAt = Number.NEGATIVE_INFINITY;
  /** Calls made for the open wave now pending (0: none); bounded as the close wave's retries. */
  #openCalls = 0;

  constructor(minIntervalMs: number, hooks: WaveCollectHooks, openWaves = resolveWaveCollectOpen(undefined)) {
    this.#minIntervalMs = minIntervalMs;
    this.#hooks = hooks;
    this.#openWaves = openWaves;
    this.highWater = hooks.openStreams();
    this.lowWater = this.highWater;
    this.#previous = this.highWater;
  }

  /** Starts the timer (no-op when the interval is 0). */
  start(): void {
    if (this.#minIntervalMs <= 0 || this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.check(), WAVE_CHECK_MS);
    this.#timer.unref();
  }

  /** Stops the timer. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One timer step: raise the mark, or collect after a wave. */
  check(): void {
    if (this.#usedBefore !== undefined) {
      this.freedBytes += Math.max(0, this.#usedBefore - this.#heapUsed());
      this.#usedBefore = undefined;
    }
    if (this.#retriesLeft > 0) {
      this.retries++;
      this.#retriesLeft--;
      this.#collect();
      return;
    }
    const open = this.#hooks.openStreams();
    const previous = this.#previous;
    this.#previous = open;
    if (open < this.lowWater) this.lowWater = open;
    if (open > this.highWater) {
      this.highWater = open;
      return;
    }
    if (this.#openWaves && this.#openWaveSettled(open, previous)) return;
    if (open > this.highWater * WAVE_SHARE || this.highWater - open < WAVE_MIN_DROP) return;
    // Still falling: the wave is closing. Collecting now would leave the rest of it as garbage
    // (measured: a collection at 6,346 of 19,157 kept 51 MiB of heap used), so wait for a step
    // without a further drop.
    if (open < previous) return;
    const now = this.#hooks.now();
    if (now - this.#lastAt < this.#minIntervalMs) return; // the mark stays: collect once allowed
    this.collections++;
    this.#retriesLeft = WAVE_RETRIES;
    this.#collect();
    this.highWater = this.#hooks.openStreams();
    this.#previous = this.highWater;
  }

  /**
   * Calls collect() once, timed. Why the retry: V8's moderate memory pressure is a no-op while a
   * marking V8 started on its own (allocation limit) still runs; that marking does not reduce
   * memory, so the wave's pages would stay until the next wave (RSS as after a plain GC,
   * readings-2026-12-07c.md). Not seen in 10 waves of 19,000 connections under wrk (in the 5 with
   * the answer logged every first call started: readings-2026-12-07e.md), shown in a script
   * (native/test/gc-pauses.test.ts); a miss keeps ~40 MiB until the next collection and the
   * check costs nothing, so a call that did
   * not start the collection is made again at the next step, when that marking is over, up to
   * WAVE_RETRIES; `retries` in /metrics tells whether it happens in production.
   */
  #collect(): void {
    const now = this.#hooks.now();
    this.#usedBefore = this.#heapUsed();
    let started: unknown = true;
    try {
      started = this.#hooks.collect('close');
    } catch {
      // On a timer: a throw here would be an uncaught exception in the worker. Memory stays as
      // it was; the next try waits for the interval.
      this.failures++;
    }
    if (started !== false) this.#retriesLeft = 0;
    else {
      this.#usedBefore = undefined;
      if (this.#retriesLeft === 0) this.misses++;
    }
    const done = this.#hooks.now();
    this.lastMs = done - now;
    this.collectMs += this.lastMs;
    this.#lastAt = done;
  }

  /**
   * The open wave (see the file's comment): the count WAVE_MIN_DROP or more above its low-water
   * mark, not above the step before (the wave finished opening) and less than WAVE_MIN_DROP below
   * its high-water mark, `minIntervalMs` since the last such collection. Calls collect() (a call that did
   * not start one is made again at the next steps, up to WAVE_RETRIES more); the low-water mark
   * then restarts from the count now. Returns whether it called.
   */
  #openWaveSettled(open: number, previous: number): boolean {
    // Risen, no longer rising, and not falling away from the top (that is a close wave's start).
    if (open - this.lowWater < WAVE_MIN_DROP || open > previous || this.highWater - open >= WAVE_MIN_DROP)
      return false;
    const now = this.#hooks.now();
    if (now - this.#openLastAt < this.#minIntervalMs) return false;
    if (this.#openCalls === 0) this.openCollections++;
    else this.retries++;
    let started: unknown = true;
    try {
      started = this.#hooks.collect('open');
    } catch {
      this.failures++; // as #collect(): memory stays as it was, the next try waits the interval
    }
    this.#openCalls++;
    if (started !== false || this.#openCalls > WAVE_RETRIES) {
      if (started === false) this.misses++;
      this.#openCalls = 0;
      this.#openLastAt = this.#hooks.now();
      this.lowWater = open;
    }
    return true;
  }

  #heapUsed(): number {
    return this.#hooks.heapUsed?.() ?? oldGenerationUsed();
  }
}

/** Bytes in objects outside the young generation (whose churn under load would swamp the drop). */
function oldGenerationUsed(): number {
  let used = 0;
  for (const space of getHeapSpaceStatistics())
    if (space.space_name !== 'new_space' && space.space_name !== 'new_large_object_space')
      used += space.space_used_size;
  return used;
}
