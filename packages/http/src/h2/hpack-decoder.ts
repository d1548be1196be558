/**
 * HPACK header-block decoder (RFC 7541 §6) for one direction of one connection. It turns a
 * complete header block (the fragments of HEADERS/PUSH_PROMISE + CONTINUATION joined by the frame
 * decoder) into fields handed to a {@link HpackFieldSink}, keeps the dynamic table in step with
 * the peer's encoder, and enforces:
 * - integer and string bounds (no integer above 2^31 - 1, no string past the block end),
 * - dynamic table size updates only at the start of a block and never above the limit we
 *   advertised (SETTINGS_HEADER_TABLE_SIZE), and one required after we lowered that limit,
 * - a maximum decoded header-list size (SETTINGS_MAX_HEADER_LIST_SIZE, RFC 9113 §6.5.2: name +
 *   value + 32 per field). Past it the block is still walked to keep the table in step, but no
 *   further field is emitted and literals that are not indexed are skipped undecoded, so an HPACK
 *   bomb (a small block of repeated references to a large entry) costs time linear in the block
 *   bytes and no memory; then the decoder throws a {@link Http2StreamError}.
 * Violations of the first two are COMPRESSION_ERROR {@link Http2ConnectionError}s: the table
 * state is lost, so the connection cannot go on.
 *
 * Not for HTTP semantics: field names and values are handed over as sent (byte strings, one char
 * per byte). RFC 9113 §8.2 checks (lowercase names, connection-specific fields, CR/LF/NUL,
 * pseudo-headers first) live in field-validator.ts, run by the session on each emitted field, so
 * a malformed field resets one stream while the block is still decoded to its end.
 */
import {
  Http2ConnectionError,
  type Http2ConnectionErrorReason,
  Http2ErrorCode,
  Http2StreamError,
} from './errors.js';
import { HPACK_ENTRY_OVERHEAD, HpackDynamicTable, STATIC_TABLE, STATIC_TABLE_LENGTH } from './hpack-table.js';
import { huffmanDecode, huffmanMaxDecodedLength } from './huffman.js';

/**
 * Node's latin1 decoding of any Uint8Array's range, called on the block itself: no Buffer view
 * of it made per header block (what headers.ts and the h1 decoder use too).
 */
const latin1Slice = (
  Buffer.prototype as unknown as { latin1Slice(this: Uint8Array, start: number, end: number): string }
).latin1Slice;

/** Receives the fields of a header block, in order. */
export interface HpackFieldSink {
  /**
   * One decoded field. `sensitive` is true for a never-indexed literal (RFC 7541 §6.2.3): an
   * intermediary must forward it never-indexed too.
   */
  onField(name: string, value: string, sensitive: boolean): void;
}

/** Limits of an {@link HpackDecoder}. */
export interface HpackDecoderOptions {
  /** Our SETTINGS_HEADER_TABLE_SIZE: the largest dynamic table the peer may use. Default 4096. */
  readonly maxTableSize?: number;
  /** Our SETTINGS_MAX_HEADER_LIST_SIZE in octets (name + value + 32 per field). Default 65536. */
  readonly maxHeaderListSize?: number;
}

const MAX_INTEGER = 0x7fffffff;

function compressionError(code: Http2ConnectionErrorReason, message: string): Http2ConnectionError {
  return new Http2ConnectionError(code, Http2ErrorCode.COMPRESSION_ERROR, message);
}

/** Collects fields into an array, for {@link HpackDecoder.decodeToList}. */
class ListSink implements HpackFieldSink {
  fields: [string, string][] = [];
  onField(name: string, value: string): void {
    this.fields.push([name, value]);
  }
}

/** Decodes the header blocks of one direction of a connection; see the module comment. */
export class HpackDecoder {
  /** The dynamic table, exposed for inspection (tests, debugging); do not modify it. */
  readonly table: HpackDynamicTable;
  /** SETTINGS_MAX_HEADER_LIST_SIZE we enforce; change it when our SETTINGS change. */
  maxHeaderListSize: number;
  #limit: number;
  #updateRequired = false;
  /** Read position inside the block being decoded (a field, so primitives return one number). */
  #pos = 0;
  #end = 0;
  #scratch: Buffer = Buffer.allocUnsafe(256);

  constructor(options: HpackDecoderOptions = {}) {
    this.#limit = options.maxTableSize ?? 4096;
    this.maxHeaderListSize = options.maxHeaderListSize ?? 65536;
    this.table = new HpackDynamicTable(this.#limit);
  }

  /** The largest table size the peer may set (our acknowledged SETTINGS_HEADER_TABLE_SIZE). */
  get maxTableSizeLimit(): number {
    return this.#limit;
  }

  /**
   * Applies a new SETTINGS_HEADER_TABLE_SIZE of ours once the peer acknowledged it. If it is below
   * the table's current maximum, the peer's next block must start with a size update that fits.
   */
  setMaxTableSizeLimit(limit: number): void {
    this.#limit = limit;
    if (limit < this.table.maxSize) this.#updateRequired = true;
  }

  /**
   * Decodes the complete header block `block[start, end)` into `sink`. Throws a COMPRESSION_ERROR
   * {@link Http2ConnectionError} for a broken block (the connection must end), or, after walking
   * the whole block, a {@link Http2StreamError} `ERR_HTTP2_HEADER_LIST_TOO_LARGE` when the fields
   * exceed {@link maxHeaderListSize} (the fields before the limit were emitted; the session
   * answers 431 or resets the stream).
   */
  decode(block: Uint8Array, sink: HpackFieldSink, start = 0, end: number = block.length): void {
    const table = this.table;
    const maxList = this.maxHeaderListSize;
    let listSize = 0;
    let over = false;
    let fieldsSeen = false;
    this.#pos = start;
    this.#end = end;
    while (this.#pos < end) {
      const b = block[this.#pos]!;
      let name: string;
      let value: string;
      let sensitive = false;
      if (b >= 0x80) {
        // Indexed field (§6.1).
        const index = this.#integer(block, 7);
        if (index === 0) throw compressionError('ERR_HTTP2_HPACK_INDEX', 'indexed field with index 0');
        if (index <= STATIC_TABLE_LENGTH) {
          const entry = STATIC_TABLE[index - 1]!;
          name = entry[0];
          value = entry[1];
        } else {
          const pos = this.#dynamicPosition(index);
          name = table.nameAt(pos);
          value = table.valueAt(pos);
        }
      } else if (b >= 0x40) {
        // Literal with incremental indexing (§6.2.1): always decoded, the table needs it.
        const index = this.#integer(block, 6);
        name = index === 0 ? this.#string(block, false) : this.#nameOf(index);
        value = this.#string(block, false);
        table.add(name, value);
      } else if (b >= 0x20) {
        // Dynamic table size update (§6.3).
        if (fieldsSeen) {
          throw compressionError(
            'ERR_HTTP2_HPACK_TABLE_SIZE',
            'dynamic table size update after the first field',
          );
        }
        const size = this.#integer(block, 5);
        if (size > this.#limit) {
          throw compressionError(
            'ERR_HTTP2_HPACK_TABLE_SIZE',
            `dynamic table size update to ${size} exceeds SETTINGS_HEADER_TABLE_SIZE ${this.#limit}`,
          );
        }
        table.setMaxSize(size);
        this.#updateRequired = false;
        continue;
      } else {
        // Literal without indexing (§6.2.2) or never indexed (§6.2.3).
        sensitive = b >= 0x10;
        const index = this.#integer(block, 4);
        name = index === 0 ? this.#string(block, over) : this.#nameOf(index);
        value = this.#string(block, over);
      }
      if (!fieldsSeen) {
        if (this.#updateRequired) {
          throw compressionError(
            'ERR_HTTP2_HPACK_TABLE_SIZE',
            `header block does not start with the required table size update (limit ${this.#limit})`,
          );
        }
        fieldsSeen = true;
      }
      if (over) continue;
      listSize += name.length + value.length + HPACK_ENTRY_OVERHEAD;
      if (listSize > maxList) {
        over = true;
        continue;
      }
      sink.onField(name, value, sensitive);
    }
    if (over) {
      throw new Http2StreamError(
        'ERR_HTTP2_HEADER_LIST_TOO_LARGE',
        Http2ErrorCode.ENHANCE_YOUR_CALM,
        0,
        `decoded header list exceeds SETTINGS_MAX_HEADER_LIST_SIZE ${maxList}`,
      );
    }
  }

  /** Decodes a complete header block into `[name, value]` pairs (tests and tools; allocates). */
  decodeToList(block: Uint8Array): [string, string][] {
    const sink = new ListSink();
    this.decode(block, sink);
    return sink.fields;
  }

  #dynamicPosition(index: number): number {
    const pos = index - STATIC_TABLE_LENGTH - 1;
    if (pos >= this.table.length) {
      throw compressionError(
        'ERR_HTTP2_HPACK_INDEX',
        `index ${index} beyond the static and dynamic tables (${STATIC_TABLE_LENGTH + this.table.length} entries)`,
      );
    }
    return pos;
  }

  #nameOf(index: number): string {
    return index <= STATIC_TABLE_LENGTH
      ? STATIC_TABLE[index - 1]![0]
      : this.table.nameAt(this.#dynamicPosition(index));
  }

  /** An HPACK integer with an `prefixBits`-bit prefix at #pos (RFC 7541 §5.1). */
  #integer(block: Uint8Array, prefixBits: number): number {
    const mask = (1 << prefixBits) - 1;
    let value = block[this.#pos++]! & mask;
    if (value < mask) return value;
    let shift = 0;
    for (;;) {
      if (this.#pos >= this.#end)
        throw compressionError('ERR_HTTP2_HPACK_TRUNCATED', 'header block ends inside an integer');
      const b = block[this.#pos++]!;
      value += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) break;
      shift += 7;
      if (shift > 28)
        throw compressionError('ERR_HTTP2_HPACK_INTEGER', 'integer longer than 5 continuation bytes');
    }
    if (value > MAX_INTEGER)
      throw compressionError('ERR_HTTP2_HPACK_INTEGER', `integer ${value} exceeds 2^31 - 1`);
    return value;
  }

  /** A string literal at #pos (RFC 7541 §5.2); `skip` steps over it without decoding. */
  #string(block: Uint8Array, skip: boolean): string {
    if (this.#pos >= this.#end)
      throw compressionError('ERR_HTTP2_HPACK_TRUNCATED', 'header block ends before a string');
    const huffman = block[this.#pos]! >= 0x80;
    const length = this.#integer(block, 7);
    const start = this.#pos;
    const end = start + length;
    if (end > this.#end)
      throw compressionError('ERR_HTTP2_HPACK_TRUNCATED', 'string literal runs past the header block');
    this.#pos = end;
    if (skip || length === 0) return '';
    if (!huffman) return latin1Slice.call(block, start, end);
    const need = huffmanMaxDecodedLength(length);
    if (this.#scratch.length < need)
      this.#scratch = Buffer.allocUnsafe(Math.max(need, this.#scratch.length * 2));
    const n = huffmanDecode(block, start, end, this.#scratch, 0);
    return latin1Slice.call(this.#scratch, 0, n);
  }
}
