/**
 * The clients' response deadline (`responseTimeout`, the proxy's `upstream_read`) counts from the
 * request's last write, as nginx's proxy_read_timeout starts once the request is sent: an upload
 * to a slow upstream that keeps reading takes longer than the response deadline and is not cut
 * by it (the write deadline, an idle-progress one, is what cuts an upstream that stops reading:
 * client-write-progress.test.ts), for HttpClient (HTTP/1.1) and H2ClientSession (HTTP/2), on every
 * runtime driver, over real sockets. An upstream that took the whole request and never answers
 * is still cut by the response deadline.
 * - Steady: test/slow_upstream_reader.py reads 2 KiB at most every 20 ms (<= 100 KB/s), so a
 *   512 KiB upload takes at least 5.1 s, longer than the response deadline of 4 s. Before, the
 *   response deadline ran from the exchange's start and cut it after one deadline (checked: all
 *   four failed with HttpTimeoutError response). The deadline is not shorter because the tail of
 *   the upload (what sits in the client's send buffer and the upstream's receive buffer at the
 *   last write) is read at the reader's pace after the deadline starts: under load (the
 *   clean-clone CI runs every suite at once) the Python reader slows, and a 1.5 s deadline
 *   once cut that tail.
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
const RESPONSE_TIMEOUT = 4000;
/** At least 5.1 s at the steady upstream's pace (its sleeps are lower bounds): more than one deadline. */
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
  // The write deadline (idle progress) is not what this file tests (client-write-progress.test.ts
  // does): generous, so a reader slowed by load never trips it.
  const timeouts = { writeTimeout: 10_000, responseTimeout: RESPONSE_TIMEOUT, bodyTimeout: RESPONSE_TIMEOUT };
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
      // Only meaningful if the upload took longer than a response deadline (the old deadline,
      // from the exchange's start, cut it at RESPONSE_TIMEOUT).
      expect(ms).toBeGreaterThan(RESPONSE_TIMEOUT);
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
