/**
 * One HTTP/2 stream of a server session (RFC 9113 §5.1): its state, both flow-control windows,
 * the request body it feeds, and its deadline (a body read waiting for DATA, or a response
 * stalled on a closed send window). Idle streams have no object (the session knows them by id
 * above the last one opened); a stream leaves the session's table once both sides are closed
 * and its handler returned, so a reset stream keeps counting against the concurrency limit
 * until its handler is done (MadeYouReset, CVE-2025-8671).
 *
 * Not for frames or HPACK: the session reads and writes; the stream holds what it must remember.
 */

import type { HttpServerRequest } from '../message.js';
import type { ReceiveWindow } from './flow-control.js';
import type { H2BodyOwner, H2RequestBody } from './request-body.js';

/** What a stream asks of its session. */
export interface H2StreamHost {
  /** The handler consumed `n` octets of `stream`'s body. */
  streamBodyConsumed(stream: H2ServerStream, n: number): void;
  /** The handler waits for body data (true) or got it (false). */
  streamBodyWait(stream: H2ServerStream, waiting: boolean): void;
  /** The handler stopped reading the body early, dropping `buffered` octets. */
  streamBodyAbandoned(stream: H2ServerStream, buffered: number): void;
}

/** The deadline a stream has armed. */
export const StreamWait = {
  None: 0,
  /** Its handler waits for request body data (the server's `body` timeout). */
  Body: 1,
  /** Its response waits for the peer's window (the `write` timeout). */
  Window: 2,
} as const;
export type StreamWait = (typeof StreamWait)[keyof typeof StreamWait];

/** One stream; see the module comment. */
export class H2ServerStream implements H2BodyOwner {
  /** END_STREAM (or a reset) received: the peer sends nothing more. */
  remoteClosed = false;
  /** END_STREAM (or a reset) sent: we send nothing more. */
  localClosed = false;
  /** Reset by either side: what still arrives is discarded. */
  reset = false;
  /**
   * The response body's iterator while the session waits for its next step: a reset returns it
   * at once, so its source (an upstream stream or connection) is let go of now, not when it
   * next produces a chunk or times out.
   */
  pendingBody: AsyncIterator<Uint8Array> | null = null;
  /** The handler runs or its response is being written. */
  active = true;
  /** The response's HEADERS went out. */
  headersSent = false;
  /** The response body's bytes taken from it so far (HttpServerOptions.onBodyEnd). */
  bodyBytes = 0;
  /**
   * The request while its handler works on the answer, set only when the server has an
   * onAbandoned hook: a reset meanwhile tells the hook about it.
   */
  awaiting: HttpServerRequest<unknown> | null = null;
  /** The peer's window for our DATA on this stream (may be negative after SETTINGS). */
  sendWindow: number;
  /**
   * Our window for the peer's DATA, or null for a request that ended with its HEADERS (a GET):
   * no DATA may come on it (the session resets a stream whose peer is done), so most streams
   * never need one.
   */
  readonly recv: ReceiveWindow | null;
  /** The request body, when the request has one. */
  body: H2RequestBody | null = null;
  /** The request's content-length, or -1. */
  contentLength = -1;
  /** When its wait expires (the server's clock, ms), and which wait. */
  deadline = Number.POSITIVE_INFINITY;
  wait: StreamWait = StreamWait.None;
  /** Settlers of the response writer waiting for the send window. */
  windowResolve: (() => void) | null = null;
  windowReject: ((e: unknown) => void) | null = null;

  constructor(
    private readonly host: H2StreamHost,
    /** The stream id (odd: client-initiated). */
    readonly id: number,
    sendWindow: number,
    /** Null when the request ended with its HEADERS. */
    recv: ReceiveWindow | null,
  ) {
    this.sendWindow = sendWindow;
    this.recv = recv;
  }

  /** Both sides are closed. */
  get closed(): boolean {
    return this.remoteClosed && this.localClosed;
  }

  /** Wakes a response writer waiting for the send window (it re-checks); `error` fails it. */
  wake(error: unknown = undefined): void {
    const resolve = this.windowResolve;
    const reject = this.windowReject;
    if (resolve === null) return;
    this.windowResolve = null;
    this.windowReject = null;
    if (error === undefined) resolve();
    else reject!(error);
  }

  onBodyConsumed(n: number): void {
    this.host.streamBodyConsumed(this, n);
  }

  onBodyWait(waiting: boolean): void {
    this.host.streamBodyWait(this, waiting);
  }

  onBodyAbandoned(buffered: number): void {
    this.host.streamBodyAbandoned(this, buffered);
  }
}
