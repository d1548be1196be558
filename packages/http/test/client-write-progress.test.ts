/**
 * The clients' write deadline (`writeTimeout`, the proxy's `upstream_write`) is an idle-progress
 * deadline, as nginx's proxy_send_timeout ("between two successive write operations";
 * internal/write-progress.ts), for HttpClient (HTTP/1.1) and H2ClientSession (HTTP/2), on every
 * runtime driver, against a real upstream over a real socket: test/slow_upstream_reader.py (a
 * small receive buffer and a network's MSS, so the client's socket stays full; HTTP/2 windows of
 * 2^31-1, so flow control never holds the client back) reads request bodies slowly.
 * - An upload of 1 MiB to an upstream reading ~100 KB/s (2 KiB every 20 ms) takes longer than
 *   the write deadline (1 s) for one write (HTTP/1.1: the body's one chunk; HTTP/2: up to 256 KiB
 *   of frames) but never stalls for one: it completes. A deadline per write cut it (checked: with
 *   writeProgressSince always -1 all four fail with the write timeout).
 * - An upload to an upstream that stops reading is still cut: the exchange fails with the write
 *   timeout.
 */
import type { DriverName } from '@loch/uring-runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedBody, readBody } from '../src/body.js';
import { HttpTimeoutError } from '../src/errors.js';
import { HttpClient } from '../src/h1/client.js';
import { H2ClientSession } from '../src/h2/client-session.js';
import { createRequest } from '../src/message.js';
import { availableDrivers, connectTo } from './server-harness.js';
import { type SlowUpstream, startSlowUpstream } from './slow-upstream.js';

const drivers = await availableDrivers();
const WRITE_TIMEOUT = 1000;
/** ~10 s at the upstream's pace: ten write deadlines. */
const UPLOAD = 1024 * 1024;

const protocols = ['h1', 'h2'] as const;
type Protocol = (typeof protocols)[number];

/** One upload of UPLOAD bytes over a new connection of `protocol` with the write deadline: the answer. */
async function upload(
  driver: DriverName,
  protocol: Protocol,
  port: number,
): Promise<{ status: number; text: string }> {
  const stream = await connectTo(driver, port);
  const request = createRequest('POST', '/upload', { body: fixedBody(new Uint8Array(UPLOAD)) });
  const timeouts = { writeTimeout: WRITE_TIMEOUT, responseTimeout: 60_000, bodyTimeout: 60_000 };
  const client =
    protocol === 'h1'
      ? new HttpClient(stream, { authority: 'upstream', ...timeouts })
      : new H2ClientSession(stream, { authority: 'upstream', ...timeouts });
  try {
    const response = await client.send(request);
    return { status: response.status, text: Buffer.from(await readBody(response.body, 1024)).toString() };
  } finally {
    await client.close().catch(() => {});
  }
}

describe.each(drivers)('client write deadline with slow upstreams (driver %s)', (driver) => {
  describe.each(protocols)('%s', (protocol) => {
    const h2 = protocol === 'h2' ? ['--h2'] : [];
    let steady: SlowUpstream;
    let stalled: SlowUpstream;

    beforeAll(async () => {
      steady = await startSlowUpstream([...h2, '--step', '2048', '--interval', '20']);
      stalled = await startSlowUpstream([...h2, '--stall-after', '1']);
    });
    afterAll(() => {
      steady?.child.kill();
      stalled?.child.kill();
    });

    it('an upload to an upstream slower than a write per deadline that never stalls for one completes', async () => {
      const started = performance.now();
      const { status, text } = await upload(driver, protocol, steady.port);
      const seconds = (performance.now() - started) / 1000;
      console.log(`[${driver} ${protocol}] steady upstream: ${status} ${text} in ${seconds.toFixed(1)} s`);
      expect(status).toBe(200);
      expect(text).toBe(String(UPLOAD));
      // Only meaningful if the upload took several write deadlines.
      expect(seconds * 1000).toBeGreaterThan(3 * WRITE_TIMEOUT);
    }, 60_000);

    it('an upload to an upstream that stops reading is cut by the write deadline', async () => {
      const error = await upload(driver, protocol, stalled.port).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(HttpTimeoutError);
      expect((error as HttpTimeoutError).kind).toBe('write');
    }, 60_000);
  });
});
