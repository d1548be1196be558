/**
 * Entry of every worker thread started by start(): pins the thread to its CPU (best effort),
 * creates the thread's runtime, serves the command channel, runs the user's main, and performs
 * the graceful stop. Not imported by user code.
 */
import { readlinkSync } from 'node:fs';
import * as net from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { loadNative, loadPlatform } from '@loch/native';
import { errnoName } from '../errors.js';
import { currentRuntime, setThreadRuntimeDefaults } from '../runtime.js';
import { dropThreadCompletions } from '../uring/driver.js';
import { type CommandHandler, setWorkerContext, type WorkerContext } from './context.js';
import { type FromWorker, type ToWorker, toWire, type WorkerBoot } from './protocol.js';
import type { WorkerFault } from './start.js';

const port = parentPort!;
const boot = workerData as WorkerBoot;

function post(message: FromWorker): void {
  port.postMessage(message);
}

/** This thread's kernel thread id (reported in WorkerInfo.tid), from /proc/thread-self -> "<pid>/task/<tid>". */
function threadId(): number | undefined {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isInteger(tid) && tid > 0 ? tid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Pins the calling thread (this worker) to `cpu` with @loch/native's sched_setaffinity(0, ...),
 * so no thread id is needed. Best effort: returns a description of the outcome for
 * WorkerInfo.affinity ('pinned to cpu N' or 'failed: ...'), never throws.
 */
function pin(cpu: number | undefined): string | undefined {
  if (cpu === undefined) return undefined;
  if (!Number.isInteger(cpu) || cpu < 0) return `failed: ${String(cpu)} is not a CPU number`;
  const native = loadPlatform();
  if ('error' in native) return `failed: @loch/native does not load: ${native.error}`;
  const result = native.platform.setThreadAffinity([cpu]);
  return result === 0
    ? `pinned to cpu ${cpu}`
    : `failed: sched_setaffinity(cpu ${cpu}): ${errnoName(result)}`;
}

/**
 * Fault injection for tests of supervision (StartOptions.faultInjection, off by default): an
 * uncaught error thrown from the event loop, as a bug in a callback would, an exit with
 * EX_SOFTWARE (70), or a wedged worker (`drop-completions`: its ring drops every completion;
 * the legacy driver has no completion queue, so its thread blocks, as a call that never
 * returns would), which only the watchdog's missing heartbeat reveals.
 */
function injectFault(fault: WorkerFault): void {
  if (fault === 'exit') process.exit(70);
  if (fault === 'drop-completions') {
    if (!dropThreadCompletions()) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    return;
  }
  setImmediate(() => {
    throw new Error(`fault injected: worker ${boot.index} throws`);
  });
}

/**
 * A dying worker ends its sockets at once: its clients get their FIN now, and its listeners
 * leave their SO_REUSEPORT groups now, so new connections go to the workers still alive (the
 * kernel resets the ones a listener had queued but not accepted, unless
 * net.ipv4.tcp_migrate_req=1 moves them to another listener of the group). Runs on the thread's
 * 'exit' event, which Node emits synchronously first thing when an uncaught error ends a worker
 * (and at process.exit()), before it reports the error and tears the thread down. Without it a
 * dead worker's sockets stayed open until the teardown closed them (3-15 ms after the error on
 * io_uring, from the build and from the sources, ~70 ms on the legacy driver): a kept-alive
 * client that sent its next request meanwhile had it reset (ECONNRESET), where a dead nginx
 * worker process's sockets close with it. At a graceful stop nothing is open any more by then.
 * A worker terminated from outside (the watchdog) runs no JavaScript: the ring's teardown ends
 * its sockets first thing instead (native Ring::Destroy), libuv's close them at the teardown.
 */
function endSocketsAtExit(driver: string): void {
  process.once('exit', () => {
    try {
      if (driver === 'uring') {
        const native = loadNative();
        if (!('error' in native)) native.binding.shutdownOwned();
        return;
      }
      // The legacy driver's streams and listeners are node:net's: closing the handle closes the
      // descriptor at once (uv_close), a FIN for a connection with nothing unread.
      const handles =
        (process as unknown as { _getActiveHandles?: () => unknown[] })._getActiveHandles?.() ?? [];
      for (const handle of handles) {
        if (handle instanceof net.Socket) handle.destroy();
        else if (handle instanceof net.Server) handle.close();
      }
    } catch {
      // The thread is ending anyway; its teardown closes what is left.
    }
  });
}

async function run(): Promise<void> {
  const tid = threadId();
  const affinity = pin(boot.cpu);
  setThreadRuntimeDefaults({ driver: boot.driver, uring: boot.uring, buffers: boot.buffers });
  const runtime = await currentRuntime();
  endSocketsAtExit(runtime.driver.name);
  const stopController = new AbortController();
  let handler: CommandHandler | undefined;
  const queued: { id: number; msg: unknown }[] = [];
  /** What a graceful stop waits for before it closes the runtime (context.waitUntil). */
  const stopWork: PromiseLike<unknown>[] = [];

  const answer = (id: number, msg: unknown, current: CommandHandler) => {
    Promise.resolve()
      .then(() => current(msg))
      .then(
        (value) => post({ t: 'reply', id, ok: true, value }),
        (error: unknown) => post({ t: 'reply', id, ok: false, error: toWire(error) }),
      );
  };

  const context: WorkerContext = {
    index: boot.index,
    workers: boot.workers,
    restarts: boot.restarts,
    runtime,
    data: boot.data,
    signal: stopController.signal,
    cpu: affinity?.startsWith('pinned') ? boot.cpu : undefined,
    waitUntil(work) {
      stopWork.push(work);
    },
    onCommand(next) {
      handler = next;
      // Commands that arrived before a handler existed were kept; answer them now.
      for (const { id, msg } of queued.splice(0)) answer(id, msg, next);
    },
  };
  setWorkerContext(context);

  let mainDone: Promise<unknown> = Promise.resolve();
  port.on('message', (message: ToWorker) => {
    if (message.t === 'cmd') {
      if (handler === undefined) queued.push({ id: message.id, msg: message.msg });
      else answer(message.id, message.msg, handler);
      return;
    }
    if (message.t === 'fault') {
      if (boot.faults) injectFault(message.fault);
      return;
    }
    if (message.t === 'stop' && !stopController.signal.aborted) {
      stopController.abort();
      // Stop accepting, then wait for main, for the work main asked the stop to wait for, and for
      // every open stream to close.
      void runtime
        .stopAccepting()
        .then(() => mainDone)
        .catch(() => undefined)
        .then(() => Promise.allSettled(stopWork))
        .then(() => runtime.whenIdle())
        .then(() => runtime.close())
        .finally(() => {
          post({ t: 'stopped' });
          port.close();
        });
    }
  });

  const module = (await import(boot.main)) as { main?: unknown; default?: unknown };
  const main = typeof module.main === 'function' ? module.main : module.default;
  if (typeof main !== 'function') {
    throw new TypeError(`${boot.main} exports no main function (export main or a default function)`);
  }
  // main sets the worker up (binds, registers handlers) and resolves when it is ready to serve;
  // serving itself continues in the background until context.signal aborts.
  mainDone = Promise.resolve((main as (context: WorkerContext) => unknown)(context));
  await mainDone;
  post({ t: 'ready', tid, driver: runtime.driver.name, driverReason: runtime.selection.reason, affinity });
  if (boot.heartbeatMs > 0) {
    // The watchdog's heartbeat: a timer of the driver (a ring timeout on io_uring) completed, so
    // this thread's completions flow and its loop turns; one in flight at a time. It is not
    // activity for the idle-trim policy (Driver.heartbeat).
    let beating = false;
    const beat = setInterval(() => {
      if (beating) return;
      beating = true;
      (runtime.driver.heartbeat?.() ?? runtime.driver.sleep(0)).then(
        () => {
          beating = false;
          post({ t: 'beat' });
        },
        () => {
          // No beat this time; the next interval tries again (a driver that keeps failing its
          // timers stays silent and the watchdog replaces the worker).
          beating = false;
        },
      );
    }, boot.heartbeatMs);
    beat.unref();
    stopController.signal.addEventListener('abort', () => clearInterval(beat), { once: true });
  }
}

run().catch((error: unknown) => {
  post({ t: 'fatal', error: toWire(error) });
  process.exit(1);
});
