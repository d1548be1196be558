/**
 * Messages between start()'s main thread and its workers. Internal to the workers module; not
 * for user code, which sees broadcast()/onCommand().
 */
import type { BufferBudgetOptions } from '../internal/buffer-budget.js';
import type { DriverChoice } from '../runtime.js';
import type { WorkerFault } from './start.js';

/** workerData of every Loch worker. */
export interface WorkerBoot {
  readonly loch: 1;
  readonly main: string;
  readonly index: number;
  readonly workers: number;
  /** How many threads ran this index before this one (0 for the first; supervision). */
  readonly restarts: number;
  /** Whether the pool honours `fault` messages (StartOptions.faultInjection). */
  readonly faults: boolean;
  /** Milliseconds between heartbeats (StartOptions.watchdog); 0: none. */
  readonly heartbeatMs: number;
  readonly driver: DriverChoice | undefined;
  readonly uring: Readonly<Record<string, unknown>> | undefined;
  readonly buffers: BufferBudgetOptions | undefined;
  readonly cpu: number | undefined;
  readonly data: unknown;
}

/** Main thread -> worker. */
export type ToWorker =
  | { readonly t: 'cmd'; readonly id: number; readonly msg: unknown }
  | { readonly t: 'stop' }
  | { readonly t: 'fault'; readonly fault: WorkerFault };

/** Serialisable failure. */
export interface WireError {
  readonly name: string;
  readonly code: string | undefined;
  readonly message: string;
  readonly stack: string | undefined;
}

/** Worker -> main thread. */
export type FromWorker =
  | {
      readonly t: 'ready';
      readonly tid: number | undefined;
      readonly driver: string;
      readonly driverReason: string;
      readonly affinity: string | undefined;
    }
  | { readonly t: 'reply'; readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly t: 'reply'; readonly id: number; readonly ok: false; readonly error: WireError }
  | { readonly t: 'stopped' }
  | { readonly t: 'fatal'; readonly error: WireError }
  /** The worker's driver completed a timer: its completions flow (the watchdog's heartbeat). */
  | { readonly t: 'beat' };

/** Converts anything thrown into a WireError. */
export function toWire(error: unknown): WireError {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return {
      name: error.name,
      code: typeof code === 'string' ? code : undefined,
      message: error.message,
      stack: error.stack,
    };
  }
  return { name: 'Error', code: undefined, message: String(error), stack: undefined };
}
