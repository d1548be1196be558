/**
 * Handshake deadlines: one coarse sweep (DeadlineSweep of @loch/uring-runtime) for every TLS
 * handshake of this thread instead of a timer each. A `setTimeout` per handshake cost a Timeout
 * object, a closure and its context, and native calls (libuv's clock at every insert, and the
 * timer handle's ref and unref whenever the thread had no other ref'd timer: 2-3 per handshake).
 * Arming here is one small object and a few field writes. Not a precise timer: a deadline fires
 * between `ms` and `ms` plus two ticks late (a quarter of the shortest deadline, at most 1 s), never
 * early; for a handshake deadline of seconds that is what nginx's ssl_handshake_timeout gives too.
 * Not for anything but the handshake: TlsStream arms one at its start and cancels it at its end.
 */
import { DeadlineSweep, NO_DEADLINE, type SweepMember } from '@loch/uring-runtime';

/** This thread's handshake deadlines (module state is per thread: each worker has its own). */
const sweep = new DeadlineSweep<SweepMember>();

/**
 * One handshake's deadline. `cancel()` lets go of the owner at once (nothing of the connection is
 * kept); the small object itself leaves the sweep at its next tick, so handshakes that end between
 * two ticks never start or stop the sweep's interval.
 */
export class HandshakeDeadline<T> implements SweepMember {
  sweepSlot = -1;
  #at = NO_DEADLINE;
  #owner: T | undefined;
  /** The owner's handler: one function for every member of a kind (no closure per handshake). */
  readonly #expire: (owner: T) => void;

  /** Arms a deadline `ms` from now (a duration that is not a positive finite number: 1 ms, as setTimeout). */
  constructor(owner: T, ms: number, expire: (owner: T) => void) {
    this.#owner = owner;
    this.#expire = expire;
    this.#at = sweep.deadline(this, ms > 0 && Number.isFinite(ms) ? ms : 1);
  }

  /** The handshake ended (done, failed or closed): the deadline will not fire. */
  cancel(): void {
    this.#owner = undefined;
  }

  /** DeadlineSweep: expires the deadline once it is reached; leaves the sweep when cancelled or fired. */
  onSweep(now: number): boolean {
    const owner = this.#owner;
    if (owner === undefined) return false;
    if (now < this.#at) return true;
    this.#owner = undefined;
    this.#expire(owner);
    return false;
  }
}
