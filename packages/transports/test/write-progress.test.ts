/**
 * The connectors' write deadline (`writeTimeout`, nginx's proxy_send_timeout) is an idle-progress
 * deadline through the pooled connection too: HttpConnection's exchange stream passes the write
 * progress of the stream below on (@loch/uring-runtime's sentBytes), so HttpClient's deadline
 * (packages/http internal/write-progress.ts) sees bytes move. Against a real upstream that reads
 * request bodies slowly (packages/http/test/slow_upstream_reader.py: a 4 KiB receive buffer and a
 * network's MSS so the client's socket stays full; HTTP/2 windows of 2^31-1), both drivers:
 * - a 1 MiB upload read ~100 KB/s with a 1 s write deadline completes (one write of the body takes
 *   ~10 s; without the pass-through the exchange stream reads as never moving and the upload is
 *   cut after 1 s: checked by removing the getter);
 * - an upload to an upstream that stops reading fails with WriteError ERR_TRANSPORT_WRITE_TIMEOUT
 *   (504), not a read timeout.
 */
import { createRequest, fixedBody, type HttpResponse, readText } from '@loch/http';
import { type Endpoint, endpoint, HttpConnector, UnifiedL4Connector, WriteError } from '@loch/transports';
import { H2Connector } from '@loch/transports/h2';
import { TlsConnector } from '@loch/transports/tls';
import { createRuntime, type Runtime } from '@loch/uring-runtime';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type SlowUpstream, startSlowUpstream } from '../../http/test/slow-upstream.js';
import { driverCases } from './harness.js';

const drivers = await driverCases();
const WRITE_TIMEOUT = 1000;
/** ~10 s at the upstream's pace: ten write deadlines. */
const UPLOAD = 1024 * 1024;

const protocols = ['h1', 'h2c'] as const;

describe.each(drivers)('connector write deadline with slow upstreams ($name driver)', ({ name, skip }) => {
  const run = skip === undefined ? it : it.skip;
  describe.each(protocols)('%s', (protocol) => {
    const h2 = protocol === 'h2c' ? ['--h2'] : [];
    let steady: SlowUpstream;
    let stalled: SlowUpstream;
    let runtime: Runtime;
    let connector: HttpConnector | H2Connector | undefined;

    beforeAll(async () => {
      steady = await startSlowUpstream([...h2, '--step', '2048', '--interval', '20']);
      stalled = await startSlowUpstream([...h2, '--stall-after', '1']);
    });
    afterAll(() => {
      steady?.child.kill();
      stalled?.child.kill();
    });
    beforeEach(async () => {
      if (skip !== undefined) return;
      runtime = await createRuntime({ driver: name, log: () => undefined });
    });
    afterEach(async () => {
      connector?.close();
      connector = undefined;
      await runtime?.close();
    });

    /** One upload of UPLOAD bytes through a new connector with the write deadline. */
    function upload(port: number): Promise<HttpResponse> {
      const l4 = new UnifiedL4Connector({ runtime });
      const options = { writeTimeout: WRITE_TIMEOUT, readTimeout: 60_000 };
      connector =
        protocol === 'h1' ? new HttpConnector(l4, options) : new H2Connector(new TlsConnector(l4), options);
      const key: Endpoint = endpoint({ host: '127.0.0.1', port });
      return connector.request(
        key,
        createRequest('POST', '/upload', { body: fixedBody(new Uint8Array(UPLOAD)) }),
      );
    }

    run(
      'an upload slower than a write per deadline that never stalls for one completes',
      async () => {
        const started = performance.now();
        const response = await upload(steady.port);
        const text = await readText(response.body);
        const ms = performance.now() - started;
        expect(response.status).toBe(200);
        expect(text).toBe(String(UPLOAD));
        // Only meaningful if the upload took several write deadlines.
        expect(ms).toBeGreaterThan(3 * WRITE_TIMEOUT);
      },
      60_000,
    );

    run(
      'an upload to an upstream that stops reading fails with a write timeout (504)',
      async () => {
        const error = await upload(stalled.port).then(
          () => null,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(WriteError);
        expect((error as WriteError).code).toBe('ERR_TRANSPORT_WRITE_TIMEOUT');
        expect((error as WriteError).status).toBe(504);
      },
      60_000,
    );
  });
});
