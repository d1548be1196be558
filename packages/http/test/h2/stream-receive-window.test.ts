/**
 * A stream gets a receive window only when DATA may come on it: a request that ended with its
 * HEADERS (a GET) has none (one object less per request), one with a body has one and is still
 * flow-controlled (a body larger than the stream window arrives whole, credited as it is read).
 * Both drivers, node:http2 (nghttp2) as the client. The stream is looked up inside the server
 * while its handler runs (white-box: the session's stream table).
 */
import * as http2 from 'node:http2';
import { describe, expect, it } from 'vitest';
import { fixedBody, readBody } from '../../src/body.js';
import type { H2ServerStream } from '../../src/h2/stream.js';
import { createResponse } from '../../src/message.js';
import type { HttpServer } from '../../src/server.js';
import { availableDrivers, startServer } from '../server-harness.js';

const drivers = await availableDrivers();

/** The streams of the server's HTTP/2 sessions (its connection set and each session's table). */
function streamsOf(server: HttpServer<unknown>): H2ServerStream[] {
  const live = (server as unknown as { live: Set<{ streams?: Map<number, H2ServerStream> }> }).live;
  return [...live].flatMap((c) => (c.streams === undefined ? [] : [...c.streams.values()]));
}

describe.each(drivers)('HTTP/2 stream receive windows (%s)', (driver) => {
  it('a request without a body gets none; one with a body gets one and is read whole', async () => {
    const seen: { method: string; window: boolean; bytes: number }[] = [];
    let server: HttpServer<unknown> | undefined;
    const running = await startServer(
      driver,
      {},
      {
        async call(req) {
          const [s] = streamsOf(server!);
          const window = s !== undefined && s.recv !== null;
          const body = await readBody(req.body);
          seen.push({ method: req.method, window, bytes: body.length });
          return createResponse(200, { body: fixedBody(String(body.length)) });
        },
      },
    );
    server = running.server as unknown as HttpServer<unknown>;
    const client = http2.connect(`http://127.0.0.1:${running.port}`);
    const ask = (method: string, body: Buffer | null) =>
      new Promise<string>((resolve, reject) => {
        const req = client.request({ ':path': '/', ':method': method }, { endStream: body === null });
        let text = '';
        req.setEncoding('latin1');
        req.on('data', (d: string) => {
          text += d;
        });
        req.on('end', () => resolve(text));
        req.on('error', reject);
        if (body !== null) req.end(body);
      });
    try {
      // One at a time, so the session holds only the stream asked about.
      expect(await ask('GET', null)).toBe('0');
      // Three times the default stream window (65,535): WINDOW_UPDATEs must flow.
      expect(await ask('POST', Buffer.alloc(200_000, 0x61))).toBe('200000');
      expect(await ask('GET', null)).toBe('0');
    } finally {
      client.close();
      await running.stop();
    }
    expect(seen).toEqual([
      { method: 'GET', window: false, bytes: 0 },
      { method: 'POST', window: true, bytes: 200_000 },
      { method: 'GET', window: false, bytes: 0 },
    ]);
    expect(running.errors).toEqual([]);
  });
});
