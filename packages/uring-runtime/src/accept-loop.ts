/**
 * The one accept loop of every Loch server (HTTP, Thrift, the proxy's listeners): takes
 * connections from a listener and hands each to a callback, stops when the listener is closed,
 * and backs off on errors such as EMFILE instead of spinning on them. Not a connection handler:
 * what happens to an accepted stream (serve it, count it, close it) is the callback's business.
 */
/** What the accept loop needs of a listener (a StreamListener has it; so does a test double). */
export interface AcceptSource<S> {
  /** The next connection; rejects with a `code` (ECANCELED or EBADF once the listener closed). */
  accept(): Promise<S>;
}

/** acceptLoop options (milliseconds). */
export interface AcceptLoopOptions {
  /**
   * Asked before every accept and after every failure: true stops the loop (a server that is
   * closing). A stream accepted meanwhile is still handed to the callback, which decides.
   */
  readonly stopping?: (() => boolean) | undefined;
  /**
   * Told every accept failure that does not stop the loop (EMFILE, ENFILE, ENOBUFS, ENOMEM,
   * ECONNABORTED...), before the back-off. Should not throw: a throw ends the loop with it.
   */
  readonly onError?: ((error: unknown) => void) | undefined;
  /** First back-off after a failure (default 10); doubles per failure in a row. */
  readonly minBackoff?: number | undefined;
  /** Longest back-off (default 1000). */
  readonly maxBackoff?: number | undefined;
  /**
   * A connection limit (nginx's worker_connections): asked before every accept; null means
   * there is room, a promise means the limit is reached and the loop waits for it (settle it
   * when a connection closed) before asking again. Meanwhile nothing is accepted: new
   * connections wait in the kernel's listen backlog (beyond what the listener queued
   * already), so a full worker costs no descriptor and no memory per waiting client.
   */
  readonly whenFull?: (() => Promise<void> | null) | undefined;
}

/** Error codes that mean the listener is gone: the loop ends instead of retrying. */
function isListenerGone(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ECANCELED' || code === 'EBADF';
}

/**
 * Accepts connections from `listener` and calls `onStream(stream)` for each, one accept at a
 * time, until the listener is closed (accept fails with ECANCELED or EBADF) or
 * `options.stopping()` says so; resolves then. Any other failure goes to `options.onError` and
 * the loop waits before the next accept: `minBackoff` ms after the first failure, doubling per
 * failure in a row up to `maxBackoff`, and back to `minBackoff` after a success. A process out
 * of descriptors (EMFILE) therefore keeps serving the connections it has instead of spinning on
 * accept. Per connection the loop adds nothing to what the listener's accept() costs (with
 * `whenFull`, one call of it). A full worker (`whenFull` answers a promise) pauses accepting
 * until the promise settles.
 *
 * `onStream` runs synchronously between two accepts: start serving the stream there (without
 * awaiting it). A throw from it ends the loop (the promise rejects), like a throw from onError.
 * The back-off is a plain timer, not the runtime's sleep(): the loop works on any listener and
 * never creates a runtime of its own.
 */
export async function acceptLoop<S>(
  listener: AcceptSource<S>,
  onStream: (stream: S) => void,
  options: AcceptLoopOptions = {},
): Promise<void> {
  const stopping = options.stopping;
  const minBackoff = Math.max(1, options.minBackoff ?? 10);
  const maxBackoff = Math.max(minBackoff, options.maxBackoff ?? 1000);
  const whenFull = options.whenFull;
  let backoff = minBackoff;
  while (stopping === undefined || !stopping()) {
    if (whenFull !== undefined) {
      const room = whenFull();
      if (room !== null) {
        await room;
        continue;
      }
    }
    let stream: S;
    try {
      stream = await listener.accept();
    } catch (error) {
      if (isListenerGone(error) || stopping?.() === true) return;
      options.onError?.(error);
      await new Promise((resolve) => setTimeout(resolve, backoff));
      backoff = Math.min(maxBackoff, backoff * 2);
      continue;
    }
    backoff = minBackoff;
    onStream(stream);
  }
}
