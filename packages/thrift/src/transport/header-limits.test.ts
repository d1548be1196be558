/**
 * maxHeaderSize and maxHeaderCount (issue 15's "max header size"): a THeader/TTHeader header block
 * at the limit decodes, one byte over it (padded to the next 4-byte word, as the wire says) or one
 * entry over the count is refused with ERR_THRIFT_HEADER_SIZE, by the decoders, decodeFrame and a
 * FrameReader alike; the defaults are 64 KiB and 1,000.
 */
import { describe, expect, it } from 'vitest';
import { ThriftTransportError } from '../errors.js';
import { FrameReader } from '../rpc/frame-reader.js';
import type { ThriftStream } from '../rpc/stream.js';
import { decodeFrame, encodeFrame } from './codec.js';
import { DEFAULT_MAX_HEADER_COUNT, DEFAULT_MAX_HEADER_SIZE, type FrameSpec } from './frame.js';
import { decodeTHeader } from './theader.js';
import { decodeTTHeader } from './ttheader.js';

/** A strict binary CALL `m`, seq id 1, empty args. */
const PAYLOAD = new Uint8Array([0x80, 1, 0, 1, 0, 0, 0, 1, 0x6d, 0, 0, 0, 1, 0]);

type HeaderFraming = 'theader' | 'ttheader';

function frame(framing: HeaderFraming, spec: Partial<FrameSpec>): Uint8Array {
  return encodeFrame({ framing, protocol: 'binary', seqId: 1, ...spec } as FrameSpec, PAYLOAD);
}

/** The header block's size as the frame says it (header-size field x 4). */
function blockSize(f: Uint8Array): number {
  return ((f[12]! << 8) | f[13]!) * 4;
}

/** The header block's bytes before its padding: up to the last byte of the one value ('v's). */
function contentSize(f: Uint8Array): number {
  return f.lastIndexOf(0x76, 14 + blockSize(f) - 1) + 1 - 14;
}

/** A frame whose header block holds exactly `content` bytes before padding: one header `k`. */
function frameWithBlock(framing: HeaderFraming, content: number): Uint8Array {
  for (let value = Math.max(1, content - 20); value <= content; value++) {
    const f = frame(framing, { headers: new Map([['k', 'v'.repeat(value)]]) });
    if (contentSize(f) === content) return f;
  }
  throw new Error(`no block of ${content} bytes`);
}

function headerError(fn: () => unknown): ThriftTransportError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ThriftTransportError);
    return error as ThriftTransportError;
  }
  throw new Error('not refused');
}

/** A stream FrameReader never reads (feed/poll only). */
const NO_STREAM = {} as ThriftStream;

describe.each(['theader', 'ttheader'] as const)('%s header limits', (framing) => {
  const decode = (f: Uint8Array, size?: number, count?: number) =>
    framing === 'theader'
      ? decodeTHeader(f, { maxHeaderSize: size, maxHeaderCount: count })
      : decodeTTHeader(f, { maxHeaderSize: size, maxHeaderCount: count });

  it('decodes a block at the limit and refuses one a byte over it (the next word)', () => {
    for (const limit of [64, 1000, DEFAULT_MAX_HEADER_SIZE]) {
      const at = frameWithBlock(framing, limit);
      expect(blockSize(at)).toBe(limit);
      expect(decode(at, limit === DEFAULT_MAX_HEADER_SIZE ? undefined : limit).headers.get('k')).toMatch(
        /^v+$/,
      );
      const over = frameWithBlock(framing, limit + 1);
      expect(blockSize(over)).toBe(limit + 4);
      const error = headerError(() => decode(over, limit === DEFAULT_MAX_HEADER_SIZE ? undefined : limit));
      expect(error.code).toBe('ERR_THRIFT_HEADER_SIZE');
      expect(error.message).toContain(`${limit + 4} bytes over the limit ${limit}`);
      // decodeFrame (the FrameReader's path) takes the same option.
      expect(() => decodeFrame(framing, over, { maxHeaderSize: limit })).toThrow(/over the limit/);
      expect(decodeFrame(framing, at, { maxHeaderSize: limit }).headers.get('k')).toMatch(/^v+$/);
    }
  });

  it('counts entries over every block: 1,000 decode by default, 1,001 are refused', () => {
    const spec = (n: number): Partial<FrameSpec> => {
      const half = Math.floor(n / 2);
      const strings = new Map<string, string>();
      for (let i = 0; i < n - half; i++) strings.set(`s${i}`, '');
      const other = new Map<string, string>();
      const ints = new Map<number, string>();
      for (let i = 0; i < half; i++) {
        other.set(`p${i}`, '');
        ints.set(i, '');
      }
      // THeader: string and persistent blocks; TTHeader: string and integer blocks.
      return framing === 'theader'
        ? { headers: strings, persistentHeaders: other }
        : { headers: strings, intHeaders: ints };
    };
    const ok = decode(frame(framing, spec(DEFAULT_MAX_HEADER_COUNT)));
    expect(ok.headers.size + (framing === 'theader' ? ok.persistentHeaders.size : ok.intHeaders.size)).toBe(
      DEFAULT_MAX_HEADER_COUNT,
    );
    const error = headerError(() => decode(frame(framing, spec(DEFAULT_MAX_HEADER_COUNT + 1))));
    expect(error.code).toBe('ERR_THRIFT_HEADER_SIZE');
    expect(error.message).toContain('over the limit 1000 (max_header_count)');
    // A smaller configured count, through decodeFrame's option.
    expect(() => decodeFrame(framing, frame(framing, spec(11)), { maxHeaderCount: 10 })).toThrow(
      /11 or more entries over the limit 10/,
    );
    expect(decodeFrame(framing, frame(framing, spec(10)), { maxHeaderCount: 10 }).headers.size).toBe(5);
  });

  it('refuses a count the block cannot even hold before reading its entries', () => {
    // A string block announcing 60,000 entries in a few bytes: refused by the count, not as a
    // truncated block after reading what there is.
    const f = frame(framing, { headers: new Map([['k', 'v']]) });
    const at = 14 + 2 + (framing === 'theader' ? 1 : 1); // protocol id, transform count, block id/type
    const bytes = f.slice();
    if (framing === 'theader') {
      // Varint 60,000 needs 3 bytes where the count of 1 took one: write a 1-byte count over the
      // limit instead (127 > 100).
      bytes[at] = 127;
      expect(() => decodeFrame(framing, bytes, { maxHeaderCount: 100 })).toThrow(/127 or more entries/);
    } else {
      bytes[at] = 0xea;
      bytes[at + 1] = 0x60;
      expect(() => decodeFrame(framing, bytes)).toThrow(/60000 or more entries/);
    }
  });

  it('a FrameReader with the options refuses the frame at poll()', () => {
    const reader = new FrameReader(NO_STREAM, { framing: 'auto', maxHeaderSize: 64 });
    reader.feed(frameWithBlock(framing, 65));
    expect(() => reader.poll()).toThrow(expect.objectContaining({ code: 'ERR_THRIFT_HEADER_SIZE' }));
    const counted = new FrameReader(NO_STREAM, { framing, maxHeaderCount: 1 });
    counted.feed(
      frame(framing, {
        headers: new Map([
          ['a', ''],
          ['b', ''],
        ]),
      }),
    );
    expect(() => counted.poll()).toThrow(expect.objectContaining({ code: 'ERR_THRIFT_HEADER_SIZE' }));
    const fine = new FrameReader(NO_STREAM, { framing, maxHeaderSize: 64, maxHeaderCount: 1 });
    fine.feed(frameWithBlock(framing, 64));
    expect(fine.poll()?.headers.get('k')).toMatch(/^v+$/);
  });
});
