/**
 * gRPC calls whose upstream fails after the response head was passed on, end to end on every
 * available driver (issue 14: "upstream failures answered as gRPC errors with the right
 * status"): h2c clients -> loch (`upstream_read = 800ms`) -> an h2c upstream. Where the relay
 * stands between two gRPC messages, loch ends the client's stream with trailers (one HEADERS
 * frame with END_STREAM) instead of a reset: `grpc-status: 4` DEADLINE_EXCEEDED for a timeout
 * (upstream_read, or the call's shorter grpc-timeout, named in grpc-message), what gRPC maps an
 * upstream RST_STREAM code to (INTERNAL_ERROR 13, CANCEL 1, ENHANCE_YOUR_CALM 8), UNAVAILABLE 14
 * for a lost upstream connection. Mid-message the stream is still reset (RST_STREAM
 * INTERNAL_ERROR): trailers would hand the client a truncated message. The upstream's stream is
 * reset (CANCEL) on a timeout as before; an HTTP/1.1 upstream's timeout after the head is the same. @grpc/grpc-js peers on both sides for server streaming,
 * bidi and a unary call with a slow upstream; node:http2 for the wire and a raw upstream;
 * HTTP/1.1 clients keep the old cut (not gRPC clients).
 */
import { writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableDrivers, freePort, type Loch, rawExchange, startLoch, tempDir } from './harness.js';

const drivers = availableDrivers();
const { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_NO_ERROR } =
  http2.constants;

const PROTO = `
syntax = "proto3";
package loch.test;
message TickRequest { int32 count = 1; int32 interval_ms = 2; int32 stall_after = 3; int32 stall_ms = 4; }
message Tick { int32 index = 1; string text = 2; }
service Late {
  rpc Ticks (TickRequest) returns (stream Tick);
  rpc Chat (stream Tick) returns (stream Tick);
  rpc Slow (TickRequest) returns (Tick);
}
`;

interface TickRequest {
  count: number;
  interval_ms: number;
  stall_after: number;
  stall_ms: number;
}
interface Tick {
  index: number;
  text: string;
}
type LateClient = grpc.Client & {
  Ticks(req: Partial<TickRequest>): grpc.ClientReadableStream<Tick>;
  Chat(): grpc.ClientDuplexStream<Partial<Tick>, Tick>;
  Slow(
    req: Partial<TickRequest>,
    cb: (err: grpc.ServiceError | null, reply?: Tick) => void,
  ): grpc.ClientUnaryCall;
};

/** One whole gRPC message of 3 payload bytes (what the raw upstream sends first). */
const MESSAGE = Buffer.from([0, 0, 0, 0, 3, 1, 2, 3]);

/** What a raw h2 client saw of one call. */
interface Seen {
  status: unknown;
  data: number;
  trailers: http2.IncomingHttpHeaders | null;
  rstCode: number | undefined;
}

describe.each(drivers)('gRPC failures after the response head, on the %s driver', (driver) => {
  let loch: Loch;
  let server: grpc.Server;
  let raw: http2.Http2Server;
  /** An HTTP/1.1 upstream: a gRPC head and one whole message (chunked), then silence. */
  let h1: http.Server;
  /** loch's server whose upstreams are HTTP/1.1 (h2 client -> loch -> HTTP/1.1 upstream). */
  let h1Port: number;
  let client: LateClient;
  let generic: grpc.Client;
  let port: number;
  /** Upstream calls of the grpc-js server: started, cancelled (reset by loch), open. */
  const calls = { started: 0, cancelled: 0, open: 0 };
  /** The raw upstream's streams as they closed: method and the RST code they ended with. */
  const rawClosed: { method: string; rstCode: number }[] = [];

  beforeAll(async () => {
    const dir = tempDir('loch-grpc-after-head-');
    const file = join(dir, 'late.proto');
    writeFileSync(file, PROTO);
    const pkg = grpc.loadPackageDefinition(
      protoLoader.loadSync(file, { keepCase: true, defaults: true }),
    ) as unknown as { loch: { test: { Late: grpc.ServiceClientConstructor } } };
    const Late = pkg.loch.test.Late;
    const track = (call: { on(event: 'cancelled', f: () => void): unknown }, stop: () => void) => {
      calls.started++;
      calls.open++;
      let open = true;
      const end = () => {
        if (!open) return;
        open = false;
        calls.open--;
        stop();
      };
      call.on('cancelled', () => {
        calls.cancelled++;
        end();
      });
      return end;
    };
    server = new grpc.Server();
    server.addService(Late.service, {
      Ticks(call: grpc.ServerWritableStream<TickRequest, Tick>) {
        const { count, interval_ms, stall_after, stall_ms } = call.request;
        let timer: NodeJS.Timeout | undefined;
        const end = track(call, () => clearTimeout(timer));
        let i = 0;
        const next = () => {
          if (i === count) {
            call.end();
            end();
            return;
          }
          call.write({ index: i, text: 'tick' });
          i++;
          timer = setTimeout(next, stall_after > 0 && i === stall_after ? stall_ms : interval_ms);
        };
        next();
      },
      // Answers each message at once, except one whose text is "stall" (no answer, no end).
      Chat(call: grpc.ServerDuplexStream<Tick, Tick>) {
        const end = track(call, () => {});
        call.on('data', (m: Tick) => {
          if (m.text !== 'stall') call.write({ index: m.index, text: `re: ${m.text}` });
        });
        call.on('end', () => {
          call.end();
          end();
        });
      },
      // Sends its response head at once, its answer after stall_ms.
      Slow(call: grpc.ServerUnaryCall<TickRequest, Tick>, cb: grpc.sendUnaryData<Tick>) {
        let timer: NodeJS.Timeout | undefined;
        const end = track(call, () => clearTimeout(timer));
        call.sendMetadata(new grpc.Metadata());
        timer = setTimeout(() => {
          cb(null, { index: 1, text: 'late' });
          end();
        }, call.request.stall_ms);
      },
    });
    const upPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    // A raw h2c upstream: a head and one whole message, then what the method's name says.
    raw = http2.createServer();
    raw.on('stream', (stream, headers) => {
      const path = String(headers[':path']);
      const method = path.slice(path.lastIndexOf('/') + 1);
      stream.on('error', () => {});
      stream.on('close', () => rawClosed.push({ method, rstCode: stream.rstCode ?? -1 }));
      stream.resume();
      // waitForTrailers: node would otherwise end the stream (END_STREAM) on close(code) once
      // the request ended, instead of sending RST_STREAM with the code.
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      const later = (f: () => void) => stream.write(MESSAGE, () => setTimeout(f, 150));
      switch (method) {
        case 'Stall':
          stream.write(MESSAGE);
          break;
        case 'HalfStall':
          // A whole message and the first 7 of 15 octets of the next, then silence.
          stream.write(Buffer.concat([MESSAGE, Buffer.from([0, 0, 0, 0, 10, 1, 2])]));
          break;
        case 'ResetInternal':
          later(() => stream.close(NGHTTP2_INTERNAL_ERROR));
          break;
        case 'ResetCancel':
          later(() => stream.close(NGHTTP2_CANCEL));
          break;
        case 'ResetCalm':
          later(() => stream.close(NGHTTP2_ENHANCE_YOUR_CALM));
          break;
        case 'Die':
          later(() => stream.session?.destroy());
          break;
        default:
          stream.close(NGHTTP2_INTERNAL_ERROR);
      }
    });
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
    const rawPort = (raw.address() as AddressInfo).port;
    h1 = http.createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/grpc' });
      res.write(MESSAGE);
    });
    await new Promise<void>((r) => h1.listen(0, '127.0.0.1', r));
    const h1UpPort = (h1.address() as AddressInfo).port;
    port = await freePort();
    h1Port = await freePort();
    loch = await startLoch(
      dir,
      `
[runtime]
workers = 1

[servers.grpc]
listener = { type = "socket", value = "127.0.0.1:${port}" }
upstream_http_version = "http2"
timeouts = { upstream_read = "800ms", upstream_connect = "2s" }

[[servers.grpc.routes]]
path = "/loch.test.Late/"
upstreams = [{ endpoint = "http://127.0.0.1:${upPort}" }]

[[servers.grpc.routes]]
path = "/loch.test.Raw/"
upstreams = [{ endpoint = "http://127.0.0.1:${rawPort}" }]

[servers.h1up]
listener = { type = "socket", value = "127.0.0.1:${h1Port}" }
timeouts = { upstream_read = "800ms", upstream_connect = "2s" }

[[servers.h1up.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${h1UpPort}" }]
`,
      { LOCH_DRIVER: driver },
    );
    client = new Late(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as LateClient;
    generic = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  });

  afterAll(async () => {
    client?.close();
    generic?.close();
    await loch?.stop();
    server?.forceShutdown();
    await new Promise((r) => raw?.close(r));
    h1?.closeAllConnections();
    await new Promise((r) => h1?.close(r));
  });

  async function settled(): Promise<void> {
    await expect.poll(() => calls.open, { timeout: 5000, interval: 25 }).toBe(0);
  }

  /** A call of the raw upstream's `method` over node:http2 (to loch's `to` port): what came back. */
  function rawCall(method: string, extra: http2.OutgoingHttpHeaders = {}, to = port): Promise<Seen> {
    const session = http2.connect(`http://127.0.0.1:${to}`);
    session.on('error', () => {});
    return new Promise<Seen>((resolve) => {
      const req = session.request({
        ':method': 'POST',
        ':path': `/loch.test.Raw/${method}`,
        'content-type': 'application/grpc',
        te: 'trailers',
        ...extra,
      });
      const seen: Seen = { status: undefined, data: 0, trailers: null, rstCode: undefined };
      req.on('response', (h) => {
        seen.status = h[':status'];
      });
      req.on('data', (b: Buffer) => {
        seen.data += b.length;
      });
      req.on('trailers', (t) => {
        seen.trailers = t;
      });
      req.on('error', () => {});
      req.on('close', () => {
        seen.rstCode = req.rstCode;
        session.close();
        resolve(seen);
      });
      req.end(Buffer.from([0, 0, 0, 0, 0]));
    });
  }

  /** A server-streaming call of the raw upstream's `method` through grpc-js: its final status. */
  function genericCall(method: string): Promise<{ messages: number; status: grpc.StatusObject }> {
    return new Promise((resolve) => {
      let messages = 0;
      const call = generic.makeServerStreamRequest(
        `/loch.test.Raw/${method}`,
        () => Buffer.alloc(0),
        (b: Buffer) => b,
        {},
        new grpc.Metadata(),
        {},
      );
      call.on('data', () => messages++);
      call.on('error', () => {});
      call.on('status', (status) => resolve({ messages, status }));
    });
  }

  it('server streaming: an answer silent past upstream_read after its first message ends DEADLINE_EXCEEDED (grpc-js)', async () => {
    await settled();
    const before = { ...calls };
    const call = client.Ticks({ count: 3, interval_ms: 1, stall_after: 1, stall_ms: 5000 });
    let messages = 0;
    call.on('data', () => messages++);
    call.on('error', () => {});
    const status = await new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    expect(messages).toBe(1);
    expect(status.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(status.details).toContain('upstream_read (800 ms)');
    // The upstream's call is reset as before.
    await expect.poll(() => calls.cancelled - before.cancelled, { timeout: 5000 }).toBe(1);
    await settled();
  });

  it('bidi: a reply that does not come within upstream_read ends the call DEADLINE_EXCEEDED after the earlier replies (grpc-js)', async () => {
    await settled();
    const before = { ...calls };
    const call = client.Chat();
    call.on('error', () => {});
    const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    const replies: string[] = [];
    call.on('data', (m: Tick) => replies.push(m.text));
    for (let i = 0; i < 2; i++) {
      const reply = new Promise<void>((resolve) => call.once('data', () => resolve()));
      call.write({ index: i, text: `m${i}` });
      await reply;
    }
    call.write({ index: 2, text: 'stall' });
    const st = await status;
    expect(replies).toEqual(['re: m0', 're: m1']);
    expect(st.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await expect.poll(() => calls.cancelled - before.cancelled, { timeout: 5000 }).toBe(1);
    await settled();
  });

  it('unary: an upstream that sent its head and is slower than upstream_read ends DEADLINE_EXCEEDED (grpc-js)', async () => {
    await settled();
    const before = { ...calls };
    const err = await new Promise<grpc.ServiceError | null>((resolve) =>
      client.Slow({ stall_ms: 5000 }, (e) => resolve(e)),
    );
    expect(err?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(err?.details).toContain('ERR_LOCH_UPSTREAM_TIMEOUT');
    await expect.poll(() => calls.cancelled - before.cancelled, { timeout: 5000 }).toBe(1);
    await settled();
  });

  it('on the wire: the cut between messages is one trailers HEADERS frame with END_STREAM, grpc-status 4, and the upstream stream is reset with CANCEL', async () => {
    const closedBefore = rawClosed.length;
    const seen = await rawCall('Stall');
    expect(seen.status).toBe(200);
    expect(seen.data).toBe(MESSAGE.length);
    expect(seen.trailers?.['grpc-status']).toBe('4');
    expect(seen.trailers?.['grpc-message']).toBe(
      'upstream timeout after the response head: no response data within upstream_read (800 ms) (ERR_LOCH_UPSTREAM_TIMEOUT)',
    );
    // Ended by END_STREAM, not reset.
    expect(seen.rstCode).toBe(NGHTTP2_NO_ERROR);
    await expect.poll(() => rawClosed.length - closedBefore, { timeout: 5000 }).toBe(1);
    expect(rawClosed.at(-1)).toEqual({ method: 'Stall', rstCode: NGHTTP2_CANCEL });
  });

  it('on the wire: the same from an HTTP/1.1 upstream (chunked answer, then silence): trailers grpc-status 4', async () => {
    const seen = await rawCall('Stall', {}, h1Port);
    expect(seen.status).toBe(200);
    expect(seen.data).toBe(MESSAGE.length);
    expect(seen.trailers?.['grpc-status']).toBe('4');
    expect(seen.trailers?.['grpc-message']).toContain('upstream_read (800 ms)');
    expect(seen.rstCode).toBe(NGHTTP2_NO_ERROR);
  });

  it("on the wire: the call's shorter grpc-timeout is the one named", async () => {
    const seen = await rawCall('Stall', { 'grpc-timeout': '300m' });
    expect(seen.data).toBe(MESSAGE.length);
    expect(seen.trailers?.['grpc-status']).toBe('4');
    expect(seen.trailers?.['grpc-message']).toContain('within grpc-timeout (300 ms)');
  });

  it('on the wire: mid-message the stream is reset (RST_STREAM INTERNAL_ERROR), never ended with trailers', async () => {
    const seen = await rawCall('HalfStall');
    expect(seen.status).toBe(200);
    expect(seen.data).toBe(MESSAGE.length + 7);
    expect(seen.trailers).toBeNull();
    expect(seen.rstCode).toBe(NGHTTP2_INTERNAL_ERROR);
  });

  it("on the wire: an upstream's RST_STREAM INTERNAL_ERROR after a message ends with grpc-status 13 naming it", async () => {
    const seen = await rawCall('ResetInternal');
    expect(seen.data).toBe(MESSAGE.length);
    expect(seen.trailers?.['grpc-status']).toBe('13');
    expect(seen.trailers?.['grpc-message']).toBe(
      'upstream reset the stream after the response head (INTERNAL_ERROR)',
    );
    expect(seen.rstCode).toBe(NGHTTP2_NO_ERROR);
  });

  it('grpc-js sees what gRPC maps the upstream reset to (CANCEL -> CANCELLED, ENHANCE_YOUR_CALM -> RESOURCE_EXHAUSTED), and a lost upstream connection as UNAVAILABLE', async () => {
    for (const [method, code] of [
      ['ResetCancel', grpc.status.CANCELLED],
      ['ResetCalm', grpc.status.RESOURCE_EXHAUSTED],
      ['Die', grpc.status.UNAVAILABLE],
    ] as const) {
      const got = await genericCall(method);
      expect(got.messages, method).toBe(1);
      expect(got.status.code, method).toBe(code);
    }
  });

  it('an HTTP/1.1 client (not a gRPC client) keeps the cut: no trailers, the connection closed without the last chunk', async () => {
    const got = await rawExchange(
      port,
      Buffer.concat([
        Buffer.from(
          'POST /loch.test.Raw/Stall HTTP/1.1\r\nhost: x\r\ncontent-type: application/grpc\r\ncontent-length: 5\r\n\r\n',
        ),
        Buffer.from([0, 0, 0, 0, 0]),
      ]),
      5000,
    );
    expect(got).toMatch(/^HTTP\/1\.1 200/);
    expect(got).not.toContain('grpc-status');
    expect(got).not.toMatch(/\r\n0\r\n/);
  });
});
