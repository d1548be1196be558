/**
 * Reads whole Thrift frames from a byte stream: buffers received chunks (releasing each pooled
 * chunk at once, or with feedChunk() keeping one whose whole frames are returned in place),
 * detects the framing on the first bytes unless configured, splits frames by
 * length or, unframed, by skipping the message, and decodes the framing header. Payload views
 * stay valid after later reads: bytes are never overwritten in place, a full buffer is
 * replaced by a new one, until the owner says with recycle() that no frame it got is used any
 * more; then the next bytes go to the same memory (a proxy relaying every call through new
 * buffers allocates as many bytes as it relays, and V8 answers that external memory with
 * major GCs: half the CPU of 10 KiB calls). Receive timeouts are deadline numbers on one sweep per thread
 * (../internal/deadlines.ts), not a timer per receive; a timeout closes the stream. Not for
 * writing: replies are framed with frameParts().
 */
import { NO_DEADLINE, type SweepMember } from '@loch/uring-runtime';
import { ThriftProtocolError, ThriftRpcError, ThriftTransportError } from '../errors.js';
import { deadlines } from '../internal/deadlines.js';
import { decodeFrame, decodeFrameBody, type FrameCodecOptions, FrameSplitter } from '../transport/codec.js';
import { detectFraming, type FramingName, type ViewFrame } from '../transport/frame.js';
import type { ThriftRecvChunk, ThriftStream } from './stream.js';

/** Options of a FrameReader. */
export interface FrameReaderOptions extends FrameCodecOptions {
  /** Framing of the stream, or 'auto' (default) to detect it from the first message. */
  readonly framing?: FramingName | 'auto';
  /**
   * With 'auto': the framings accepted (default: all four). Another one is refused as soon as
   * its first bytes are read (ERR_THRIFT_FRAMING_REFUSED), before the message is buffered: a
   * proxy that cannot delimit unframed binary cheaply refuses it this way.
   */
  readonly framings?: readonly FramingName[];
  /**
   * Milliseconds to wait for the first byte of a message (0 = forever, the default). Checked by
   * the thread's coarse deadline sweep (fires up to two ticks, at most 2 s, late); on expiry the
   * stream is closed and next() throws ERR_THRIFT_TIMEOUT.
   */
  readonly idleTimeout?: number;
  /** Milliseconds to wait for the rest of a started message (0 = forever, the default); as idleTimeout. */
  readonly readTimeout?: number;
}

const MIN_BUFFER = 64 * 1024;
/**
 * The fewest bytes a length-prefixed frame has: its 4-byte prefix and a payload of at least one
 * byte (a zero length is ERR_THRIFT_FRAME_SIZE). The receive low-water mark at a frame boundary.
 */
export const MIN_FRAME_BYTES = 5;
const EMPTY = new Uint8Array(0);
/** A length prefix written back before a held frame body that goes to the buffer (spill). */
const PREFIX = new Uint8Array(4);

/**
 * A chunk held by a FrameReader (feedChunk) whose frames its owner keeps one by one
 * (FrameReader.retainLast): the chunk goes back to the runtime once the reader is done with it
 * and every retained frame of it was released. One release() per retainLast() that returned it.
 */
export class RetainedChunk {
  /** References: the reader's own while it holds the chunk, and one per retained frame. */
  #refs = 1;
  constructor(private readonly chunk: ThriftRecvChunk) {}

  /** @internal One more retained frame. */
  retain(): this {
    this.#refs++;
    return this;
  }

  /** A retained frame (or the reader) no longer uses the chunk's bytes. */
  release(): void {
    if (this.#refs <= 0) return;
    if (--this.#refs === 0) this.chunk.release();
  }

  /**
   * The framed frame whose length prefix starts at `bytes[at]` of this chunk, `length` bytes in
   * all (ThriftFrame.wireLength), as it came on the wire: one view of its prefix and payload.
   * `at` is where the reader found the frame (FrameReader.lastWireAt, read right after the
   * poll() that returned it), so nothing is checked against a payload view: reading a view's
   * byteOffset and buffer calls a builtin each (four per relayed frame, ~1,500 instructions per
   * call, bench/thrift/readings-2026-12-06b.md). The chunk's own bytes when the frame is all of
   * them. Undefined once every reference was released.
   * Valid while the frame is retained. Writing it sends exactly what frameParts() would.
   */
  wire(at: number, length: number): Uint8Array | undefined {
    if (this.#refs <= 0) return undefined;
    const bytes = this.chunk.bytes;
    // A chunk that is exactly the frame (a 10 KiB call or reply received whole) is its own
    // wire: no view made (a subarray is ~350 instructions).
    if (at === 0 && length === bytes.length) return bytes;
    return bytes.subarray(at, at + length);
  }
}

/** Pulls frames out of a stream, one `next()` at a time. */
export class FrameReader implements SweepMember {
  /** @internal The deadline sweep's field (SweepMember.sweepSlot): declared, arming keeps the shape. */
  sweepSlot = -1;
  /** The framing in use (null until detected). */
  framing: FramingName | null;
  private buf = new Uint8Array(0);
  private start = 0;
  private end = 0;
  private readonly splitter: FrameSplitter;
  private readonly options: FrameReaderOptions;
  /** The armed receive deadline on the sweep's clock (NO_DEADLINE: none), and its length. */
  private deadlineAt = NO_DEADLINE;
  private deadlineMs = 0;
  /** A receive deadline passed: the stream was closed and next() throws ERR_THRIFT_TIMEOUT. */
  private expired = false;
  /** A frame returned from the current buffer is still in use: recycle() leaves it alone. */
  private pinned = false;
  /**
   * A received chunk whose frames are returned in place (feedChunk), without copying them into
   * the buffer: held (not released) until recycle() or dispose(). Its bytes come before the
   * buffer's: it is taken only while the buffer holds nothing.
   */
  private held: ThriftRecvChunk | null = null;
  /** The held chunk's bytes, and the first of them not yet returned as a frame. */
  private heldBytes: Uint8Array = EMPTY;
  private heldStart = 0;
  /** Where the held chunk's own frames start (after the rest of a frame begun in the buffer). */
  private heldFrom = 0;
  /** A frame in the held chunk was pinned (pin()): only dispose() gives it back. */
  private heldPinned = false;
  /**
   * The held chunk's frames are retained by the owner (retainLast()): the reader lets go of it
   * as soon as no byte of it is left to return, and recycle() leaves it alone.
   */
  private heldShare: RetainedChunk | null = null;
  /** The frame poll() returned last is a view of the held chunk (retainLast() may keep it). */
  private lastHeld = false;
  /**
   * Where the framed frame poll() returned last starts in the held chunk's bytes (its length
   * prefix), when it came whole, prefix and payload, in that chunk: for RetainedChunk.wire()
   * after retainLast(). -1 otherwise (another framing, a frame of the buffer, a body whose
   * prefix came in the chunk before). Valid until the next poll().
   */
  lastWireAt = -1;
  /**
   * The held chunk starts (at heldStart) with the body of a frame whose length prefix came in
   * the chunk before and was taken out of the buffer: the body's length (0: none).
   */
  private heldBody = 0;

  constructor(
    private readonly stream: ThriftStream,
    options: FrameReaderOptions = {},
  ) {
    this.options = options;
    this.framing = options.framing === undefined || options.framing === 'auto' ? null : options.framing;
    this.splitter = new FrameSplitter(options);
  }

  /** Bytes received but not yet returned as a frame. */
  get buffered(): number {
    return this.end - this.start + (this.heldBytes.length - this.heldStart);
  }

  /**
   * The next frame, or null when the stream ends cleanly between messages. Throws
   * ThriftTransportError/ThriftProtocolError on bad bytes, ERR_THRIFT_TRUNCATED when the stream
   * ends inside a message, and ThriftRpcError ERR_THRIFT_TIMEOUT when a timeout passes.
   */
  async next(): Promise<ViewFrame | null> {
    for (;;) {
      const frame = this.tryFrame();
      if (frame) return frame;
      // The receive is inline rather than a helper awaited here: one async frame per receive.
      const ms = this.end > this.start ? (this.options.readTimeout ?? 0) : (this.options.idleTimeout ?? 0);
      if (ms > 0) {
        // A deadline number on the thread's sweep, not a timer and a Promise.race per receive:
        // the server arms one on every receive. Expiry closes the stream (see onSweep).
        this.deadlineMs = ms;
        deadlines.deadline(this, ms);
        // Measured from a fresh clock, not the sweep's coarse one: when a shorter deadline
        // shortens a running sweep's tick, its coarse clock can be a whole old tick stale, and a
        // deadline armed against it would fire early.
        this.deadlineAt = performance.now() + ms;
      }
      let chunk: ThriftRecvChunk | null;
      try {
        chunk = await this.stream.recv();
      } catch (error) {
        this.deadlineAt = NO_DEADLINE;
        throw this.expired ? this.timeoutError(error) : error;
      }
      this.deadlineAt = NO_DEADLINE;
      if (this.expired) {
        chunk?.release();
        throw this.timeoutError(undefined);
      }
      if (chunk === null) {
        const truncated = this.truncation();
        if (truncated !== null) throw truncated;
        return null;
      }
      try {
        this.append(chunk.bytes);
      } finally {
        chunk.release();
      }
    }
  }

  /**
   * The synchronous form, for an owner that receives the stream's chunks itself (a relay driven
   * by the runtime's recvTo/writeTo callbacks, with no promise per read): feed() takes received
   * bytes (copied, so the chunk can be released at once), poll() returns the next whole frame
   * among them or null when more are needed (throwing on bad bytes as next() does). Not mixed
   * with next() on one reader.
   */
  feed(bytes: Uint8Array): void {
    this.spill();
    this.append(bytes);
  }

  /**
   * feed() without the copy when it can: a chunk received while nothing is buffered is kept as
   * it is, and the whole frames at its start are returned as views of it (with 64 connections a
   * 10 KiB copy into a reader's buffer costs several us, its destination cold in cache: loch's
   * thrift relay reading its replies this way went from 51.6 to 43.0 us of CPU per 10 KiB call
   * in process, user 24.7 -> 18.2). Its bytes past the last whole frame are copied into the
   * buffer at the next poll() (a frame split across chunks is assembled there as before). The
   * chunk is released by recycle() (the owner says no frame it got is used any more), or by
   * dispose(); otherwise as feed(), and the chunk is released at once. An owner that keeps
   * each frame on its own (a server whose calls end one by one) retains them (retainLast()).
   */
  feedChunk(chunk: ThriftRecvChunk): void {
    if (this.held === null) {
      if (this.end === this.start) {
        this.hold(chunk, 0);
        return;
      }
      // A frame begun in the buffer that this chunk completes with bytes to spare: only its
      // rest is copied and the chunk is kept for what follows (replies a multiplexed upstream
      // wrote back to back, pipelined calls: else every chunk after a split one is copied).
      const rest = this.bufferedFrameRest();
      if (rest > 0 && rest <= chunk.bytes.length && this.end - this.start === 4 && this.prefixAccepted()) {
        // Only the frame's length prefix is buffered and this chunk holds the rest: Apache Go's
        // framed and THeader transports write the prefix with a write of its own, so a reader
        // whose receive is armed often gets the 4 bytes alone. The frame is decoded where its
        // body lies, a view of the chunk (the prefix leaves the buffer), not copied after it.
        this.start = this.end;
        this.hold(chunk, 0);
        this.heldBody = rest;
        return;
      }
      if (rest > 0 && rest < chunk.bytes.length) {
        this.append(chunk.bytes.subarray(0, rest));
        this.hold(chunk, rest);
        return;
      }
    }
    // Bytes of the held chunk not yet returned come first: they move to the buffer before these.
    this.spill();
    try {
      this.append(chunk.bytes);
    } finally {
      chunk.release();
    }
  }

  private hold(chunk: ThriftRecvChunk, from: number): void {
    this.held = chunk;
    this.heldBytes = chunk.bytes;
    this.heldStart = from;
    this.heldFrom = from;
  }

  /**
   * Bytes still missing of the one frame begun in the buffer, from its length prefix (framed,
   * THeader and TTHeader frames all start with one); 0 when not known (unframed, fewer than 4
   * bytes, or a whole frame already there). A prefix that lies only changes what is copied:
   * the splitter still validates it.
   */
  private bufferedFrameRest(): number {
    const framing = this.framing;
    if (framing === null || framing === 'unframed') return 0;
    const at = this.start;
    const have = this.end - at;
    if (have < 4) return 0;
    const b = this.buf;
    const total = ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) + 4;
    return total > have ? total - have : 0;
  }

  /** The buffered length prefix passes the splitter's checks (a bad one fails at poll(), as ever). */
  private prefixAccepted(): boolean {
    try {
      this.splitter.find(this.framing!, this.buf, this.start, this.end);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * The largest receive low-water mark (SO_RCVLOWAT, at most MIN_FRAME_BYTES) that cannot hold
   * back a byte this reader waits for: MIN_FRAME_BYTES with nothing buffered (every frame is at
   * least that long), the bytes still missing of the first incomplete frame when they are fewer
   * (a frame's last 1-4 bytes must wake the receive), and 1, the kernel's default, where the
   * stream is not known to be length-prefixed (unframed, or not yet detected while unframed is
   * accepted: its message bounds are found by skipping, not read from a prefix). Walks the
   * buffered frames' prefixes only when something is buffered: nothing in the usual case, a call
   * or reply received whole. RecvLowWater is its user.
   */
  recvLowWater(): number {
    const framing = this.framing;
    if (framing === 'unframed') return 1;
    if (framing === null) {
      const accepted = this.options.framings;
      if (accepted === undefined || accepted.includes('unframed')) return 1;
    }
    const prefix = this.heldBody > 0 ? 4 : 0;
    const have = this.end - this.start + prefix + (this.heldBytes.length - this.heldStart);
    if (have === 0) return MIN_FRAME_BYTES;
    let at = 0;
    while (have - at >= 4) {
      const size =
        ((this.byteAt(at, prefix) << 24) |
          (this.byteAt(at + 1, prefix) << 16) |
          (this.byteAt(at + 2, prefix) << 8) |
          this.byteAt(at + 3, prefix)) +
        4;
      // A bad prefix fails at poll(); until then nothing is held back.
      if (size <= 4) return 1;
      if (at + size > have) return Math.min(MIN_FRAME_BYTES, at + size - have);
      at += size;
    }
    // 0-3 bytes of a prefix: the frame has at least MIN_FRAME_BYTES.
    return MIN_FRAME_BYTES - (have - at);
  }

  /**
   * Byte `i` of what is buffered, in the order poll() reads it: the buffer, then the length prefix
   * of a held body (`prefix` 4, written back by spill()), then the held chunk's bytes.
   */
  private byteAt(i: number, prefix: number): number {
    const inBuf = this.end - this.start;
    if (i < inBuf) return this.buf[this.start + i]!;
    i -= inBuf;
    if (i < prefix) return (this.heldBody >>> (24 - 8 * i)) & 0xff;
    return this.heldBytes[this.heldStart + i - prefix]!;
  }

  /** See feed(). */
  poll(): ViewFrame | null {
    return this.tryFrame();
  }

  /**
   * Keeps the frame poll() just returned valid until the returned reference is released,
   * whatever the reader does meanwhile (recycle(), dispose(), later chunks): for a frame that
   * is a view of a chunk held by feedChunk(). That chunk then goes back to the runtime once the
   * reader has no byte of it left to return (its last frame retained, or the rest copied into
   * the buffer for a frame that continues in the next chunk) and every retained frame of it was
   * released: not at recycle(). null for a frame in the reader's own buffer (recycle() and
   * pin() govern those). Call it right after poll(), for every frame of a chunk or none: the
   * reader stops counting on recycle() for a chunk once one of its frames was retained.
   */
  retainLast(): RetainedChunk | null {
    if (!this.lastHeld) return null;
    this.lastHeld = false;
    let share = this.heldShare;
    if (share === null) share = this.heldShare = new RetainedChunk(this.held!);
    share.retain();
    // Nothing of the chunk left to return: the retained frames alone keep it.
    if (this.heldStart >= this.heldBytes.length) this.releaseHeld();
    return share;
  }

  /**
   * What the stream's end means now: ERR_THRIFT_TRUNCATED when it came inside a message, null
   * between messages.
   */
  truncation(): ThriftProtocolError | null {
    if (this.buffered === 0) return null;
    return new ThriftProtocolError(
      'ERR_THRIFT_TRUNCATED',
      `stream ended inside a message (${this.buffered} bytes)`,
    );
  }

  /**
   * Declares that no frame returned so far is used any more (its payload, and anything viewing
   * it, is never read again and no write of it is pending): later bytes may overwrite theirs.
   * Bytes of the next frame already received are kept, moved to the front of the buffer.
   * Does nothing while the buffer is pinned.
   */
  recycle(): void {
    if (this.pinned) return;
    // A chunk whose frames are retained is not the reader's to recycle: it goes with them.
    if (this.held !== null && !this.heldPinned && this.heldShare === null) {
      this.spill();
      this.releaseHeld();
    }
    const start = this.start;
    if (start === 0) return;
    const live = this.end - start;
    if (live > 0) this.buf.copyWithin(0, start, this.end);
    this.start = 0;
    this.end = live;
  }

  /**
   * Declares that a frame returned so far stays in use for as long as anything references it:
   * recycle() leaves the memory it lives in alone, and the next bytes go to new memory once the
   * buffer is full (a frame whose owner never gives it back).
   */
  pin(): void {
    this.pinned = true;
    // A held chunk no frame was returned from has nothing to pin; retained frames keep theirs.
    if (this.held !== null && this.heldStart > this.heldFrom && this.heldShare === null)
      this.heldPinned = true;
  }

  /**
   * Gives back the chunk held by feedChunk(), pinned or not: for an owner that is done with the
   * reader (its stream closed) and knows no write of a frame it got is still pending (retained
   * frames keep their chunk until they are released).
   */
  dispose(): void {
    this.releaseHeld();
  }

  /** The held chunk's bytes not yet returned as frames are copied into the buffer. */
  private spill(): void {
    const bytes = this.heldBytes;
    if (this.heldStart >= bytes.length) return;
    const body = this.heldBody;
    if (body > 0) {
      // The frame's prefix, taken out of the buffer, goes back before its body.
      this.heldBody = 0;
      PREFIX[0] = body >>> 24;
      PREFIX[1] = body >>> 16;
      PREFIX[2] = body >>> 8;
      PREFIX[3] = body;
      this.append(PREFIX);
    }
    const rest = bytes.subarray(this.heldStart);
    if (this.heldStart === this.heldFrom && this.held !== null && !this.heldPinned) {
      // No frame was returned from it: nothing views it, it goes back now.
      this.append(rest);
      this.releaseHeld();
      return;
    }
    this.heldStart = bytes.length;
    this.append(rest);
    // Retained frames keep the chunk; the reader has nothing left in it.
    if (this.heldShare !== null) this.releaseHeld();
  }

  /** The reader lets go of the held chunk (retained frames, if any, still keep it). */
  private releaseHeld(): void {
    const chunk = this.held;
    const share = this.heldShare;
    this.held = null;
    this.heldBytes = EMPTY;
    this.heldStart = 0;
    this.heldFrom = 0;
    this.heldPinned = false;
    this.heldShare = null;
    this.lastHeld = false;
    this.heldBody = 0;
    if (share !== null) share.release();
    else chunk?.release();
  }

  private tryFrame(): ViewFrame | null {
    this.lastHeld = false;
    this.lastWireAt = -1;
    const heldLeft = this.heldStart < this.heldBytes.length;
    if (this.end > this.start) {
      // Buffered bytes come before a held chunk's (a frame completed from the chunk's start).
      const frame = this.bufferFrame();
      if (frame !== null || !heldLeft) return frame;
      // The buffer's frame wants more than its length prefix said: the held bytes follow it.
      this.spill();
      return this.bufferFrame();
    }
    if (!heldLeft) return null;
    const frame = this.heldFrame();
    if (frame !== null) {
      this.lastHeld = true;
      return frame;
    }
    // Not a whole frame: the rest is assembled in the buffer (empty until now).
    this.spill();
    return this.bufferFrame();
  }

  /** The next whole frame of the reader's buffer, or null. */
  private bufferFrame(): ViewFrame | null {
    if (this.end === this.start) return null;
    if (!this.detect(this.buf, this.start, this.end)) return null;
    const stop = this.splitter.find(this.framing!, this.buf, this.start, this.end);
    if (stop < 0) return null;
    const frame = this.decodeWhole(this.buf, this.start, stop);
    this.start = stop;
    return frame;
  }

  /** The next whole frame of the held chunk, as a view of it, or null. */
  private heldFrame(): ViewFrame | null {
    const bytes = this.heldBytes;
    const at = this.heldStart;
    const n = this.heldBody;
    if (n > 0) {
      // A frame body whose prefix came before (feedChunk): whole in the chunk.
      const frame = decodeFrameBody(this.framing!, bytes, at, at + n, this.options);
      this.heldBody = 0;
      this.heldStart = at + n;
      return frame;
    }
    const end = bytes.length;
    if (!this.detect(bytes, at, end)) return null;
    const stop = this.splitter.find(this.framing!, bytes, at, end);
    if (stop < 0) return null;
    const frame = this.decodeWhole(bytes, at, stop);
    this.heldStart = stop;
    if (this.framing === 'framed') this.lastWireAt = at;
    return frame;
  }

  /**
   * The whole frame `bytes[start, stop)`, decoded where it lies: a length-prefixed one from its
   * body on (decodeFrameBody), not from a view of the frame made first (a typed array per frame
   * that nothing kept: two per relayed call, bench/thrift/per-call.ts).
   */
  private decodeWhole(bytes: Uint8Array, start: number, stop: number): ViewFrame {
    const framing = this.framing!;
    if (framing === 'unframed') return decodeFrame(framing, bytes.subarray(start, stop), this.options);
    return decodeFrameBody(framing, bytes, start + 4, stop, this.options);
  }

  /** Detects the framing from bytes[start, end) unless known; false when more bytes are needed. */
  private detect(bytes: Uint8Array, start: number, end: number): boolean {
    if (this.framing === null) {
      const detected = detectFraming(bytes, start, end);
      if (detected === null) return false;
      const accepted = this.options.framings;
      if (accepted !== undefined && !accepted.includes(detected.framing)) {
        throw new ThriftTransportError(
          'ERR_THRIFT_FRAMING_REFUSED',
          `${detected.framing === 'unframed' ? `unframed ${detected.protocol}` : detected.framing} is not accepted here (accepted: ${accepted.join(', ')})`,
        );
      }
      this.framing = detected.framing;
    }
    return true;
  }

  /**
   * The sweep's call: a receive whose deadline passed is ended by closing the stream (the only
   * way to end a pending receive; a server closes a timed-out connection anyway), and next()
   * throws ERR_THRIFT_TIMEOUT. Returns whether a deadline is still armed.
   */
  onSweep(now: number): boolean {
    if (this.deadlineAt > now) return this.deadlineAt !== NO_DEADLINE;
    this.deadlineAt = NO_DEADLINE;
    this.expired = true;
    void this.stream.close().catch(() => {});
    return false;
  }

  private timeoutError(cause: unknown): ThriftRpcError {
    const ms = this.deadlineMs;
    return new ThriftRpcError(
      'ERR_THRIFT_TIMEOUT',
      this.end > this.start ? `message not complete after ${ms} ms` : `no message for ${ms} ms`,
      cause === undefined ? undefined : { cause },
    );
  }

  private append(bytes: Uint8Array): void {
    const n = bytes.length;
    if (this.buf.length - this.end < n) {
      // Never move bytes inside the old buffer: frames already returned may still view it.
      const live = this.end - this.start;
      const next = new Uint8Array(Math.max(MIN_BUFFER, (live + n) * 2));
      next.set(this.buf.subarray(this.start, this.end));
      this.buf = next;
      this.pinned = false;
      this.start = 0;
      this.end = live;
    }
    this.buf.set(bytes, this.end);
    this.end += n;
  }
}
