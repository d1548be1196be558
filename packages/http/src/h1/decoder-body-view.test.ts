/**
 * A body step's view of the input (the Data event's `data`) is made by
 * %TypedArray%.prototype.subarray itself, not a `subarray` looked up on the input (a generic load
 * at a site that sees the runtime's Uint8Arrays and Buffers), for either kind of input.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DecodeEvent, ResponseDecoder } from './decoder.js';

describe('the decoder body step', () => {
  afterEach(() => {
    delete (Buffer.prototype as { subarray?: unknown }).subarray;
    delete (Uint8Array.prototype as { subarray?: unknown }).subarray;
  });

  it('views the input without looking `subarray` up on it', () => {
    const wire = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello';
    const inputs: Uint8Array[] = [new Uint8Array(Buffer.from(wire, 'latin1')), Buffer.from(wire, 'latin1')];
    const typedSubarray = Object.getPrototypeOf(Uint8Array.prototype).subarray as (
      this: Uint8Array,
      start?: number,
      end?: number,
    ) => Uint8Array;
    const looked: string[] = [];
    // An own `subarray` on Buffer.prototype and Uint8Array.prototype is what `input.subarray` finds first.
    for (const [proto, name] of [
      [Buffer.prototype, 'Buffer'],
      [Uint8Array.prototype, 'Uint8Array'],
    ] as const) {
      Object.defineProperty(proto, 'subarray', {
        configurable: true,
        writable: true,
        value(this: Uint8Array, start?: number, end?: number) {
          if (inputs.includes(this)) looked.push(name);
          return typedSubarray.call(this, start, end);
        },
      });
    }
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
    expect(looked).toEqual([]);
  });
});
