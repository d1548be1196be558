/**
 * Thread-per-core: start() runs an ES module's `main` on N worker threads, each with its own
 * runtime and driver (its own ring on io_uring); listeners bound with `reusePort` let the kernel
 * spread connections across them. The returned WorkerPool is the command channel (broadcast,
 * send), the graceful stop, and where crashes are reported. Not for sharing state between
 * workers: they share nothing but messages.
 */
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { RuntimeError } from '../errors.js';
import { type DriverChoice, resolveDriverChoice } from '../runtime.js';
import type { FromWorker, ToWorker, WireError, WorkerBoot } from './protocol.js';

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
  /** Passed to every worker as `context.data` (structured clone). */
  readonly data?: unknown;
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
}

/** One worker's answer to broadcast(). */
export type WorkerReply =
  | { readonly worker: number; readonly ok: true; readonly value: unknown }
  | { readonly worker: number; readonly ok: false; readonly error: RuntimeError };

/** A worker that failed: an uncaught error, a failing main, or an unexpected exit. */
export interface WorkerCrash {
  readonly worker: number;
  readonly error: Error;
  readonly exitCode: number | undefined;
}

/** Outcome of stop(). */
export interface StopResult {
  /** Workers that finished their open work before the deadline. */
  readonly graceful: readonly number[];
  /** Workers terminated at the deadline with work still open. */
  readonly forced: readonly number[];
}

interface Pending {
  readonly worker: number;
  readonly resolve: (reply: WorkerReply) => void;
  readonly timer: NodeJS.Timeout;
}

function fromWire(error: WireError, syscall: string): RuntimeError {
  return new RuntimeError(error.code ?? 'ERR_LOCH_WORKER', syscall, { detail: error.message });
}

/** Where the worker entry lives, and how to run it (TS sources need tsx in the worker). */
function bootstrapEntry(): { code: string; eval: true } | { url: URL; eval: false } {
  const own = import.meta.url;
  if (own.endsWith('.js')) return { url: new URL('./bootstrap.js', own), eval: false };
  // Running from TypeScript sources (tests, tsx): load the entry through tsx's ESM API.
  const entry = new URL('./bootstrap.ts', own).href;
  const tsxDir = dirname(createRequire(own).resolve('tsx/package.json'));
  const api = pathToFileURL(join(tsxDir, 'dist/esm/api/index.mjs')).href;
  return {
    eval: true,
    code: `import(${JSON.stringify(api)}).then((tsx) => tsx.tsImport(${JSON.stringify(entry)}, ${JSON.stringify(entry)})).catch((error) => process.nextTick(() => { throw error; }));`,
  };
}

/**
 * The running workers of start(): command channel, graceful stop, crash reports.
 * Events: 'crash' (WorkerCrash), 'exit' (worker index, exit code).
 */
export class WorkerPool extends EventEmitter {
  /** What each worker reported when it came up, by index. */
  readonly workers: readonly WorkerInfo[];
  /** Resolves with the first crash of any worker (never rejects). */
  readonly crashed: Promise<WorkerCrash>;
  /** @internal Resolves when every worker is up; rejects with the first failure to get there. */
  readonly started: Promise<void>;
  readonly #threads: Worker[];
  readonly #cpus: readonly (number | undefined)[];
  readonly #infos: WorkerInfo[] = [];
  #starting = true;
  readonly #startFailed: (error: RuntimeError) => void;
  readonly #onReady: () => void;
  readonly #pending = new Map<number, Pending>();
  readonly #alive: Set<number>;
  #nextId = 1;
  #stopping: Promise<StopResult> | undefined;
  #crashed!: (crash: WorkerCrash) => void;

  /** @internal Built by start(), which awaits `started` before handing the pool out. */
  constructor(threads: Worker[], cpus: readonly (number | undefined)[]) {
    super();
    this.#threads = threads;
    this.#cpus = cpus;
    this.workers = this.#infos;
    this.#alive = new Set(threads.map((_, index) => index));
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
    let waiting = threads.length;
    this.#onReady = () => {
      if (--waiting === 0) {
        this.#starting = false;
        started();
      }
    };
    threads.forEach((thread, index) => {
      thread.on('message', (message: FromWorker) => this.#onMessage(index, message));
      thread.on('error', (error) => this.#crash(index, error, undefined));
      thread.on('exit', (code) => {
        this.#alive.delete(index);
        this.#failPending(index, 'worker exited');
        if (this.#stopping === undefined && (code !== 0 || this.#starting)) {
          this.#crash(index, new Error(`worker ${index} exited with code ${code}`), code);
        }
        this.emit('exit', index, code);
      });
    });
  }

  /** Number of workers still running. */
  get alive(): number {
    return this.#alive.size;
  }

  #onMessage(index: number, message: FromWorker): void {
    if (message.t === 'ready') {
      const cpu = this.#cpus[index];
      this.#infos[index] = {
        index,
        threadId: this.#threads[index]!.threadId,
        tid: message.tid,
        driver: message.driver,
        driverReason: message.driverReason,
        affinity: message.affinity,
        cpu: message.affinity?.startsWith('pinned') ? cpu : undefined,
      };
      this.#onReady();
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
      this.#crash(index, fromWire(message.error, 'main'), undefined);
    }
  }

  #crash(worker: number, error: Error, exitCode: number | undefined): void {
    if (this.#starting) {
      this.#startFailed(
        error instanceof RuntimeError
          ? error
          : new RuntimeError('ERR_LOCH_WORKER_START', 'start', {
              detail: `worker ${worker}: ${error.message}`,
              cause: error,
            }),
      );
      return;
    }
    const crash: WorkerCrash = { worker, error, exitCode };
    this.#crashed(crash);
    if (this.listenerCount('crash') > 0) this.emit('crash', crash);
    else console.error(`loch: worker ${worker} crashed:`, error);
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

  #ask(worker: number, msg: unknown, timeoutMs: number): Promise<WorkerReply> {
    const thread = this.#threads[worker];
    if (thread === undefined || !this.#alive.has(worker)) {
      return Promise.resolve({
        worker,
        ok: false,
        error: new RuntimeError('ERR_LOCH_WORKER_GONE', 'command', {
          detail: `worker ${worker} is not running`,
        }),
      });
    }
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
   * A worker that does not answer within `timeout` ms (default 5000) yields an ETIMEDOUT reply.
   */
  broadcast(msg: unknown, options: { readonly timeout?: number } = {}): Promise<WorkerReply[]> {
    const timeoutMs = options.timeout ?? 5000;
    return Promise.all(this.#threads.map((_, index) => this.#ask(index, msg, timeoutMs)));
  }

  /** Sends `msg` to one worker; resolves with its handler's value, rejects with its error. */
  async send(worker: number, msg: unknown, options: { readonly timeout?: number } = {}): Promise<unknown> {
    const reply = await this.#ask(worker, msg, options.timeout ?? 5000);
    if (!reply.ok) throw reply.error;
    return reply.value;
  }

  /**
   * Graceful stop: every worker stops accepting (its listeners close, `context.signal` aborts),
   * lets its main settle and its open streams close, then exits. Workers still busy at
   * `deadline` ms (default 10000) are terminated. Resolves with who finished and who was forced.
   */
  stop(options: { readonly deadline?: number } = {}): Promise<StopResult> {
    this.#stopping ??= this.#stop(options.deadline ?? 10_000);
    return this.#stopping;
  }

  async #stop(deadline: number): Promise<StopResult> {
    const graceful: number[] = [];
    const forced: number[] = [];
    await Promise.all(
      this.#threads.map(
        (thread, index) =>
          new Promise<void>((resolve) => {
            if (!this.#alive.has(index)) {
              graceful.push(index);
              resolve();
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
 * stops the others) when one fails to get there.
 */
export async function start(options: StartOptions, main: string | URL): Promise<WorkerPool> {
  const count = options.workers ?? availableParallelism();
  if (!Number.isInteger(count) || count < 1) {
    throw new RuntimeError('ERR_LOCH_INVALID_WORKERS', 'start', {
      detail: `workers must be >= 1, got ${count}`,
    });
  }
  if (options.driver !== undefined) resolveDriverChoice(options.driver);
  const mainUrl =
    main instanceof URL ? main.href : /^[a-z]+:/i.test(main) ? main : pathToFileURL(resolvePath(main)).href;
  const entry = bootstrapEntry();
  // From sources, the worker must resolve @loch/* to sources as well; from dist, leave it alone.
  const execArgv =
    !entry.eval || process.execArgv.includes('--conditions=@loch/source')
      ? process.execArgv
      : [...process.execArgv, '--conditions=@loch/source'];
  const threads: Worker[] = [];
  const cpus: (number | undefined)[] = [];
  for (let index = 0; index < count; index++) {
    const cpu = cpuFor(index, options.cpuAffinity);
    cpus.push(cpu);
    const workerData: WorkerBoot = {
      loch: 1,
      main: mainUrl,
      index,
      workers: count,
      driver: options.driver,
      uring: options.uring,
      cpu,
      data: options.data,
    };
    threads.push(
      entry.eval
        ? new Worker(entry.code, { eval: true, workerData, execArgv })
        : new Worker(entry.url, { workerData, execArgv }),
    );
  }
  const pool = new WorkerPool(threads, cpus);
  try {
    await pool.started;
  } catch (error) {
    await pool.stop({ deadline: 0 });
    throw error;
  }
  return pool;
}
