/**
 * The per-worker client connection limit (`runtime.max_connections_per_worker`, nginx's
 * worker_connections), as the accept loop's `whenFull` hook. At the limit the worker stops
 * accepting: new connections wait in the kernel's listen backlog (on io_uring the listener also
 * keeps up to 64 it accepted already), they are neither accepted and closed nor answered, and
 * the worker resumes as soon as one of its connections closes. With SO_REUSEPORT each worker
 * has its own backlog, so a full worker does not block the others' listeners. A log line
 * tells when accepting paused, at most one per 10 s. Not a rate limit, not per client.
 */

/** How often a paused worker re-counts (closes it is not told of: TLS handshakes, Thrift). */
const RECHECK_MS = 250;
/** Shortest interval between two "paused" log lines. */
const LOG_INTERVAL_MS = 10_000;

/** Pauses accepting while `count()` is at `max`. */
export class ConnectionLimit {
  #paused: Promise<void> | null = null;
  #resume: (() => void) | null = null;
  #timer: NodeJS.Timeout | null = null;
  #loggedAt = -Infinity;
  /** Pauses since the last log line. */
  #pauses = 0;

  constructor(
    /** Connections allowed (changed on reload). */
    public max: number,
    /** Open client connections now. */
    private readonly count: () => number,
    /** Told when accepting pauses (rate-limited): the limit and the pauses since the last call. */
    private readonly onPause: (max: number, pauses: number) => void,
  ) {}

  /**
   * The accept loop's `whenFull`: null while there is room, else a promise that settles once a
   * connection closed (or stop() was called). Shared by every listener of the worker, so the
   * count may pass the limit by at most one connection per listener.
   */
  readonly whenFull = (): Promise<void> | null => {
    if (this.count() < this.max) return null;
    if (this.#paused === null) {
      this.#paused = new Promise<void>((resolve) => {
        this.#resume = resolve;
      });
      this.#timer = setInterval(this.released, RECHECK_MS);
      this.#timer.unref();
      this.#pauses++;
      const now = performance.now();
      if (now - this.#loggedAt >= LOG_INTERVAL_MS) {
        this.#loggedAt = now;
        this.onPause(this.max, this.#pauses);
        this.#pauses = 0;
      }
    }
    return this.#paused;
  };

  /** A connection closed: resumes accepting when there is room again. */
  readonly released = (): void => {
    if (this.#resume !== null && this.count() < this.max) this.stop();
  };

  /** Resumes every paused accept loop now (at shutdown they then see that they must stop). */
  stop(): void {
    const resume = this.#resume;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#paused = null;
    this.#resume = null;
    resume?.();
  }
}
