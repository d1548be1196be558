/**
 * writeStreamBody's one write: a first chunk at hand is copied behind the head, for a sized and
 * a chunked answer, through %TypedArray%.prototype.set itself (not a `set` looked up on the
 * head's buffer, a generic load at a site that sees lent Uint8Arrays and Buffers).
 */
import { describe, expect, it } from 'vitest';
import { AtHandBody } from '../../test/at-hand-body.js';
import { watchOwnMethod } from '../../test/own-method-watch.js';
import { createResponse } from '../message.js';
import type { ResponseHeadOptions } from './encoder.js';
import { type ResponseSink, writeStreamBody } from './response-writer.js';

/** A sink that lends plain Uint8Arrays and keeps the one write. */
function sink(): ResponseSink & { writes: (Uint8Array | Uint8Array[])[] } {
  const writes: (Uint8Array | Uint8Array[])[] = [];
  return {
    writes,
    lend: (n) => new Uint8Array(n),
    startWrite: (out) => {
      writes.push(out);
    },
    deferTail: () => {},
    send: async (out) => {
      writes.push(out);
    },
    bodyEnded: () => {},
  };
}

const text = (b: Uint8Array | Uint8Array[]): string =>
  Buffer.concat(Array.isArray(b) ? b : [b]).toString('latin1');

describe('writeStreamBody', () => {
  it('copies the chunk at hand behind the head without looking `set` up on the head', () => {
    const chunk = new Uint8Array(Buffer.from('hello', 'latin1'));
    const watch = watchOwnMethod('set', (_self, args) => args[0] === chunk);
    try {
      const o: ResponseHeadOptions = {
        framing: 'length',
        length: 5,
        keepAlive: true,
        requestMinor: 1,
        requestMethod: 'GET',
        date: false,
      };
      const sized = sink();
      const res = createResponse(200, { body: new AtHandBody(chunk, 'fixed', 5) });
      expect(writeStreamBody(sized, null, res, o, res.body, 'length', true)).toBe(null);
      expect(text(sized.writes[0]!)).toBe('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello');
      const chunked = sink();
      const streamed = createResponse(200, { body: new AtHandBody(chunk, 'stream', -1) });
      const oc: ResponseHeadOptions = { ...o, framing: 'chunked', length: -1 };
      expect(writeStreamBody(chunked, null, streamed, oc, streamed.body, 'chunked', true)).toBe(null);
      expect(text(chunked.writes[0]!)).toBe(
        'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
      );
    } finally {
      watch.restore();
    }
    expect(watch.looked).toEqual([]);
  });
});
