/**
 * Keeps a stream's receive low-water mark (SO_RCVLOWAT) at what its FrameReader allows, so that a
 * frame's 4-byte length prefix that arrives alone does not complete a receive of its own.
 *
 * Why: Apache Go's framed and THeader transports (and Kitex's) write a frame's length prefix with
 * a write of its own. A receive that is armed when those 4 bytes land completes with them alone:
 * one more completion and reader pass per frame, and a relay then sends the frame as two parts
 * (bench/thrift/readings-2026-12-07g.md: 0.16-0.95 a 10 KiB call). With the mark at 5 (no frame
 * is shorter) the kernel wakes the receive only once the body joined the prefix. The mark must
 * never hold back the last bytes of a frame, so while a frame is incomplete and fewer than 5 of
 * its bytes are missing it is lowered to that count (FrameReader.recvLowWater), and raised again
 * once the frame completed. Nothing is buffered at a frame boundary in the usual case, so a
 * connection sets it once (5), not per call. A peer's end wakes a receive whatever the mark.
 *
 * What it is worth (REVIEW F234, bench/thrift/readings-2026-12-07l.md): held, 8 rotated rounds, loch's
 * CPU a 10 KiB call with the mark over the same tree with it never set: median 0.897 (7 of 8 under);
 * at 32 B (prefix and body arrive together) 1.00. Where it goes (REVIEW F241, readings-2026-12-07m.md,
 * 3 more held rounds, 0.834): mostly system time (54% and 79% of the two rounds that saved; the
 * third saved nothing), the rest user time; traced
 * while the loop sleeps about once an arrival, 0.48 frames a call had their prefix received alone
 * without the mark (a receive through task work, and the frame sent as a two-part SENDMSG).
 *
 * What the mark costs (REVIEW F227, F228): 1-4 bytes that arrive at a frame boundary and nothing
 * after them are not seen until more come, or until the mark is lowered (lower()). A server
 * connection looks for them while idle (ServerConnection's #lookForHiddenBytes: every read
 * timeout and at the idle deadline), so a peer that sends a frame's first 1-4 bytes and stops is
 * on the message (read) timeout, not held to the idle one. An upstream connection with no call
 * (the proxy's pooled and multiplexed ones) lowers it once idle for 100 ms (IDLE_LOOK_MS in
 * apps/proxy's thrift/deadlines.ts, which says what that window does not catch).
 *
 * Only for a stream whose bytes are the socket's (the runtime's TCP and Unix streams, a PROXY
 * protocol layer past its header): the runtime answers false where it cannot apply it (the
 * legacy driver, a TLS layer), and then this stops asking.
 */
import type { FrameReader } from './frame-reader.js';
import type { ThriftStream } from './stream.js';

/** The mark a socket starts with (the kernel's default). */
const DEFAULT_MARK = 1;

export class RecvLowWater {
  /** The mark last applied to the stream (DEFAULT_MARK until the first change). */
  #mark = DEFAULT_MARK;
  /** The stream cannot take a mark: nothing is asked of it again. */
  #off: boolean;

  constructor(private readonly stream: ThriftStream) {
    this.#off = typeof stream.setRecvLowWater !== 'function';
  }

  /** The mark in effect (1 where the stream takes none). */
  get mark(): number {
    return this.#off ? DEFAULT_MARK : this.#mark;
  }

  /**
   * Puts the mark to 1, the kernel's default, when it is above: the kernel re-checks a pending
   * receive against the lowered mark at once (tcp_set_rcvlowat calls tcp_data_ready), so 1-4
   * bytes it held back complete it. True when the mark was above 1 (a look was made); update()
   * sets the reader's mark again. For an owner that must know whether an idle stream holds
   * unseen bytes (ServerConnection's idle deadline).
   */
  lower(): boolean {
    if (this.#off || this.#mark === DEFAULT_MARK) return false;
    this.#mark = DEFAULT_MARK;
    if (this.stream.setRecvLowWater!(DEFAULT_MARK) !== true) this.#off = true;
    return true;
  }

  /**
   * Before a receive (or with one pending: the kernel re-checks a waiting receive against a
   * lowered mark at once): sets the mark `reader`'s state allows, a syscall only when it changes.
   */
  update(reader: FrameReader): void {
    if (this.#off) return;
    const mark = reader.recvLowWater();
    if (mark === this.#mark) return;
    this.#mark = mark;
    if (this.stream.setRecvLowWater!(mark) !== true) this.#off = true;
  }
}
