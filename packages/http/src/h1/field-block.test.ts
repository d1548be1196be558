import { afterEach, describe, expect, it, vi } from 'vitest';
import { HttpHeaders } from '../headers.js';
import { KNOWN_NAMES } from '../internal/known-names.js';
import { DecodeEvent, ResponseDecoder } from './decoder.js';
import { measureFieldBlock, writeFieldBlock } from './field-block.js';

/** nginx's head for a 128 B body: runs of kept lines longer than 16 bytes around the framing lines. */
const HEAD =
  'HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 03 Dec 2026 15:26:53 GMT\r\n' +
  'Content-Type: text/plain\r\nContent-Length: 128\r\nLast-Modified: Thu, 03 Dec 2026 15:25:59 GMT\r\n' +
  'Connection: keep-alive\r\nETag: "6b118a07-80"\r\nAccept-Ranges: bytes\r\n\r\n';
/** What writeFieldBlock writes of it: the framing lines (Content-Length, Connection) dropped. */
const FIELDS =
  'Server: nginx/1.22.1\r\nDate: Thu, 03 Dec 2026 15:26:53 GMT\r\nContent-Type: text/plain\r\n' +
  'Last-Modified: Thu, 03 Dec 2026 15:25:59 GMT\r\nETag: "6b118a07-80"\r\nAccept-Ranges: bytes\r\n';

function decoded(): HttpHeaders {
  const d = new ResponseDecoder();
  d.feed(new Uint8Array(Buffer.from(HEAD, 'latin1')));
  expect(d.poll()).toBe(DecodeEvent.Head);
  return (d as unknown as { message: { headers: HttpHeaders } }).message.headers;
}

describe('writeFieldBlock', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('copies the runs of kept lines into a Uint8Array and into a Buffer alike', () => {
    for (const out of [new Uint8Array(400), Buffer.alloc(400)]) {
      const h = decoded();
      const n = measureFieldBlock(h);
      expect(n).toBe(FIELDS.length);
      const end = writeFieldBlock(h, out, 7);
      expect(end).toBe(7 + n);
      expect(Buffer.from(out.subarray(7, end)).toString('latin1')).toBe(FIELDS);
      expect(out[6]).toBe(0);
      expect(out[end]).toBe(0);
    }
  });

  it('writes added fields with every known name (long ones from their bytes) and others alike', () => {
    const framing = ['connection', 'content-length', 'keep-alive', 'transfer-encoding'];
    const names = [...KNOWN_NAMES.slice(1), 'x-uncommon-name', 'x', 'via'];
    for (const out of [new Uint8Array(4096), Buffer.alloc(4096)]) {
      const h = decoded();
      for (const name of names) h.append(name, `v-${name}`);
      const n = measureFieldBlock(h);
      const end = writeFieldBlock(h, out, 3);
      const expected = names
        .filter((name) => !framing.includes(name))
        .map((name) => `${name}: v-${name}\r\n`)
        .join('');
      expect(Buffer.from(out.subarray(3, end)).toString('latin1')).toBe(FIELDS + expected);
      expect(end).toBe(3 + n);
      const built = new HttpHeaders([['x-forwarded-proto', 'https']]);
      expect(Buffer.from(out.subarray(0, writeFieldBlock(built, out, 0))).toString('latin1')).toBe(
        'x-forwarded-proto: https\r\n',
      );
    }
  });

  it('copies a long run without looking `set` up on the output array (a generic load when it is sometimes a Buffer)', () => {
    // An own `set` on Buffer.prototype and Uint8Array.prototype is found first by `out.set`:
    // writeFieldBlock calls %TypedArray%.prototype.set directly, so neither is called.
    const typedSet = Object.getPrototypeOf(Uint8Array.prototype).set as (
      this: Uint8Array,
      src: ArrayLike<number>,
      offset?: number,
    ) => void;
    const looked: string[] = [];
    for (const [proto, name] of [
      [Buffer.prototype, 'Buffer'],
      [Uint8Array.prototype, 'Uint8Array'],
    ] as const) {
      Object.defineProperty(proto, 'set', {
        configurable: true,
        writable: true,
        value(this: Uint8Array, src: ArrayLike<number>, offset?: number) {
          looked.push(name);
          typedSet.call(this, src, offset);
        },
      });
    }
    try {
      for (const out of [new Uint8Array(400), Buffer.alloc(400)]) {
        const h = decoded();
        measureFieldBlock(h);
        const end = writeFieldBlock(h, out, 0, false, false);
        expect(Buffer.from(out.subarray(0, end)).toString('latin1')).toBe(FIELDS);
      }
    } finally {
      delete (Buffer.prototype as { set?: unknown }).set;
      delete (Uint8Array.prototype as { set?: unknown }).set;
    }
    expect(looked).toEqual([]);
  });
});
