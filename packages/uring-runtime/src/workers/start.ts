/**
 * Thread-per-core: start() runs an ES module's `main` on N worker threads, each with its own
 * runtime and driver (its own ring on io_uring); listeners bound with `reusePort` let the kernel
 * spread connections across them. The returned WorkerPool is the command channel (broadcast,
 * send), the supervisor (a crashed worker is replaced after a back-off, up to a crash-loop
 * limit), the graceful stop, and where crashes are reported. Not for sharing state between
 * workers: they share nothing but messages.
 */
import { EventEmitter } from 'node:events';
import { availableParallelism } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ResourceLimits, Worker } from 'node:worker_threads';
import { RuntimeError } from '../errors.js';
import type { BufferBudgetOptions } from '../internal/buffer-budget.js';
import { type DriverChoice, resolveDriverChoice } from '../runtime.js';
import { createWorker } from './exec-argv.js';
import type { FromWorker, ToWorker, WireError, WorkerBoot } from './protocol.js';
import { threadEntry } from './thread-entry.js';

/**
 * Supervision of start()'s workers: a worker that crashes is replaced by a new thread with the
 * same index after `minBackoffMs`, doubling per crash within `windowMs` up to `maxBackoffMs`.
 * More than `maxRestarts` crashes of one index within `windowMs` is a crash loop: that index is
 * given up ('crash-loop'), the others keep running.
 */
export interface RestartPolicy {
  /** Back-off before the first replacement (ms). Default 100. */
  readonly minBackoffMs?: number | undefined;
  /** Longest back-off (ms). Default 10000. */
  readonly maxBackoffMs?: number | undefined;
  /** Crashes of one index tolerated within `windowMs`; one more is a crash loop. Default 5. */
  readonly maxRestarts?: number | undefined;
  /** The window in which crashes are counted (ms). Default 60000. */
  readonly windowMs?: number | undefined;
}

/** A RestartPolicy with every field given. */
interface EffectivePolicy {
  readonly minBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly maxRestarts: number;
  readonly windowMs: number;
}

/** The defaults of RestartPolicy. */
export const DEFAULT_RESTART_POLICY: EffectivePolicy = Object.freeze({
  minBackoffMs: 100,
  maxBackoffMs: 10_000,
  maxRestarts: 5,
  windowMs: 60_000,
});

/** Options of start(). */
export interface StartOptions {
  /** Number of worker threads. Default os.availableParallelism(). */
  readonly workers?: number | undefined;
  /**
   * Pin each worker's thread to a CPU: `true` = worker i on CPU i mod ncpu, or a list of CPUs
   * used round-robin. Best effort (the worker calls sched_setaffinity on its own thread through
   * @loch/native); see WorkerInfo.affinity.
   */
  readonly cpuAffinity?: boolean | readonly number[] | undefined;
  /** Driver of every worker's runtime. Default: env LOCH_DRIVER, else 'auto'. */
  readonly driver?: DriverChoice | undefined;
  /** Options of the io_uring driver in every worker. */
  readonly uring?: Readonly<Record<string, unknown>> | undefined;
  /** Receive budgets of every worker's runtime (RuntimeOptions.buffers; env when absent). */
  readonly buffers?: BufferBudgetOptions | undefined;
  /** Passed to every worker as `context.data` (structured clone); see WorkerPool.setData. */
  readonly data?: unknown;
  /**
   * Supervision (default: on, DEFAULT_RESTART_POLICY): a worker that crashes after start()
   * resolved is replaced. `false`: crashes are reported and the index stays dead.
   */
  readonly restart?: RestartPolicy | false | undefined;
  /**
   * Lets WorkerPool.injectFault crash a worker on purpose, for tests of supervision. Off by
   * default: without it injectFault throws, and workers ignore fault messages.
   */
  readonly faultInjection?: boolean | undefined;
  /**
   * The watchdog (default: on, DEFAULT_WATCHDOG): every worker completes a driver timer each
   * `intervalMs` and reports it; a worker that reported none for `timeoutMs` is wedged (a
   * synchronous loop that never ends, a ring whose completions stopped coming) and is
   * terminated and handled as a crash (replaced under `restart`). A worker that still answers
   * messages but whose I/O stopped is caught too: the heartbeat is a completion of its driver,
   * not a message. `false`: none.
   */
  readonly watchdog?: WorkerWatchdog | false | undefined;
  /**
   * V8 heap limits of every worker's isolate (node:worker_threads' `resourceLimits`), e.g.
   * `maxYoungGenerationSizeMb`: the young generation's semi-spaces are a third of it each. V8
   * grows them (default up to 16 MiB each) while many objects survive scavenges, as when
   * thousands of connections open, and shrinks them only once allocation slows, so a busy
   * worker keeps what it grew. Default: V8's own.
   */
  readonly resourceLimits?: ResourceLimits | undefined;
}

/** What start() learned about a worker when it came up. */
export interface WorkerInfo {
  readonly index: number;
  readonly threadId: number;
  /** Kernel thread id, when /proc/thread-self was readable. */
  readonly tid: number | undefined;
  readonly driver: string;
  readonly driverReason: string;
  /** Outcome of CPU pinning ('pinned to cpu N' or 'failed: ...'); undefined when not asked. */
  readonly affinity: string | undefined;
  readonly cpu: number | undefined;
  /** How many threads ran this index before this one (0: the one start() started). */
  readonly restarts: number;
}

/** One worker's answer to broadcast(). */
export type WorkerReply =
  | { readonly worker: number; readonly ok: true; readonly value: unknown }
  | { readonly worker: number; readonly ok: false; readonly error: RuntimeError };

/** A worker that failed: an uncaught error, a failing main, or an unexpected exit. */
export interface WorkerCrash {
  readonly worker: number;
  /** The cause: the uncaught error, main's rejection, or `exited with code N`. */
  readonly error: Error;
  readonly exitCode: number | undefined;
  /**
   * Milliseconds until the replacement starts; undefined when there is none (supervision off,
   * a crash loop, a stop in progress).
   */
  readonly restartIn: number | undefined;
  /** Crashes of this index within the policy's window, this one included (1 = the first). */
  readonly attempt: number;
}

/** A replacement worker that came up (its main resolved). */
export interface WorkerRestart {
  readonly worker: number;
  /** Crashes of this index within the window that led to this replacement (1 = the first). */
  readonly attempt: number;
  readonly info: WorkerInfo;
}

/** An index given up: more than `maxRestarts` crashes within `windowMs`. */
export interface WorkerCrashLoop {
  readonly worker: number;
  readonly crashes: number;
  readonly windowMs: number;
  /** The last crash's cause. */
  readonly error: Error;
}

/**
 * Where an index stands: `running` (serving, or starting before start() resolved),
 * `restarting` (crashed; back-off or replacement booting), `crash-loop` (given up), `exited`
 * (ended and not replaced: supervision off, or an exit with code 0), `stopped` (after stop()).
 */
export type WorkerStatus = 'running' | 'restarting' | 'crash-loop' | 'exited' | 'stopped';

/**
 * A fault WorkerPool.injectFault can make a worker suffer: `throw` (an uncaught error), `exit`
 * (its thread exits with code 70), `drop-completions` (wedged: on io_uring its ring drops every
 * completion from then on, so its I/O and timers stop while its JavaScript runs on; on the
 * legacy driver, which has no completion queue, its thread blocks). Only the watchdog finds the
 * last one.
 */
export type WorkerFault = 'throw' | 'exit' | 'drop-completions';

/** The watchdog's timing (StartOptions.watchdog), in milliseconds. */
export interface WorkerWatchdog {
  /** Between heartbeats, and between the supervisor's checks. Default 1000. */
  readonly intervalMs?: number | undefined;
  /** Without a heartbeat this long, a worker is wedged. Default 30000; at least 2 intervals. */
  readonly timeoutMs?: number | undefined;
}

/** A watchdog's effective timing. */
interface WatchdogTiming {
  readonly intervalMs: number;
  readonly timeoutMs: number;
}

/**
 * The default watchdog: a heartbeat a second, a worker wedged after 30 s without one (Envoy's
 * watchdog kills after a configured kill_timeout; a worker that completed nothing for 30 s
 * has long failed its clients, while a loaded machine's GC pauses stay far below it).
 */
export const DEFAULT_WATCHDOG = { intervalMs: 1000, timeoutMs: 30_000 } as const;

/** The effective watchdog of start()'s option; throws ERR_LOCH_INVALID_WATCHDOG. */
function watchdogTiming(option: StartOptions['watchdog']): WatchdogTiming | false {
  if (option === false) return false;
  const intervalMs = option?.intervalMs ?? DEFAULT_WATCHDOG.intervalMs;
  const timeoutMs = option?.timeoutMs ?? DEFAULT_WATCHDOG.timeoutMs;
  if (
    !Number.isInteger(intervalMs) ||
    intervalMs < 10 ||
    !Number.isInteger(timeoutMs) ||
    timeoutMs < 2 * intervalMs
  ) {
    throw new RuntimeError('ERR_LOCH_INVALID_WATCHDOG', 'start', {
      detail: `watchdog needs integer intervalMs >= 10 and timeoutMs >= 2 * intervalMs, got ${intervalMs} / ${timeoutMs}`,
    });
  }
  return { intervalMs, timeoutMs };
}

/** Outcome of stop(). */
export interface StopResult {
  /** Workers that finished their open work before the deadline (and indexes not running). */
  readonly graceful: readonly number[];
  /** Workers terminated at the deadline with work still open. */
  readonly forced: readonly number[];
}

interface Pending {
  readonly worker: number;
  readonly resolve: (reply: WorkerReply) => void;
  readonly timer: NodeJS.Timeout;
}

/** @internal Creates the thread of one index (start() knows how: entry, execArgv, boot data). */
export type SpawnWorker = (index: number, data: unknown, restarts: number) => Worker;

/** One index of the pool across its threads. */
interface Slot {
  readonly index: number;
  /** The current thread; undefined between a crash and its replacement, and after the end. */
  thread: Worker | undefined;
  status: WorkerStatus;
  /** Whether the current thread posted 'ready'. */
  ready: boolean;
  /** Replacements started so far. */
  restarts: number;
  /** Times (Date.now) of the crashes within the window. */
  crashes: number[];
  /** The first failure the current thread reported ('error' event or a failing main). */
  cause: Error | undefined;
  /** The back-off before the replacement. */
  timer: NodeJS.Timeout | undefined;
  /**
   * When (performance.now: monotonic, unlike Date.now, which a wall-clock step would move) the
   * current thread last reported a heartbeat, or came up.
   */
  lastBeat: number;
}

function fromWire(error: WireError, syscall: string): RuntimeError {
  return new RuntimeError(error.code ?? 'ERR_LOCH_WORKER', syscall, { detail: error.message });
}

function nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new RuntimeError('ERR_LOCH_INVALID_RESTART', 'start', {
      detail: `restart.${name} must be a number >= 0, got ${value}`,
    });
  }
  return value;
}

/** The effective policy of start()'s `restart` option; throws ERR_LOCH_INVALID_RESTART. */
function restartPolicy(option: StartOptions['restart']): EffectivePolicy | false {
  if (option === false) return false;
  const d = DEFAULT_RESTART_POLICY;
  const policy = {
    minBackoffMs: nonNegative('minBackoffMs', option?.minBackoffMs ?? d.minBackoffMs),
    maxBackoffMs: nonNegative('maxBackoffMs', option?.maxBackoffMs ?? d.maxBackoffMs),
    maxRestarts: nonNegative('maxRestarts', option?.maxRestarts ?? d.maxRestarts),
    windowMs: nonNegative('windowMs', option?.windowMs ?? d.windowMs),
  };
  if (policy.maxBackoffMs < policy.minBackoffMs) {
    throw new RuntimeError('ERR_LOCH_INVALID_RESTART', 'start', {
      detail: `restart.maxBackoffMs (${policy.maxBackoffMs}) is below minBackoffMs (${policy.minBackoffMs})`,
    });
  }
  return policy;
}

/**
 * The running workers of start(): command channel, supervisor, graceful stop, crash reports.
 * Events: 'crash' (WorkerCrash), 'restart' (WorkerRestart), 'crash-loop' (WorkerCrashLoop),
 * 'exit' (worker index, exit code; once per thread).
 */
export class WorkerPool extends EventEmitter {
  /** What each worker reported when it came up, by index (a replacement's once it is up). */
  readonly workers: readonly WorkerInfo[];
  /** Resolves with the first crash of any worker (never rejects). */
  readonly crashed: Promise<WorkerCrash>;
  /** @internal Resolves when every worker is up; rejects with the first failure to get there. */
  readonly started: Promise<void>;
  readonly #slots: Slot[];
  readonly #spawn: SpawnWorker;
  readonly #cpus: readonly (number | undefined)[];
  readonly #policy: EffectivePolicy | false;
  readonly #faults: boolean;
  #watchdog: NodeJS.Timeout | undefined;
  /** When (performance.now) the watchdog's previous check ran. */
  #lastCheck = 0;
  readonly #infos: WorkerInfo[] = [];
  #data: unknown;
  #starting = true;
  readonly #startFailed: (error: RuntimeError) => void;
  readonly #onReady: () => void;
  readonly #pending = new Map<number, Pending>();
  readonly #alive = new Set<number>();
  #nextId = 1;
  #stopping: Promise<StopResult> | undefined;
  #crashed!: (crash: WorkerCrash) => void;

  /** @internal Built by start(), which awaits `started` before handing the pool out. */
  constructor(
    count: number,
    spawn: SpawnWorker,
    options: {
      readonly cpus: readonly (number | undefined)[];
      readonly data: unknown;
      readonly policy: EffectivePolicy | false;
      readonly faults: boolean;
      readonly watchdog?: WatchdogTiming | false;
    },
  ) {
    super();
    this.#spawn = spawn;
    this.#cpus = options.cpus;
    this.#data = options.data;
    this.#policy = options.policy;
    this.#faults = options.faults;
    const watchdog = options.watchdog ?? false;
    if (watchdog !== false) {
      this.#lastCheck = performance.now();
      this.#watchdog = setInterval(() => this.#checkHeartbeats(watchdog), watchdog.intervalMs);
      this.#watchdog.unref();
    }
    this.workers = this.#infos;
    this.crashed = new Promise<WorkerCrash>((resolve) => {
      this.#crashed = resolve;
    });
    let started!: () => void;
    let failed!: (error: RuntimeError) => void;
    this.started = new Promise<void>((resolve, reject) => {
      started = resolve;
      failed = reject;
    });
    this.#startFailed = failed;
    let waiting = count;
    this.#onReady = () => {
      if (--waiting === 0) {
        this.#starting = false;
        started();
      }
    };
    this.#slots = [];
    for (let index = 0; index < count; index++) {
      const slot: Slot = {
        index,
        thread: undefined,
        status: 'running',
        ready: false,
        restarts: 0,
        crashes: [],
        cause: undefined,
        timer: undefined,
        lastBeat: performance.now(),
      };
      this.#slots.push(slot);
      this.#run(slot);
    }
  }

  /** Number of worker threads running (replacements still booting included). */
  get alive(): number {
    return this.#alive.size;
  }

  /** Number of worker indexes (start()'s `workers`). */
  get size(): number {
    return this.#slots.length;
  }

  /** Where worker `index` stands (WorkerStatus). */
  status(index: number): WorkerStatus {
    const slot = this.#slots[index];
    if (slot === undefined) {
      throw new RuntimeError('ERR_LOCH_INVALID_WORKERS', 'status', { detail: `no worker ${index}` });
    }
    return slot.status;
  }

  /**
   * Sets `context.data` for the workers started from now on (replacements after a crash);
   * running workers keep theirs (send them commands). Structured-cloned at each start.
   */
  setData(data: unknown): void {
    this.#data = data;
  }

  /** Starts the thread of `slot` and wires its events. */
  #run(slot: Slot): void {
    const thread = this.#spawn(slot.index, this.#data, slot.restarts);
    slot.thread = thread;
    slot.ready = false;
    slot.cause = undefined;
    this.#alive.add(slot.index);
    thread.on('message', (message: FromWorker) => {
      if (slot.thread === thread) this.#onMessage(slot, message);
    });
    thread.on('error', (error) => {
      // Pending commands fail at 'exit': replies the thread posted before it died arrive first.
      if (slot.thread === thread) slot.cause ??= error;
    });
    thread.on('exit', (code) => {
      if (slot.thread !== thread) return;
      slot.thread = undefined;
      this.#alive.delete(slot.index);
      const why = slot.cause === undefined ? `code ${code}` : slot.cause.message;
      this.#failPending(slot.index, `worker ${slot.index} exited before replying (${why})`);
      this.#exited(slot, code);
      this.emit('exit', slot.index, code);
    });
  }

  #onMessage(slot: Slot, message: FromWorker): void {
    const index = slot.index;
    if (message.t === 'beat') {
      slot.lastBeat = performance.now();
      return;
    }
    if (message.t === 'ready') {
      slot.lastBeat = performance.now();
      const cpu = this.#cpus[index];
      const info: WorkerInfo = {
        index,
        threadId: slot.thread!.threadId,
        tid: message.tid,
        driver: message.driver,
        driverReason: message.driverReason,
        affinity: message.affinity,
        cpu: message.affinity?.startsWith('pinned') ? cpu : undefined,
        restarts: slot.restarts,
      };
      this.#infos[index] = info;
      slot.ready = true;
      if (slot.restarts === 0) {
        this.#onReady();
      } else if (slot.status === 'restarting' && this.#stopping === undefined) {
        slot.status = 'running';
        this.emit('restart', {
          worker: index,
          attempt: slot.crashes.length,
          info,
        } satisfies WorkerRestart);
      }
    } else if (message.t === 'reply') {
      const pending = this.#pending.get(message.id);
      if (pending === undefined) return;
      this.#pending.delete(message.id);
      clearTimeout(pending.timer);
      pending.resolve(
        message.ok
          ? { worker: index, ok: true, value: message.value }
          : { worker: index, ok: false, error: fromWire(message.error, 'command') },
      );
    } else if (message.t === 'fatal') {
      slot.cause ??= fromWire(message.error, 'main');
    }
  }

  /** A thread of `slot` ended: a stop, a crash (replaced or not), or an exit of its own. */
  #exited(slot: Slot, code: number): void {
    const cause = slot.cause;
    if (this.#stopping !== undefined) {
      slot.status = 'stopped';
      // A thread that failed while stopping still crashed (terminate() at the stop is not one).
      if (cause !== undefined) this.#report(slot, cause, code, undefined);
      return;
    }
    if (this.#starting && slot.restarts === 0) {
      const error = cause ?? new Error(`worker ${slot.index} exited with code ${code} before it was ready`);
      slot.status = 'exited';
      this.#startFailed(
        error instanceof RuntimeError
          ? error
          : new RuntimeError('ERR_LOCH_WORKER_START', 'start', {
              detail: `worker ${slot.index}: ${error.message}`,
              cause: error,
            }),
      );
      return;
    }
    if (cause === undefined && code === 0 && slot.ready) {
      // main's work ended and the thread's loop emptied: not a failure, nothing to replace.
      slot.status = 'exited';
      return;
    }
    const error = cause ?? new Error(`worker ${slot.index} exited with code ${code}`);
    const policy = this.#policy;
    if (policy === false) {
      slot.status = 'exited';
      this.#report(slot, error, code, undefined);
      return;
    }
    const now = Date.now();
    slot.crashes = slot.crashes.filter((at) => at > now - policy.windowMs);
    slot.crashes.push(now);
    const attempt = slot.crashes.length;
    if (attempt > policy.maxRestarts) {
      slot.status = 'crash-loop';
      this.#report(slot, error, code, undefined);
      this.emit('crash-loop', {
        worker: slot.index,
        crashes: attempt,
        windowMs: policy.windowMs,
        error,
      } satisfies WorkerCrashLoop);
      return;
    }
    const delay = Math.min(policy.maxBackoffMs, policy.minBackoffMs * 2 ** (attempt - 1));
    slot.status = 'restarting';
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      if (this.#stopping !== undefined) return;
      slot.restarts++;
      this.#run(slot);
    }, delay);
    this.#report(slot, error, code, delay);
  }

  #report(slot: Slot, error: Error, exitCode: number, restartIn: number | undefined): void {
    const crash: WorkerCrash = {
      worker: slot.index,
      error,
      exitCode,
      restartIn,
      attempt: Math.max(1, slot.crashes.length),
    };
    this.#crashed(crash);
    if (this.listenerCount('crash') > 0) this.emit('crash', crash);
    else console.error(`loch: worker ${slot.index} crashed:`, error);
  }

  #failPending(worker: number, why: string): void {
    for (const [id, pending] of this.#pending) {
      if (pending.worker !== worker) continue;
      this.#pending.delete(id);
      clearTimeout(pending.timer);
      pending.resolve({
        worker,
        ok: false,
        error: new RuntimeError('ERR_LOCH_WORKER_GONE', 'command', { detail: why }),
      });
    }
  }

  /** Why worker `index` cannot take a message now, or undefined when it can. */
  #unavailable(index: number, syscall: string): RuntimeError | undefined {
    const slot = this.#slots[index];
    if (slot?.status === 'restarting') {
      return new RuntimeError('ERR_LOCH_WORKER_RESTARTING', syscall, {
        detail: `worker ${index} crashed and is being replaced`,
      });
    }
    if (slot?.thread === undefined || slot.status !== 'running') {
      return new RuntimeError('ERR_LOCH_WORKER_GONE', syscall, {
        detail: `worker ${index} is not running${slot === undefined ? '' : ` (${slot.status})`}`,
      });
    }
    return undefined;
  }

  #ask(worker: number, msg: unknown, timeoutMs: number): Promise<WorkerReply> {
    const unavailable = this.#unavailable(worker, 'command');
    if (unavailable !== undefined) return Promise.resolve({ worker, ok: false, error: unavailable });
    const thread = this.#slots[worker]!.thread!;
    const id = this.#nextId++;
    return new Promise<WorkerReply>((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        resolve({
          worker,
          ok: false,
          error: new RuntimeError('ETIMEDOUT', 'command', {
            errno: 110,
            detail: `worker ${worker} did not reply within ${timeoutMs} ms`,
          }),
        });
      }, timeoutMs);
      this.#pending.set(id, { worker, resolve, timer });
      thread.postMessage({ t: 'cmd', id, msg } satisfies ToWorker);
    });
  }

  /**
   * Sends `msg` to every worker's command handler and gathers the replies, in worker order.
   * A worker that does not answer within `timeout` ms (default 5000) yields an ETIMEDOUT reply;
   * one that crashed before answering ERR_LOCH_WORKER_GONE; one being replaced after a crash
   * ERR_LOCH_WORKER_RESTARTING at once (listen for 'restart' to reach its replacement).
   */
  broadcast(msg: unknown, options: { readonly timeout?: number } = {}): Promise<WorkerReply[]> {
    const timeoutMs = options.timeout ?? 5000;
    return Promise.all(this.#slots.map((slot) => this.#ask(slot.index, msg, timeoutMs)));
  }

  /** Sends `msg` to one worker; resolves with its handler's value, rejects with its error. */
  async send(worker: number, msg: unknown, options: { readonly timeout?: number } = {}): Promise<unknown> {
    const reply = await this.#ask(worker, msg, options.timeout ?? 5000);
    if (!reply.ok) throw reply.error;
    return reply.value;
  }

  /**
   * Declares worker `index` failed for a reason the pool cannot see (a readiness check of the
   * application, say): its thread is terminated and handled as a crash with `cause` (replaced
   * under the restart policy). Returns false when the index has no thread.
   */
  fail(index: number, cause: Error): boolean {
    const slot = this.#slots[index];
    const thread = slot?.thread;
    if (slot === undefined || thread === undefined || this.#stopping !== undefined) return false;
    slot.cause ??= cause;
    void thread.terminate();
    return true;
  }

  /**
   * The watchdog's check: a running worker that came up and reported no heartbeat for
   * `timeoutMs` is terminated as wedged (fail()), once. A check that itself ran more than two
   * intervals late is skipped: this thread stalled (a long GC, a blocking call), so the workers'
   * beats wait unread in its queue and every worker would look wedged; the next check, on time,
   * sees them.
   */
  #checkHeartbeats({ intervalMs, timeoutMs }: WatchdogTiming): void {
    const now = performance.now();
    const late = now - this.#lastCheck > 3 * intervalMs;
    this.#lastCheck = now;
    if (late || this.#stopping !== undefined) return;
    for (const slot of this.#slots) {
      if (slot.thread === undefined || !slot.ready || slot.cause !== undefined) continue;
      const silent = now - slot.lastBeat;
      if (silent > timeoutMs) {
        this.fail(
          slot.index,
          new Error(
            `worker ${slot.index} is wedged: no heartbeat for ${Math.round(silent)} ms (watchdog ${timeoutMs} ms)`,
          ),
        );
      }
    }
  }

  /**
   * Makes worker `index` fail on purpose, for tests of supervision (WorkerFault): `'throw'`
   * throws an uncaught error from its event loop, `'exit'` exits its thread with code 70,
   * `'drop-completions'` wedges it (found by the watchdog). Needs
   * `faultInjection: true` at start(), else throws ERR_LOCH_FAULT_INJECTION_OFF; throws
   * ERR_LOCH_WORKER_RESTARTING / ERR_LOCH_WORKER_GONE when the worker is not running.
   */
  injectFault(index: number, fault: WorkerFault = 'throw'): void {
    if (!this.#faults) {
      throw new RuntimeError('ERR_LOCH_FAULT_INJECTION_OFF', 'injectFault', {
        detail: 'start() was not given faultInjection: true',
      });
    }
    const unavailable = this.#unavailable(index, 'injectFault');
    if (unavailable !== undefined) throw unavailable;
    this.#slots[index]!.thread!.postMessage({ t: 'fault', fault } satisfies ToWorker);
  }

  /**
   * Graceful stop: every worker stops accepting (its listeners close, `context.signal` aborts),
   * lets its main settle and its open streams close, then exits. Workers still busy at
   * `deadline` ms (default 10000) are terminated. Nothing is restarted once the stop began: a
   * pending back-off is cancelled and a replacement still booting is terminated (it served
   * nothing yet). Resolves with who finished and who was forced.
   */
  stop(options: { readonly deadline?: number } = {}): Promise<StopResult> {
    this.#stopping ??= this.#stop(options.deadline ?? 10_000);
    return this.#stopping;
  }

  async #stop(deadline: number): Promise<StopResult> {
    clearInterval(this.#watchdog);
    const graceful: number[] = [];
    const forced: number[] = [];
    await Promise.all(
      this.#slots.map(
        (slot) =>
          new Promise<void>((resolve) => {
            const { index, thread } = slot;
            clearTimeout(slot.timer);
            slot.timer = undefined;
            if (thread === undefined) {
              if (slot.status === 'running' || slot.status === 'restarting') slot.status = 'stopped';
              graceful.push(index);
              resolve();
              return;
            }
            if (!slot.ready && slot.restarts > 0) {
              // A replacement still booting: nothing to drain.
              thread.once('exit', () => {
                graceful.push(index);
                resolve();
              });
              void thread.terminate();
              return;
            }
            let stopped = false;
            const onMessage = (message: FromWorker) => {
              if (message.t === 'stopped') stopped = true;
              if (stopped) void thread.terminate();
            };
            const timer = setTimeout(() => {
              forced.push(index);
              void thread.terminate();
            }, deadline);
            thread.on('message', onMessage);
            thread.once('exit', () => {
              clearTimeout(timer);
              thread.off('message', onMessage);
              if (!forced.includes(index)) graceful.push(index);
              resolve();
            });
            thread.postMessage({ t: 'stop' } satisfies ToWorker);
          }),
      ),
    );
    graceful.sort((a, b) => a - b);
    forced.sort((a, b) => a - b);
    return { graceful, forced };
  }
}

function cpuFor(index: number, affinity: StartOptions['cpuAffinity']): number | undefined {
  if (affinity === undefined || affinity === false) return undefined;
  if (affinity === true) return index % availableParallelism();
  return affinity.length === 0 ? undefined : affinity[index % affinity.length];
}

/**
 * Starts `options.workers` worker threads, each running `main` (a module URL or path exporting
 * `main(context)` or a default function) on its own runtime. main sets its worker up (binds
 * listeners, registers onCommand) and resolves when ready; serving goes on in the background
 * until `context.signal` aborts. Resolves once every worker's main has resolved; rejects (and
 * stops the others) when one fails to get there. From then on the pool supervises the workers
 * (`options.restart`).
 */
export async function start(options: StartOptions, main: string | URL): Promise<WorkerPool> {
  const count = options.workers ?? availableParallelism();
  if (!Number.isInteger(count) || count < 1) {
    throw new RuntimeError('ERR_LOCH_INVALID_WORKERS', 'start', {
      detail: `workers must be >= 1, got ${count}`,
    });
  }
  if (options.driver !== undefined) resolveDriverChoice(options.driver);
  const policy = restartPolicy(options.restart);
  const mainUrl =
    main instanceof URL ? main.href : /^[a-z]+:/i.test(main) ? main : pathToFileURL(resolvePath(main)).href;
  const entry = threadEntry(import.meta.url, 'bootstrap');
  const cpus: (number | undefined)[] = [];
  for (let index = 0; index < count; index++) cpus.push(cpuFor(index, options.cpuAffinity));
  const faults = options.faultInjection === true;
  const watchdog = watchdogTiming(options.watchdog);
  const spawn: SpawnWorker = (index, data, restarts) => {
    const workerData: WorkerBoot = {
      loch: 1,
      main: mainUrl,
      index,
      workers: count,
      restarts,
      faults,
      heartbeatMs: watchdog === false ? 0 : watchdog.intervalMs,
      driver: options.driver,
      uring: options.uring,
      buffers: options.buffers,
      cpu: cpus[index],
      data,
    };
    const resourceLimits = options.resourceLimits;
    return createWorker(entry.target, {
      eval: entry.eval,
      workerData,
      execArgv: entry.execArgv,
      resourceLimits,
    });
  };
  const pool = new WorkerPool(count, spawn, { cpus, data: options.data, policy, faults, watchdog });
  try {
    await pool.started;
  } catch (error) {
    await pool.stop({ deadline: 0 });
    throw error;
  }
  return pool;
}
