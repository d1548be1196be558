/**
 * Message names are decoded through a small cache of names seen lately (decodeNameAt): what
 * readMessageBegin returns must be exactly what a fresh UTF-8 decode gives, for names that hit,
 * collide in the cache, are not ASCII, or lie anywhere in a buffer.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MessageType } from '../types.js';
import { createReader, createWriter } from './factory.js';
import { decodeNameAt } from './reader.js';

const utf8 = new TextEncoder();
const fresh = new TextDecoder('utf-8', { ignoreBOM: true });

describe('decodeNameAt', () => {
  it('returns what a fresh decode returns, for any names in any order', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.constantFrom('bench', 'echo', 'getUser', 'Svc:method', 'a', ''),
            fc.string({ maxLength: 30 }),
            fc.string({ unit: 'grapheme', maxLength: 8 }),
          ),
          { maxLength: 300 },
        ),
        fc.nat({ max: 7 }),
        (names, pad) => {
          for (const name of names) {
            const bytes = utf8.encode(name);
            // The name somewhere inside a larger buffer, as in a frame.
            const buf = new Uint8Array(pad + bytes.byteLength + 3).fill(0x41);
            buf.set(bytes, pad);
            expect(decodeNameAt(buf, pad, bytes.byteLength)).toBe(fresh.decode(bytes));
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('tells apart names that share a cache slot', () => {
    // 2,000 distinct short names: far more than the cache's 64 slots, so slots are shared.
    const names = Array.from({ length: 2000 }, (_, i) => `m${i.toString(36)}`);
    for (let round = 0; round < 3; round++)
      for (const name of names) {
        const bytes = utf8.encode(name);
        expect(decodeNameAt(bytes, 0, bytes.byteLength)).toBe(name);
      }
  });

  it('reads message names through both protocols, ASCII or not', () => {
    for (const protocol of ['binary', 'compact'] as const)
      for (const name of ['bench', 'bench', 'Svc:method', 'naïve', 'naïve', '名前', '']) {
        const w = createWriter(protocol);
        w.writeMessageBegin(name, MessageType.CALL, 7);
        const header = createReader(protocol).reset(w.finishCopy()).readMessageBegin();
        expect(header).toEqual({ name, type: MessageType.CALL, seqId: 7 });
      }
  });
});
