/**
 * The runtime of one JS thread: which Driver serves it ('auto' | 'uring' | 'legacy', env
 * LOCH_DRIVER), why, and what it has open. createRuntime() builds one; currentRuntime() returns
 * the thread's own, created on first use. Not for I/O itself (drivers) or for the socket API
 * (tcp.ts, unix.ts), which delegates here.
 */
import { performance } from 'node:perf_hooks';
import { debuglog } from 'node:util';
import { memoryTrimmer, waveCollector } from '@loch/native';
import type { Driver } from './driver.js';
import { RuntimeError } from './errors.js';
import { RuntimeActivity } from './internal/activity.js';
import type { BufferBudgetOptions, BufferStats } from './internal/buffer-budget.js';
import { IdleTrimmer, resolveIdleTrimMs } from './internal/idle-trim.js';
import { resolveWaveCollectMs, resolveWaveCollectOpen, WaveCollector } from './internal/wave-collect.js';
import { createLegacyDriver } from './legacy/driver.js';
import type { DriverName } from './stream.js';

/** Which driver to use: 'auto' tries io_uring and falls back to legacy (node:net). */
export type DriverChoice = 'auto' | 'uring' | 'legacy';

const DRIVER_CHOICES: readonly string[] = ['auto', 'uring', 'legacy'];

/** Options of createRuntime(). */
export interface RuntimeOptions {
  /** Driver choice. Default: env LOCH_DRIVER, else 'auto'. */
  readonly driver?: DriverChoice | undefined;
  /**
   * Options passed to the io_uring driver (UringDriverOptions: entries, bufferCount, bufferSize,
   * sqpoll, flushMode, ..., and directFiles / maxConnections: direct descriptors, README.md
   * "Direct descriptors"; env LOCH_URING_DIRECT_FILES when directFiles is not given).
   */
  readonly uring?: Readonly<Record<string, unknown>> | undefined;
  /**
   * Where the driver selection is logged. Default: util.debuglog('loch') (NODE_DEBUG=loch), plus
   * one process warning (code LOCH_DRIVER_FALLBACK) per thread when 'auto' fell back to legacy.
   */
  readonly log?: ((message: string) => void) | undefined;
  /**
   * Idle memory trim: after the driver had I/O and then none for this many milliseconds, give
   * free memory back to the OS once (V8's low-memory GC, which shrinks the heap V8 grew under
   * load, then malloc_trim). 0 disables. Default: env LOCH_IDLE_TRIM_MS, else 1000. When I/O
   * comes back within 32x this period of a trim for the second time in a row or more, the period
   * doubles (up to 32x; I/O after a longer quiet resets it): a trim costs forced full GCs and
   * flushes compiled code, so bursty traffic is not made to pay it after every burst. Needs the
   * @loch/native addon (on either driver); without it this is a no-op.
   */
  readonly idleTrimMs?: number | undefined;
  /**
   * Collect after a wave of connections: when the streams open on this thread fall to half or
   * less of their high-water mark and by 1,000 or more, run one full GC (no malloc_trim, keeps
   * compiled code), also while busy, at most once per this many milliseconds. The idle trim never
   * runs on a busy worker, so the closed connections' objects would stay as old-space garbage.
   * A stable connection count never triggers it. 0 disables. Default: env LOCH_WAVE_COLLECT_MS,
   * else 30,000.
   */
  readonly waveCollectMs?: number | undefined;
  /**
   * Also collect once after an open wave (streams up by 1,000 or more and settled), which gives
   * back the new space a burst of connections grew. Default: env LOCH_WAVE_COLLECT_OPEN, else off:
   * it cost a burst's busy clients throughput and p99 and saved no memory three minutes later
   * (bench/idle-memory/readings-2026-12-07g.md).
   */
  readonly waveCollectOpen?: boolean | undefined;
  /**
   * Receive budgets in bytes, on either driver: `streamBytes` one stream may hold unread (default
   * 1 MiB or `workerBytes` when smaller, env LOCH_STREAM_BUFFER_BYTES), `workerBytes` all streams of the thread (default
   * 12 MiB, env LOCH_WORKER_BUFFER_BYTES). A stream at its budget stops reading until its reader
   * catches up, so the peer meets TCP backpressure. Read the numbers with `runtime.bufferStats()`.
   */
  readonly buffers?: BufferBudgetOptions | undefined;
}

/** The outcome of driver selection: what was asked, where the ask came from, what was chosen and why. */
export interface DriverSelection {
  readonly driver: DriverName;
  readonly requested: DriverChoice;
  readonly source: 'option' | 'env' | 'default';
  readonly reason: string;
}

/**
 * Resolves the requested driver: the option, else env LOCH_DRIVER, else 'auto'. An unknown
 * value fails with ERR_LOCH_INVALID_DRIVER naming where it came from.
 */
export function resolveDriverChoice(
  option: string | undefined,
  env: string | undefined = process.env.LOCH_DRIVER,
): { readonly choice: DriverChoice; readonly source: DriverSelection['source'] } {
  const [value, source] =
    option !== undefined
      ? [option, 'option' as const]
      : env !== undefined && env !== ''
        ? [env, 'env' as const]
        : ['auto', 'default' as const];
  if (!DRIVER_CHOICES.includes(value)) {
    throw new RuntimeError('ERR_LOCH_INVALID_DRIVER', 'createRuntime', {
      detail: `${source === 'env' ? 'LOCH_DRIVER' : 'driver'} is ${JSON.stringify(value)}; expected 'auto', 'uring' or 'legacy'`,
    });
  }
  return { choice: value as DriverChoice, source };
}

/** The slice of src/uring/index.js the runtime needs, checked at load time. */
interface UringModule {
  probeUring(): unknown;
  createUringDriver(options?: Readonly<Record<string, unknown>>): Driver;
}

/** Loads the io_uring driver module, or says why it cannot be used. */
async function loadUring(): Promise<UringModule | string> {
  // A dynamic import keeps the legacy path independent of the uring module: when that module or
  // its addon is missing or broken, 'auto' still works and reports why. The specifier is a
  // literal so bundlers and vitest (which serve src/*.ts for './x.js') resolve it too.
  let loaded: Partial<UringModule>;
  try {
    loaded = (await import('./uring/index.js')) as Partial<UringModule>;
  } catch (error) {
    return `io_uring driver module failed to load: ${error instanceof Error ? error.message : String(error)}`;
  }
  if (typeof loaded.probeUring !== 'function' || typeof loaded.createUringDriver !== 'function') {
    return 'io_uring driver module lacks probeUring/createUringDriver';
  }
  return loaded as UringModule;
}

/** Reads probeUring()'s verdict: `true`/`{ available: true }` or a reason why not. */
async function probeVerdict(uring: UringModule): Promise<string | undefined> {
  let result: unknown;
  try {
    result = await uring.probeUring();
  } catch (error) {
    return `io_uring probe failed: ${error instanceof Error ? error.message : String(error)}`;
  }
  if (result === true) return undefined;
  if (typeof result === 'object' && result !== null) {
    const verdict = result as { available?: unknown; ok?: unknown; reason?: unknown };
    if (verdict.available === true || verdict.ok === true) return undefined;
    if (typeof verdict.reason === 'string') return `io_uring unavailable: ${verdict.reason}`;
  }
  return 'io_uring unavailable';
}

const defaultLog = debuglog('loch');
let fallbackWarned = false;

/** A fallback to node:net costs performance: say so once per thread, visibly. */
function warnFallbackOnce(line: string): void {
  if (fallbackWarned) return;
  fallbackWarned = true;
  process.emitWarning(`loch: ${line}`, { code: 'LOCH_DRIVER_FALLBACK' });
}

/** One thread's runtime: its driver, how it was chosen, and what it has open. */
export class Runtime {
  /** The driver serving this runtime's I/O. */
  readonly driver: Driver;
  /** Which driver was chosen and why. */
  readonly selection: DriverSelection;
  /** @internal Open listeners and streams, kept by the socket wrappers. */
  readonly activity = new RuntimeActivity();
  #closed = false;
  #trimmer: IdleTrimmer | undefined;
  #trimsBefore = 0;
  #trimMsBefore = 0;
  #waves: WaveCollector | undefined;

  /**
   * Gives this thread's free memory back to the OS now, as an idle trim does (V8's low-memory GC
   * of this thread's isolate, then malloc_trim): for a thread done with a burst of work it will
   * not repeat, such as a main thread that only supervises workers once they started. Synchronous
   * (tens of milliseconds: full GCs). Needs no runtime on the thread; false without the addon.
   */
  static trimThreadMemory(): boolean {
    const trim = memoryTrimmer();
    if (trim === undefined) return false;
    trim();
    return true;
  }

  constructor(
    driver: Driver,
    selection: DriverSelection,
    idleTrimMs?: number,
    waveCollectMs?: number,
    waveCollectOpen?: boolean,
  ) {
    this.driver = driver;
    this.selection = selection;
    this.setIdleTrim(resolveIdleTrimMs(idleTrimMs));
    const waveMs = resolveWaveCollectMs(waveCollectMs);
    const collectAfterWave = waveCollector();
    if (waveMs > 0 && collectAfterWave !== undefined) {
      this.#waves = new WaveCollector(
        waveMs,
        {
          openStreams: () => this.activity.openStreams,
          // `wave`: which wave the call is for (a retry keeps its wave's).
          collect: (wave: 'open' | 'close') => {
            const before = this.#waves?.highWater;
            const started = performance.now();
            const began = collectAfterWave();
            if (defaultLog.enabled) {
              const ms = (performance.now() - started).toFixed(1);
              const open = this.activity.openStreams;
              const note = began ? '' : ', not started (a marking runs): again at the next step';
              const which =
                wave === 'open'
                  ? `after an open wave ${this.#waves?.openCollections}`
                  : `after a close wave ${this.#waves?.collections}`;
              defaultLog(`wave collect ${which}: ${ms} ms, streams ${before} -> ${open}${note}`);
            }
            return began;
          },
          now: () => performance.now(),
        },
        resolveWaveCollectOpen(waveCollectOpen),
      );
      this.#waves.start();
    }
  }

  /**
   * Sets the idle-trim period in milliseconds (0 disables); see RuntimeOptions.idleTrimMs.
   * Returns whether trimming is active (false when disabled, without the addon, or when the
   * driver reports no activity counter).
   */
  setIdleTrim(ms: number): boolean {
    if (this.#trimmer !== undefined) {
      this.#trimsBefore += this.#trimmer.trims;
      this.#trimMsBefore += this.#trimmer.trimMs;
      this.#trimmer.stop();
      this.#trimmer = undefined;
    }
    const driver = this.driver;
    if (this.#closed || !(ms > 0) || driver.activityCount === undefined) return false;
    const trim = memoryTrimmer();
    if (trim === undefined) return false;
    this.#trimmer = new IdleTrimmer(ms, {
      activity: () => driver.activityCount?.() ?? 0,
      trim: () => {
        // Free buffers the driver keeps go first, so the low-memory GC collects them.
        const started = performance.now();
        driver.trimBuffers?.();
        trim();
        if (defaultLog.enabled) {
          const ms = (performance.now() - started).toFixed(1);
          defaultLog(`idle trim ${this.#trimmer?.trims}: ${ms} ms, period ${this.#trimmer?.periodMs} ms`);
        }
      },
      now: () => performance.now(),
    });
    this.#trimmer.start();
    return true;
  }

  /** How many idle trims this runtime ran (for stats and tests). */
  get idleTrims(): number {
    return this.#trimsBefore + (this.#trimmer?.trims ?? 0);
  }

  /** Milliseconds this runtime's thread spent inside idle trims (forced GCs, malloc_trim). */
  get idleTrimTimeMs(): number {
    return this.#trimMsBefore + (this.#trimmer?.trimMs ?? 0);
  }

  /** Full GCs run after a wave of connections closed (RuntimeOptions.waveCollectMs). */
  get waveCollections(): number {
    return this.#waves?.collections ?? 0;
  }

  /**
   * Full GCs run after a wave of connections opened (streams up by 1,000 or more and settled: the
   * new space the burst grew goes back), counted apart from waveCollections.
   */
  get waveOpenCollections(): number {
    return this.#waves?.openCollections ?? 0;
  }

  /** Milliseconds this runtime's thread spent inside those collections. */
  get waveCollectTimeMs(): number {
    return this.#waves?.collectMs ?? 0;
  }

  /** Milliseconds the last of those collections' calls took (0 before the first). */
  get waveCollectLastMs(): number {
    return this.#waves?.lastMs ?? 0;
  }

  /** Old-generation bytes those collections freed (read 500 ms after each). */
  get waveCollectFreedBytes(): number {
    return this.#waves?.freedBytes ?? 0;
  }

  /** Wave-collection calls made again because the one before did not start (a marking ran). */
  get waveCollectRetries(): number {
    return this.#waves?.retries ?? 0;
  }

  /** Wave collections that never started (their retries did not either). */
  get waveCollectMisses(): number {
    return this.#waves?.misses ?? 0;
  }

  /** The open-stream high-water mark the wave-collect policy keeps (0 when it is off). */
  get waveHighWater(): number {
    return this.#waves?.highWater ?? 0;
  }

  /**
   * The idle period in force now (ms): the configured one, doubled up to 32x while traffic keeps
   * coming back soon after a trim (0 when trimming is off).
   */
  get idleTrimPeriodMs(): number {
    return this.#trimmer?.periodMs ?? 0;
  }

  /**
   * The receive budgets' numbers of this thread: caps, bytes held now and at most (by the thread
   * and by one stream), streams waiting for room, provided buffers in use (io_uring).
   */
  bufferStats(): BufferStats | undefined {
    return this.driver.bufferStats?.();
  }

  /** Streams handed out by this runtime's listeners and connects that are not closed yet. */
  get openStreams(): number {
    return this.activity.openStreams;
  }

  /** Closes every listener bound through this runtime; open streams stay open. */
  async stopAccepting(): Promise<void> {
    await Promise.all([...this.activity.listeners].map((listener) => listener.close()));
  }

  /** Tasks started with spawn() on this runtime that have not settled. */
  get tasks(): number {
    return this.activity.tasks;
  }

  /** Resolves once every stream of this runtime is closed and every spawned task settled. */
  whenIdle(): Promise<void> {
    return this.activity.whenIdle();
  }

  /** Closes listeners, streams and the driver. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.setIdleTrim(0);
    this.#waves?.stop();
    await this.stopAccepting();
    await this.driver.close();
    const state = threadState();
    if (state.current !== undefined && (await state.current.catch(() => undefined)) === this) {
      state.current = undefined;
    }
  }
}

/**
 * Creates a runtime with the chosen driver. 'uring' fails with ERR_LOCH_URING_UNAVAILABLE
 * when io_uring cannot serve; 'auto' falls back to legacy and records the reason in
 * `selection`.
 */
export async function createRuntime(options: RuntimeOptions = {}): Promise<Runtime> {
  const { choice, source } = resolveDriverChoice(options.driver);
  const log = options.log ?? defaultLog;
  let selection: DriverSelection;
  let driver: Driver;
  if (choice === 'legacy') {
    driver = createLegacyDriver({ buffers: options.buffers });
    selection = { driver: 'legacy', requested: choice, source, reason: `requested by ${source}` };
  } else {
    const uring = await loadUring();
    let unavailable = typeof uring === 'string' ? uring : await probeVerdict(uring);
    let uringDriver: Driver | undefined;
    if (unavailable === undefined && typeof uring !== 'string') {
      try {
        uringDriver = uring.createUringDriver(
          options.buffers === undefined
            ? (options.uring ?? {})
            : { buffers: options.buffers, ...options.uring },
        );
      } catch (error) {
        unavailable = error instanceof Error ? error.message : String(error);
      }
    }
    if (uringDriver !== undefined) {
      driver = uringDriver;
      selection = {
        driver: 'uring',
        requested: choice,
        source,
        reason: choice === 'auto' ? 'io_uring available' : `requested by ${source}`,
      };
    } else if (choice === 'uring') {
      throw new RuntimeError('ERR_LOCH_URING_UNAVAILABLE', 'createRuntime', { detail: unavailable });
    } else {
      driver = createLegacyDriver({ buffers: options.buffers });
      selection = {
        driver: 'legacy',
        requested: choice,
        source,
        reason: unavailable ?? 'io_uring unavailable',
      };
    }
  }
  const line = `driver ${selection.driver} (${selection.requested} from ${selection.source}: ${selection.reason})`;
  log(line);
  if (options.log === undefined && selection.requested === 'auto' && selection.driver === 'legacy') {
    warnFallbackOnce(line);
  }
  return new Runtime(driver, selection, options.idleTrimMs, options.waveCollectMs, options.waveCollectOpen);
}

interface ThreadState {
  current: Promise<Runtime> | undefined;
  defaults: RuntimeOptions;
}

// globalThis is per thread (each worker has its own), and a symbol in the global registry is
// shared by every copy of this module in the thread (src and dist, or two versions), so there
// is one runtime per thread.
const STATE_KEY = Symbol.for('@loch/uring-runtime.thread');

function threadState(): ThreadState {
  const holder = globalThis as { [STATE_KEY]?: ThreadState };
  holder[STATE_KEY] ??= { current: undefined, defaults: {} };
  return holder[STATE_KEY];
}

/**
 * The calling thread's runtime, created on first use with the thread's defaults (set by
 * start() in workers; env LOCH_DRIVER or 'auto' otherwise).
 */
export function currentRuntime(): Promise<Runtime> {
  const state = threadState();
  if (state.current === undefined) {
    const created = createRuntime(state.defaults);
    state.current = created;
    created.catch(() => {
      if (state.current === created) state.current = undefined;
    });
  }
  return state.current;
}

/** @internal Sets the options currentRuntime() uses in this thread (worker bootstrap). */
export function setThreadRuntimeDefaults(options: RuntimeOptions): void {
  threadState().defaults = options;
}
