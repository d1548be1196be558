/**
 * HTTP/2 flow control at loch's own listener, end to end on every available driver (issue 14's
 * safety rule "DATA on reset streams still credits the connection window"): a raw h2c client
 * (@loch/http's RawH2Client) sends requests loch refuses at once (413: their content-length is
 * over the route's max_body_size), each followed by a whole stream window of DATA already on its
 * way, until loch's whole connection window (1 MiB) went to streams it reset; loch must still
 * credit it, so a new stream's body reaches the upstream. The same edges against @loch/http's
 * server alone, with the negative window after a SETTINGS decrease, are in
 * packages/http/test/h2/flow-control-edges.test.ts.
 */
import * as http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawH2Client } from '../../../../packages/http/test/h2/raw-h2-client.js';
import { availableDrivers, freePort, type Loch, startLoch, tempDir } from './harness.js';

const drivers = availableDrivers();

/** Octets the client may still send on the connection: the initial 65,535 plus loch's credit. */
function connectionWindow(c: RawH2Client, sent: number): number {
  let w = 65535 - sent;
  for (const f of c.frames) if (f.t === 'window' && f.streamId === 0) w += f.increment;
  return w;
}

/** `total` octets as DATA frames of at most 16,384 on `streamId`, END_STREAM on the last. */
function dataFrames(c: RawH2Client, streamId: number, total: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let sent = 0; sent < total; ) {
    const n = Math.min(16384, total - sent);
    sent += n;
    out.push(c.data(streamId, Buffer.alloc(n, 0x61), sent === total));
  }
  return out;
}

describe.each(drivers)('h2c client -> loch: DATA on streams loch reset, on the %s driver', (driver) => {
  let loch: Loch;
  let up: http.Server;
  let port: number;
  /** Request body lengths the upstream read. */
  const lengths: number[] = [];
  beforeAll(async () => {
    up = http.createServer((req, res) => {
      let n = 0;
      req.on('data', (b: Buffer) => {
        n += b.length;
      });
      req.on('end', () => {
        lengths.push(n);
        res.end(String(n));
      });
    });
    await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
    port = await freePort();
    loch = await startLoch(
      tempDir('loch-h2-gaps-flow-'),
      `
[runtime]
workers = 1

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }

[[servers.web.routes]]
path = "/small"
max_body_size = 100
upstreams = [{ endpoint = "http://127.0.0.1:${(up.address() as { port: number }).port}" }]

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${(up.address() as { port: number }).port}" }]
`,
      { LOCH_DRIVER: driver },
    );
  });
  afterAll(async () => {
    await loch?.stop();
    up?.closeAllConnections();
    await new Promise((r) => up?.close(r));
  });

  it("loch's whole connection window sent on streams it refused is credited back: a new stream's body gets through", async () => {
    const c = await RawH2Client.connect(port);
    try {
      // loch's SETTINGS and its connection WINDOW_UPDATE came with the preface.
      await c.until((f) => f.t === 'window' && f.streamId === 0);
      const window = connectionWindow(c, 0);
      expect(window).toBeGreaterThanOrEqual(65535);
      // Streams of one stream window (65,535) each until the connection window is used up.
      const perStream = 65535;
      const streams = Math.floor(window / perStream);
      let sent = 0;
      for (let i = 0; i < streams; i++) {
        const id = 1 + 2 * i;
        c.send(
          c.headers(id, '/small', {
            method: 'POST',
            endStream: false,
            extra: [['content-length', String(perStream)]],
          }),
          ...dataFrames(c, id, perStream),
        );
        sent += perStream;
      }
      // Each is refused (413) without its body being read.
      for (let i = 0; i < streams; i++) expect((await c.response(1 + 2 * i))[':status']).toBe('413');
      // Without loch's credit for what it discarded, no well-behaved client could send more.
      const body = 60_000;
      await c.until(() => connectionWindow(c, sent) >= body);
      const id = 1 + 2 * streams;
      c.send(c.headers(id, '/echo', { method: 'POST', endStream: false }), ...dataFrames(c, id, body));
      expect(await c.body(id)).toBe(String(body));
      expect(lengths).toEqual([body]);
      expect(c.frames.some((f) => f.t === 'goaway')).toBe(false);
    } finally {
      c.destroy();
    }
  });
});
