/**
 * A client that resets an HTTP/2 stream while the server waits for the next chunk of its
 * response body: the body's source is let go at once (its iterator's return() is called), not
 * when it next produces a chunk or times out. What a proxy needs so that a cancelled downstream
 * stream cancels its upstream stream or connection. node:http2 as the client, both drivers.
 */
import * as http2 from 'node:http2';
import { afterEach, describe, expect, it } from 'vitest';
import type { HttpBody } from '../src/body.js';
import { createResponse } from '../src/message.js';
import type { HttpHandler } from '../src/server.js';
import { availableDrivers, type InProcess, startServer } from './server-harness.js';

const drivers = await availableDrivers();

/** A body that yields one chunk, then waits forever; records when it is returned. */
function stalledBody(onReturn: () => void): HttpBody {
  let step = 0;
  const it: AsyncIterator<Uint8Array> = {
    next: () =>
      step++ === 0
        ? Promise.resolve({ done: false, value: Buffer.from('first chunk') })
        : new Promise<IteratorResult<Uint8Array>>(() => {}),
    return: async () => {
      onReturn();
      return { done: true, value: undefined };
    },
  };
  return { kind: 'stream', length: -1, trailers: null, [Symbol.asyncIterator]: () => it };
}

describe.each(drivers)('an h2 stream reset on the %s driver', (driver) => {
  let srv: InProcess | undefined;
  afterEach(async () => {
    await srv?.stop();
    srv = undefined;
  });

  it("returns the response body's iterator while a read of it is pending", async () => {
    let returned!: () => void;
    const wasReturned = new Promise<void>((resolve) => {
      returned = resolve;
    });
    const handler: HttpHandler = {
      call: () => createResponse(200, { body: stalledBody(() => returned()) }),
    };
    srv = await startServer(driver, {}, handler);
    const session = http2.connect(`http://127.0.0.1:${srv.port}`);
    session.on('error', () => {});
    try {
      const req = session.request({ ':path': '/stalled' });
      req.on('error', () => {});
      // The first chunk arrived: the server now waits for the second one.
      await new Promise<void>((resolve) => req.once('data', () => resolve()));
      req.close(http2.constants.NGHTTP2_CANCEL);
      await wasReturned;
      expect(srv.errors).toEqual([]);
    } finally {
      session.close();
    }
  });
});
