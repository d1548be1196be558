/**
 * The output side of an HTTP/2 server connection: frames are written back to back into one
 * arena buffer (or queued as made elsewhere: our SETTINGS, GOAWAY) and go out together, one
 * writeTo per flush: after each received chunk is handled, or at the next microtask for frames
 * a handler's answer produced. Counts what is queued and in flight so the session can bound
 * its output (stop reading a client that does not read, hold response bodies), and wakes the
 * body writers waiting for the output to drain.
 *
 * The arena is reused from its start once nothing queued or in flight refers to it (the usual
 * case between responses), and a frame that does not fit takes the small frames before it that
 * are not queued yet into the next arena: a response's HEADERS and DATA stay one piece of the
 * write. Over TLS that is one record instead of two (the engine encrypts a piece above 4 KiB as
 * a record of its own, so a HEADERS frame left at the end of a full arena was a 60-byte record),
 * and no buffer is allocated per response.
 *
 * Arenas are taken from a pool of this thread's (arena-pool.ts) and given back once no write
 * can read them: an arena replaced while a write was in flight or frames were queued goes back
 * when the write that carried its last frames ended, and an idle connection (nothing queued,
 * nothing in flight) gives back the one it holds. At h2load -c16 -m16 a connection always has a
 * write in flight, so every response used to start a new 16 KiB arena (a zeroed allocation, and
 * page faults when malloc handed back fresh pages); and an idle connection kept its arena.
 *
 * On a plain connection (h2c) a large DATA payload is not copied: the response writer lends the
 * body's chunk (`lend()`, a view of the upstream's receive buffer for a proxied answer) and only
 * its 9-byte frame header goes into the arena; the writer takes the body's next step once
 * `written()` says no write reads the view any more (a chunk is valid only until then, the body
 * contract the HTTP/1.1 writer keeps too). Copying a 165,854 B answer into arenas took ~5 of
 * them, more than the pool holds with 64 such answers in flight, and the new arrays' external
 * memory brought major collections. Over TLS the payloads are still copied: OpenSSL's record
 * layer seals a lone 9-byte header before a 16 KiB view as a record of its own. So they are on
 * the legacy driver: node:net takes each piece of a write with a socket.write() of its own (two
 * per frame when lent), which cost more than the copy (h2load -c64 -m1, 165,854 B: task-clock
 * per request 208/253 us copied, 257/310 lent), and its writes leave arenas soon enough for the
 * pool (no major collection in those runs).
 *
 * Not for deciding what to send (server-session.ts) nor for the write's outcome: the session is
 * the stream's WriteTarget and calls `writeEnded()` and `flushPending()` from it.
 */

import type { HttpStream, StreamWriteTarget } from '../transport.js';
import { ARENA_SIZE, giveArena, NO_ARENA, takeArena } from './arena-pool.js';
import { FRAME_HEADER_LENGTH, writeRstStream, writeWindowUpdate } from './frames.js';

/**
 * Schedules a flush through a settled promise rather than queueMicrotask(): the same checkpoint,
 * but Node's queueMicrotask makes an AsyncResource and a bound function per call (the runtime's
 * delivery queue measured ~300 bytes), a then() only its reaction and derived promise. An answer
 * that comes from an upstream (outside a received chunk's handling) schedules one per response
 * when no write is in flight (h2load -c64 -m1: every response).
 */
const SETTLED = Promise.resolve();

/**
 * Frames not yet queued, up to this many octets, move into the next arena with the frame that
 * did not fit (see the module comment); more is a piece the TLS engine gives a full record anyway.
 */
const CARRY_MAX = 4 * 1024;

/** What the output needs from its session. */
export interface H2OutputHost extends StreamWriteTarget {
  /** A write goes out now: arm the write deadline. */
  writeStarted(): void;
  /** The stream refused the write at once: the connection ends with `error`. */
  writeRefused(error: unknown): void;
}

/** The frames queued for one connection and the write in flight; see the module comment. */
export class H2FrameOutput {
  /**
   * The buffer frames are written into: read it after `reserve()` (a full one is replaced). An
   * idle connection holds none (NO_ARENA, empty) until its next frame.
   */
  arena: Uint8Array = NO_ARENA;
  /** Arenas replaced since the last flush: the next write carries their last frames. */
  private retired: Uint8Array[] = [];
  /** Arenas the write in flight carries the last frames of: free once it ended. */
  private writingArenas: Uint8Array[] = [];
  private arenaStart = 0;
  private arenaPos = 0;
  /** Where the run of small frames (CARRY_MAX) ending at arenaPos begins: what makeRoom moves. */
  private smallFrom = 0;
  private out: Uint8Array[] = [];
  private outBytes = 0;
  /** A write is in flight. */
  writing = false;
  private writingBytes = 0;
  private flushQueued = false;
  private readonly flushTask = (): void => {
    this.flushQueued = false;
    this.flush();
  };
  /** Response writers waiting for the output to drain below the bound. */
  private drainWaiters: (() => void)[] = [];
  /**
   * Set while the session handles a received chunk: frames queued meanwhile go out in the one
   * flush that follows it, not at a microtask each.
   */
  inFeed = false;
  /** The connection closed: nothing more is queued or written. */
  private closed = false;
  /** Writers waiting for the frames queued so far (not yet in a write) to be written. */
  private queuedFence: (() => void)[] = [];
  /** Writers waiting for the write in flight to end. */
  private writingFence: (() => void)[] = [];
  /**
   * DATA payloads may be lent (`lend()`) rather than copied: a plain connection on io_uring. Over
   * TLS, and on the legacy driver, they are copied (see the module comment).
   */
  readonly lending: boolean;

  constructor(
    private readonly stream: HttpStream,
    private readonly host: H2OutputHost,
    /** Octets queued and in flight above which the output is over its bound. */
    readonly maxBytes: number,
  ) {
    this.lending = stream.facts?.secure !== true && stream.driver !== 'legacy';
  }

  /** Octets queued or in flight. */
  get pending(): number {
    return this.outBytes + this.writingBytes;
  }

  /** More than `maxBytes` are queued or in flight: producers wait, the session stops reading. */
  get overBound(): boolean {
    return this.outBytes + this.writingBytes > this.maxBytes;
  }

  /** Queues a frame made elsewhere (our SETTINGS, GOAWAY), after what the arena holds. */
  queue(frame: Uint8Array): void {
    if (this.closed) return;
    this.seal();
    this.out.push(frame);
    this.outBytes += frame.length;
    if (!this.inFeed) this.scheduleFlush();
  }

  /**
   * Room for a frame of `n` octets in the output arena; returns its offset in `this.arena`.
   * Write the frame at once: read the field after the call (a full arena is replaced), and an
   * offset holds only until the next reserve (frames not yet queued may move, see makeRoom).
   * Frames are written back to back into one buffer, so the usual flush is one view of it; a
   * region once queued is never written again while a write may still read it, and a replaced
   * arena is left to the GC.
   */
  reserve(n: number): number {
    if (this.arenaPos + n > this.arena.length) this.makeRoom(n);
    const at = this.arenaPos;
    this.arenaPos = at + n;
    if (n > CARRY_MAX) this.smallFrom = at + n;
    this.outBytes += n;
    if (!this.inFeed) this.scheduleFlush();
    return at;
  }

  /**
   * Queues `view` as it is, after what the arena holds: a DATA payload lent by its body (its frame
   * header reserved just before it). The lender keeps the bytes unchanged until `written()`
   * settles; they are never copied.
   */
  lend(view: Uint8Array): void {
    if (this.closed) return;
    this.seal();
    this.out.push(view);
    this.outBytes += view.length;
    if (!this.inFeed) this.scheduleFlush();
  }

  /**
   * Settles once no write can read anything queued so far (lent views above all): the write that
   * carries it ended (completed or failed), or the connection closed before it was written. At
   * once when nothing is queued or in flight.
   */
  written(): Promise<void> {
    if (this.closed && !this.writing) return SETTLED;
    const unsent = !this.closed && (this.out.length > 0 || this.arenaPos > this.arenaStart);
    if (!unsent && !this.writing) return SETTLED;
    return new Promise<void>((resolve) => (unsent ? this.queuedFence : this.writingFence).push(resolve));
  }

  /** Queues RST_STREAM. */
  queueRst(streamId: number, code: number): void {
    const at = this.reserve(FRAME_HEADER_LENGTH + 4);
    writeRstStream(this.arena, at, streamId, code);
  }

  /** Queues WINDOW_UPDATE. */
  queueWindowUpdate(streamId: number, increment: number): void {
    const at = this.reserve(FRAME_HEADER_LENGTH + 4);
    writeWindowUpdate(this.arena, at, streamId, increment);
  }

  /**
   * A flush at the next microtask (none while a write is in flight: its end flushes; none while
   * a received chunk is handled: the flush after it does).
   */
  scheduleFlush(): void {
    if (this.flushQueued || this.writing || this.inFeed) return;
    this.flushQueued = true;
    void SETTLED.then(this.flushTask);
  }

  /** Writes everything queued in one writeTo (when none is in flight). */
  flush(): void {
    if (this.writing || this.closed) return;
    this.seal();
    if (this.out.length === 0) return;
    const bufs = this.out;
    this.out = [];
    // Every frame of a replaced arena was queued when it was replaced, so this write carries
    // the last of them (the lists swap: no array per write).
    const carried = this.retired;
    this.retired = this.writingArenas;
    this.writingArenas = carried;
    if (this.queuedFence.length > 0) {
      // The writers waiting for what was queued now wait for this write (the list of the last
      // write is empty: its end settled it).
      const fence = this.writingFence;
      this.writingFence = this.queuedFence;
      this.queuedFence = fence;
    }
    this.writingBytes = this.outBytes;
    this.outBytes = 0;
    this.writing = true;
    this.host.writeStarted();
    try {
      this.stream.writeTo(bufs.length === 1 ? bufs[0]! : bufs, this.host);
    } catch (e) {
      // A write that threw never reads its buffers: its waiters go on (the session ends).
      this.writing = false;
      if (this.writingFence.length > 0) settleAll(this.writingFence);
      this.host.writeRefused(e);
    }
  }

  /**
   * The write in flight ended (the session's WriteTarget calls this first); `ok`: it completed,
   * so the stream no longer reads its bytes. Only then do its arenas go back to the pool (a
   * failed write's connection ends, and its arenas are left to the GC).
   */
  writeEnded(ok: boolean): void {
    this.writing = false;
    this.writingBytes = 0;
    if (this.writingFence.length > 0) settleAll(this.writingFence);
    if (!ok || this.closed) {
      this.writingArenas.length = 0;
      return;
    }
    for (const arena of this.writingArenas) giveArena(arena);
    this.writingArenas.length = 0;
    // Nothing queued or unsent: no write can read any arena of this connection, so the one it
    // holds goes back too (an idle connection holds none; the next frame takes one again,
    // usually this same one).
    if (this.out.length === 0 && this.arenaPos === this.arenaStart) {
      for (const arena of this.retired) giveArena(arena);
      this.retired.length = 0;
      giveArena(this.arena);
      this.arena = NO_ARENA;
      this.arenaStart = 0;
      this.arenaPos = 0;
      this.smallFrom = 0;
    }
  }

  /**
   * After a write: what was queued meanwhile goes out, and once the output is within its bound
   * the writers waiting for it are woken; returns whether it is within its bound.
   */
  flushPending(): boolean {
    if (this.out.length > 0 || this.arenaPos > this.arenaStart) this.flush();
    if (this.overBound) return false;
    this.wakeDrained();
    return true;
  }

  /** A promise of the output draining below the bound. */
  drained(): Promise<void> {
    return new Promise<void>((resolve) => this.drainWaiters.push(resolve));
  }

  /** Wakes the writers waiting for the output to drain (also when the connection ends). */
  wakeDrained(): void {
    if (this.drainWaiters.length === 0) return;
    const w = this.drainWaiters;
    this.drainWaiters = [];
    for (const f of w) f();
  }

  /** The connection closed: what is queued is dropped, nothing more is written. */
  discard(): void {
    this.closed = true;
    this.out = [];
    this.outBytes = 0;
    this.arenaStart = this.arenaPos;
    // A write may still read them: never pooled again, left to the GC.
    this.retired.length = 0;
    // What was queued is never written: its lenders may go on (those of the write in flight
    // wait for its end).
    if (this.queuedFence.length > 0) settleAll(this.queuedFence);
  }

  /**
   * Room for `n` more octets after the arena's last small frames not queued yet, which move
   * along (at most CARRY_MAX octets; the unqueued frames before them are queued here): from the
   * arena's start when nothing queued or in flight refers to it, else in a new arena. A region
   * once queued is never written again.
   */
  private makeRoom(n: number): void {
    let from = Math.max(this.arenaStart, this.smallFrom);
    if (this.arenaPos - from > CARRY_MAX) from = this.arenaPos;
    if (from > this.arenaStart) {
      this.out.push(this.arena.subarray(this.arenaStart, from));
      this.arenaStart = from;
    }
    const tail = this.arenaPos - from;
    const arena = this.arena;
    if (!this.writing && this.out.length === 0 && tail + n <= arena.length) {
      arena.copyWithin(0, from, this.arenaPos);
    } else {
      // A frame larger than a pooled arena gets one of its own size, never pooled.
      this.arena = tail + n <= ARENA_SIZE ? takeArena() : new Uint8Array(tail + n);
      if (tail > 0) this.arena.set(arena.subarray(from, this.arenaPos));
      // Frames of the old arena may be queued or in flight: it goes back after the write that
      // carries them (flush), or when the connection is idle.
      if (arena !== NO_ARENA) this.retired.push(arena);
    }
    this.arenaStart = 0;
    this.arenaPos = tail;
    this.smallFrom = 0;
  }

  /** Moves the arena's unqueued frames to the output list. */
  private seal(): void {
    if (this.arenaPos > this.arenaStart) {
      this.out.push(this.arena.subarray(this.arenaStart, this.arenaPos));
      this.arenaStart = this.arenaPos;
    }
  }
}

/** Calls and empties a list of waiters (a promise's resolve each). */
function settleAll(waiters: (() => void)[]): void {
  const n = waiters.length;
  for (let i = 0; i < n; i++) waiters[i]!();
  waiters.length = 0;
}
