/**
 * The binary-protocol reader the gateway reads replies with: a @loch/thrift BinaryReader that
 * can also give a string's place in its buffer instead of a view of it. The Thrift -> JSON
 * emitters copy a string's bytes straight into the JSON text; `readBinary()` would make a
 * Uint8Array view per string first (a subarray costs ~40-70 ns on this VM, the 10 KiB bench
 * struct has ~325 strings). Checks are the reader's own (negative length, the string limit,
 * bytes present). Other protocols read through readBinary(). Not a protocol of its own.
 */
import { BinaryReader } from '@loch/thrift';

/** A BinaryReader with readBinarySpan(). */
export class SpanBinaryReader extends BinaryReader {
  /**
   * Reads a string's or binary's length and moves past its bytes, checked as readBinary()
   * checks them; returns where they start in `buf` (they end at `pos`).
   */
  readBinarySpan(): number {
    const len = this.readI32();
    this.checkStringLength(len);
    const start = this.pos;
    this.pos = start + len;
    return start;
  }
}
