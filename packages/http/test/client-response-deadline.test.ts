/**
 * The clients' response deadline (`responseTimeout`, the proxy's `upstream_read`) counts from the
 * request's last write, as nginx's proxy_read_timeout starts once the request is sent: an upload
 * to a slow upstream that keeps reading takes longer than the response deadline and is not cut
 * by it (the write deadline, an idle-progress one, is what cuts an upstream that stops reading:
 * client-write-progress.test.ts), for HttpClient (HTTP/1.1) and H2ClientSession (HTTP/2), on every
 * runtime driver, over real sockets. An upstream that took the whole request and never answers
 * is still cut by the response deadline.
 * - Steady: test/slow_upstream_reader.py reads 2 KiB every 20 ms (~100 KB/s), so a 512 KiB upload
 *   takes ~5 s, more than three response deadlines of 1.5 s. Before, the response deadline ran
 *   from the exchange's start and cut it after ~1.5 s (checked: all four failed with
 *   HttpTimeoutError response).
 * - Silent: a node:http / node:http2 server reads the request and never answers: the exchange
 *   fails with HttpTimeoutError response.
 */
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
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
const RESPONSE_TIMEOUT = 1500;
/** ~5 s at the steady upstream's pace: more than three response deadlines. */
const UPLOAD = 512 * 1024;

const protocols = ['h1', 'h2'] as const;
type Protocol = (typeof protocols)[number];

/** One upload of `size` bytes over a new connection of `protocol`: the answer. */
async function upload(
  driver: DriverName,
  protocol: Protocol,
  port: number,
  size: number,
): Promise<{ status: number; text: string }> {
  const stream = await connectTo(driver, port);
  const request = createRequest('POST', '/upload', { body: fixedBody(new Uint8Array(size)) });
  const timeouts = { writeTimeout: 1000, responseTimeout: RESPONSE_TIMEOUT, bodyTimeout: RESPONSE_TIMEOUT };
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

describe.each(drivers)('client response deadline during a slow upload (driver %s)', (driver) => {
  describe.each(protocols)('%s', (protocol) => {
    let steady: SlowUpstream;
    let silent: http.Server | http2.Http2Server;
    let silentPort = 0;

    beforeAll(async () => {
      steady = await startSlowUpstream([
        ...(protocol === 'h2' ? ['--h2'] : []),
        '--step',
        '2048',
        '--interval',
        '20',
      ]);
      // Reads every request to its end and never answers.
      silent =
        protocol === 'h1'
          ? http.createServer((req) => req.resume())
          : http2.createServer().on('stream', (s) => s.resume());
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      silentPort = (silent.address() as AddressInfo).port;
    });
    afterAll(async () => {
      steady?.child.kill();
      if (silent !== undefined) {
        (silent as http.Server).closeAllConnections?.();
        await new Promise<void>((resolve) => silent.close(() => resolve()));
      }
    });

    it('an upload that keeps moving for longer than the response deadline is not cut by it', async () => {
      const started = performance.now();
      const { status, text } = await upload(driver, protocol, steady.port, UPLOAD);
      const ms = performance.now() - started;
      console.log(
        `[${driver} ${protocol}] steady upstream: ${status} ${text} in ${(ms / 1000).toFixed(1)} s`,
      );
      expect(status).toBe(200);
      expect(text).toBe(String(UPLOAD));
      // Only meaningful if the upload took several response deadlines.
      expect(ms).toBeGreaterThan(3 * RESPONSE_TIMEOUT);
    }, 60_000);

    it('an upstream that took the whole request and never answers is cut by the response deadline', async () => {
      const error = await upload(driver, protocol, silentPort, 64 * 1024).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(HttpTimeoutError);
      expect((error as HttpTimeoutError).kind).toBe('response');
    }, 30_000);
  });
});
