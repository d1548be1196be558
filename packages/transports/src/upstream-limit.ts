/**
 * UpstreamLimit: a cap on the HTTP/1.1 connections in use to one upstream (exchanges in
 * flight, connects in progress included; idle pooled connections do not count, as nginx's
 * max_conns) and on the requests queued waiting for one (Envoy's max_pending_requests). A key
 * that carries one (`LimitedKey.limit`) is held to it by HttpConnector: at the cap a request
 * waits in the queue, up to its connect deadline, and is sent when a connection is released;
 * with the queue full, or its deadline passed, it fails at once with ConnectError
 * `ERR_TRANSPORT_UPSTREAM_BUSY` (status 503), nothing sent. One object per upstream, shared by
 * every key naming it (PROXY-header keys are copies: they keep the same limit). Counters live
 * here, so a caller that keeps the object (across reloads) keeps the count.
 * Not for HTTP/2 sessions (SharedConnectionPool has its own stream limits).
 */
import { ConnectError } from './errors.js';

/** A request waiting for a connection under the cap. */
export interface LimitWaiter {
  /**
   * Starts the request (a connection slot was taken for it). Called from inside a release, so
   * it must defer the work (a microtask) rather than start an exchange there and then.
   */
  readonly start: () => void;
  /** Fails the request (deadline passed, or the caller aborted). */
  readonly fail: (error: unknown) => void;
  timer: NodeJS.Timeout | undefined;
}

/** A key that may carry a limit. */
export interface LimitedKey {
  readonly limit?: UpstreamLimit | undefined;
}

/** The connections-in-use cap and the pending queue of one upstream (per process or worker). */
export class UpstreamLimit {
  /** Connections in use (exchanges and connects in progress). */
  inUse = 0;
  /** Requests refused (queue full, or waited past their deadline). */
  refused = 0;
  /** Requests that had to wait. */
  queued = 0;
  readonly #waiters: LimitWaiter[] = [];

  constructor(
    /** Connections in use at most; 0 means no cap. */
    readonly maxConnections: number,
    /** Requests waiting for a connection at most; 0: none wait (refused at the cap). */
    readonly maxPending: number,
  ) {
    if (!(maxConnections >= 0) || !(maxPending >= 0)) throw new RangeError('limits must be >= 0');
  }

  /** Requests waiting now. */
  get pending(): number {
    return this.#waiters.length;
  }

  /** Takes a connection slot when one is free (true), else false: queue or refuse. */
  tryAcquire(): boolean {
    if (this.maxConnections !== 0 && this.inUse >= this.maxConnections) return false;
    this.inUse++;
    return true;
  }

  /**
   * Queues `waiter` for `deadline` ms (0: no deadline); false when the queue is full (counted
   * as refused: the caller fails the request).
   */
  enqueue(waiter: LimitWaiter, deadline: number, address: string): boolean {
    if (this.#waiters.length >= this.maxPending) {
      this.refused++;
      return false;
    }
    this.queued++;
    this.#waiters.push(waiter);
    if (deadline > 0) {
      waiter.timer = setTimeout(() => {
        const i = this.#waiters.indexOf(waiter);
        if (i < 0) return;
        this.#waiters.splice(i, 1);
        this.refused++;
        waiter.fail(busyError(address, `no connection free within ${deadline} ms`));
      }, deadline);
    }
    return true;
  }

  /** Drops a waiter that no longer wants its turn (its caller aborted). */
  remove(waiter: LimitWaiter): boolean {
    const i = this.#waiters.indexOf(waiter);
    if (i < 0) return false;
    this.#waiters.splice(i, 1);
    clearTimeout(waiter.timer);
    return true;
  }

  /** Gives a connection slot back; the first waiter (if any) takes it and starts. */
  release(): void {
    this.inUse--;
    const next = this.#waiters.shift();
    if (next === undefined) return;
    clearTimeout(next.timer);
    this.inUse++;
    next.start();
  }
}

/** The error of a request refused at the cap (queue full or deadline passed). */
export function busyError(address: string, why: string): ConnectError {
  return new ConnectError('ERR_TRANSPORT_UPSTREAM_BUSY', 'connect', `upstream busy: ${why}`, { address });
}
