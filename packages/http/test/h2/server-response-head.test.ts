/**
 * Response heads as HEADERS frames: a head within the peer's frame size is copied from the HPACK
 * encoder into the output as one HEADERS frame without a view of its block (HpackEncoder.finish
 * is not called); a larger one still goes out as HEADERS and CONTINUATION frames. node:http2
 * (nghttp2) reads both, on both drivers.
 */
import * as http2 from 'node:http2';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { fixedBody } from '../../src/body.js';
import { HpackEncoder } from '../../src/h2/hpack-encoder.js';
import { createResponse } from '../../src/message.js';
import { availableDrivers, startServer } from '../server-harness.js';

const drivers = await availableDrivers();

afterEach(() => {
  vi.restoreAllMocks();
});

/** Above the default SETTINGS_MAX_FRAME_SIZE (16,384): the block needs a CONTINUATION frame. */
const BIG = 'v'.repeat(20_000);

describe.each(drivers)('HTTP/2 response heads (%s)', (driver) => {
  it('a small head is one HEADERS frame without a block view, a large one continues', async () => {
    const running = await startServer(
      driver,
      {},
      {
        call: (req) =>
          createResponse(200, {
            headers: req.target === '/big' ? { 'x-big': BIG, 'x-small': 'a' } : { 'x-small': 'a' },
            body: fixedBody('ok'),
          }),
      },
    );
    const client = http2.connect(`http://127.0.0.1:${running.port}`);
    const ask = (path: string) =>
      new Promise<{ headers: http2.IncomingHttpHeaders; body: string }>((resolve, reject) => {
        const req = client.request({ ':path': path });
        let body = '';
        let headers: http2.IncomingHttpHeaders = {};
        req.setEncoding('latin1');
        req.on('response', (h) => {
          headers = h;
        });
        req.on('data', (d: string) => {
          body += d;
        });
        req.on('end', () => resolve({ headers, body }));
        req.on('error', reject);
        req.end();
      });
    try {
      // The connection's first answer, before spying (the client's own encoder is nghttp2's).
      expect((await ask('/')).body).toBe('ok');
      const finish = vi.spyOn(HpackEncoder.prototype, 'finish');
      const small = await ask('/');
      expect(small.body).toBe('ok');
      expect(small.headers['x-small']).toBe('a');
      expect(finish).toHaveBeenCalledTimes(0);
      const big = await ask('/big');
      expect(big.body).toBe('ok');
      expect(big.headers['x-big']).toBe(BIG);
      expect(big.headers['x-small']).toBe('a');
      expect(finish).toHaveBeenCalledTimes(1);
    } finally {
      client.close();
      await running.stop();
    }
    expect(running.errors).toEqual([]);
  });
});
