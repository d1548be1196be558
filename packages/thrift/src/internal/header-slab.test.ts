/**
 * Framing headers come from shared slabs (header-slab.ts): few allocations for many messages,
 * and no header is ever overwritten by a later one, for framed, THeader and TTHeader.
 */
import { describe, expect, it } from 'vitest';
import { decodeFrame, frameParts } from '../transport/codec.js';
import type { FramingName } from '../transport/frame.js';
import { headerBytes } from './header-slab.js';

/** A binary CALL message "m" with seq id `i`, padded to `pad` bytes of body. */
function message(i: number, pad: number): Uint8Array {
  const m = new Uint8Array(13 + pad);
  const v = new DataView(m.buffer);
  v.setUint32(0, 0x80010001);
  v.setUint32(4, 1);
  m[8] = 0x6d; // "m"
  v.setInt32(9, i);
  return m;
}

describe('framing header memory', () => {
  it.each(['framed', 'theader', 'ttheader'] as FramingName[])(
    '%s: headers share a few slabs and keep their bytes while later ones are written',
    (framing) => {
      const sent: { parts: Uint8Array[]; copy: Uint8Array[] }[] = [];
      const memory = new Set<ArrayBufferLike>();
      for (let i = 0; i < 3000; i++) {
        const headers = new Map([['k', `v${i}`]]);
        const parts = frameParts({ framing, protocol: 'binary', seqId: i, headers }, message(i, i % 50));
        memory.add(parts[0]!.buffer);
        sent.push({ parts, copy: parts.map((p) => p.slice()) });
      }
      expect(memory.size).toBeLessThan(100);
      for (const [i, { parts, copy }] of sent.entries()) {
        expect(parts).toEqual(copy);
        const whole = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
        let at = 0;
        for (const p of parts) {
          whole.set(p, at);
          at += p.byteLength;
        }
        expect(decodeFrame(framing, whole).seqId).toBe(i);
      }
    },
  );

  it('gives a large header memory of its own', () => {
    expect(headerBytes(4096).buffer.byteLength).toBe(4096);
  });
});
