/**
 * A body step's view of the input (the Data event's `data`) is made by
 * %TypedArray%.prototype.subarray itself, not a `subarray` looked up on the input (a generic load
 * at a site that sees the runtime's Uint8Arrays and Buffers), for either kind of input.
 */
import { describe, expect, it } from 'vitest';
import { watchOwnMethod } from '../../test/own-method-watch.js';
import { DecodeEvent, ResponseDecoder } from './decoder.js';

describe('the decoder body step', () => {
  it('views the input without looking `subarray` up on it', () => {
    const wire = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello';
    const inputs: Uint8Array[] = [new Uint8Array(Buffer.from(wire, 'latin1')), Buffer.from(wire, 'latin1')];
    const watch = watchOwnMethod('subarray', (self) => inputs.includes(self));
    try {
      for (const input of inputs) {
        const d = new ResponseDecoder();
        d.expectResponseTo('GET');
        d.feed(input);
        expect(d.poll()).toBe(DecodeEvent.Head);
        expect(d.poll()).toBe(DecodeEvent.Data);
        expect(Buffer.from(d.data).toString('latin1')).toBe('hello');
        expect(d.data.buffer).toBe(input.buffer);
        expect(d.data instanceof Buffer).toBe(input instanceof Buffer);
        expect(d.poll()).toBe(DecodeEvent.End);
      }
    } finally {
      watch.restore();
    }
    expect(watch.looked).toEqual([]);
  });
});
