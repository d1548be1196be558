/**
 * Per-connection flood counters of the HTTP/2 server session: events of one kind (peer resets,
 * SETTINGS, PING, empty or useless frames, WINDOW_UPDATE) counted over fixed intervals, the
 * defense against the floods HTTP/2 servers have had to fix (rapid reset, CVE-2023-44487; the
 * 2019 SETTINGS/PING/empty-frame floods, CVE-2019-9512/9515/9518). Each counter costs two
 * numbers; the session reads the clock only when it counts.
 *
 * Not for flow control (flow-control.ts) nor for the codec's own bounds (CONTINUATION, HPACK).
 */

/** Counts events of one kind per interval; over the limit the session ends the connection. */
export class FloodCounter {
  #count = 0;
  #since = Number.NEGATIVE_INFINITY;

  /**
   * `limit` events are allowed per `intervalMs`; `limit` 0 disables the counter (never over).
   */
  constructor(
    readonly limit: number,
    readonly intervalMs: number,
  ) {}

  /** Counts one event at `now` (ms); true once more than `limit` fell in the current interval. */
  hit(now: number): boolean {
    if (this.limit === 0) return false;
    if (now - this.#since >= this.intervalMs) {
      this.#since = now;
      this.#count = 0;
    }
    return ++this.#count > this.limit;
  }
}
