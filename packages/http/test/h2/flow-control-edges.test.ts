/**
 * Two flow-control edges of the HTTP/2 server (RFC 9113 §6.9), against hand-made frame
 * sequences over real sockets (RawH2Client), on every driver this process can load:
 * - DATA on a stream that was reset (by the server for a malformed body while the client's DATA
 *   was in flight, or by the client itself) still counts against and is credited back to the
 *   connection window (§6.9: "MUST always account for its contribution"), so the connection does
 *   not stall: the test sends the whole connection window on the reset stream, then waits for the
 *   credit before a new stream sends its body.
 * - A SETTINGS_INITIAL_WINDOW_SIZE decrease makes a stream's send window negative (§6.9.2): no
 *   DATA until WINDOW_UPDATEs bring it above zero again, then exactly what they allow; new
 *   streams start at the new size; the response completes byte for byte.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { fixedBody, readBody } from '../../src/body.js';
import type { HttpConnectionContext } from '../../src/context.js';
import { Http2ErrorCode } from '../../src/h2/errors.js';
import { encodePing, encodeRstStream, encodeSettings, encodeWindowUpdate } from '../../src/h2/frames.js';
import { createResponse } from '../../src/message.js';
import type { HttpHandler } from '../../src/server.js';
import { availableDrivers, type InProcess, startServer } from '../server-harness.js';
import { RawH2Client } from './raw-h2-client.js';

const drivers = await availableDrivers();

/** The /big answer: 200,000 bytes of a pattern that shows a misplaced or lost octet. */
const BIG = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7 + (i >>> 8)) & 0xff));

/** Handlers: /read answers the request body's length; /hang never reads it; /big answers BIG. */
function handler(gate: Promise<void>): HttpHandler<HttpConnectionContext> {
  return {
    async call(req) {
      switch (req.target) {
        case '/read':
          return createResponse(200, { body: fixedBody(String((await readBody(req.body)).length)) });
        case '/hang':
          await gate;
          return createResponse(200, { body: fixedBody('late') });
        case '/big':
          return createResponse(200, { body: fixedBody(BIG) });
        default:
          return createResponse(404, { body: fixedBody('not found') });
      }
    },
  };
}

/** Sum of the WINDOW_UPDATE increments the server sent for `streamId`. */
function credited(c: RawH2Client, streamId: number): number {
  let sum = 0;
  for (const f of c.frames) if (f.t === 'window' && f.streamId === streamId) sum += f.increment;
  return sum;
}

/** Body octets received on `streamId` so far. */
function received(c: RawH2Client, streamId: number): number {
  let n = 0;
  for (const b of c.bodies.get(streamId) ?? []) n += b.length;
  return n;
}

let pings = 0;
/** A PING round trip: everything the server sent before answering it has arrived. */
async function roundTrip(c: RawH2Client): Promise<void> {
  const data = Buffer.alloc(8);
  data.writeUInt32BE(++pings, 4);
  const hex = data.toString('hex');
  c.send(encodePing(data, false));
  await c.until((f) => f.t === 'ping' && f.ack && f.data === hex);
}

/** `total` octets as DATA frames of at most 16,384 on `streamId`, END_STREAM on the last if `end`. */
function dataFrames(c: RawH2Client, streamId: number, total: number, end: boolean): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let sent = 0; sent < total; ) {
    const n = Math.min(16384, total - sent);
    sent += n;
    out.push(c.data(streamId, Buffer.alloc(n, 0x61), end && sent === total));
  }
  return out;
}

describe.each(drivers)('HTTP/2 flow-control edges on the %s driver', (driver) => {
  let srv: InProcess | null = null;
  let release: () => void = () => {};
  const clients: RawH2Client[] = [];

  /** A server whose connection and stream receive windows are both 65,535 (no extra credit). */
  async function start(): Promise<number> {
    const gate = new Promise<void>((r) => {
      release = r;
    });
    srv = await startServer(
      driver,
      { http2: { connectionWindowSize: 65535, initialWindowSize: 65535 } },
      handler(gate),
    );
    return srv.port;
  }

  async function connect(port: number, settings = {}): Promise<RawH2Client> {
    const c = await RawH2Client.connect(port, settings);
    clients.push(c);
    return c;
  }

  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    release();
    await srv?.stop();
    srv = null;
  });

  /**
   * After 65,535 octets on a reset stream (the whole connection window): waits for the
   * server's connection credit, then sends a 60,000-octet body on stream 3 and expects it read.
   */
  async function newStreamStillGetsItsBody(c: RawH2Client): Promise<void> {
    const body = 60_000;
    // A well-behaved client sends no more than the connection window allows.
    await c.until(() => credited(c, 0) >= body);
    c.send(c.headers(3, '/read', { method: 'POST', endStream: false }), ...dataFrames(c, 3, body, true));
    expect(await c.body(3)).toBe(String(body));
    expect(c.frames.some((f) => f.t === 'goaway')).toBe(false);
  }

  it('DATA in flight on a stream the server reset (malformed body) is credited to the connection window', async () => {
    const c = await connect(await start());
    // content-length 10, then the whole connection window of DATA: the first frame makes the
    // request malformed (RST_STREAM PROTOCOL_ERROR); the rest was already on its way.
    c.send(
      c.headers(1, '/read', { method: 'POST', endStream: false, extra: [['content-length', '10']] }),
      ...dataFrames(c, 1, 65535, false),
    );
    expect(await c.until((f) => f.t === 'rst' && f.streamId === 1)).toMatchObject({
      errorCode: Http2ErrorCode.PROTOCOL_ERROR,
    });
    await newStreamStillGetsItsBody(c);
  });

  it('DATA on a stream the client reset (sent after its RST_STREAM) is credited to the connection window', async () => {
    const c = await connect(await start());
    c.send(
      c.headers(1, '/hang', { method: 'POST', endStream: false }),
      encodeRstStream(1, Http2ErrorCode.CANCEL),
      // A client should not send this (the stream is closed); a server must still count it.
      ...dataFrames(c, 1, 65535, false),
    );
    await newStreamStillGetsItsBody(c);
  });

  it('a SETTINGS_INITIAL_WINDOW_SIZE decrease makes a stream window negative; WINDOW_UPDATEs bring it back; the body completes byte-exact', async () => {
    const c = await connect(await start());
    // Plenty of connection window: only the stream window limits what the server sends.
    c.send(encodeWindowUpdate(0, 1 << 20));
    c.send(c.headers(1, '/big'));
    await c.until(() => received(c, 1) >= 65535);
    await roundTrip(c);
    expect(received(c, 1)).toBe(65535);
    // 65,535 -> 16,384: the stream's window goes from 0 to -49,151.
    const acks = () => c.frames.filter((f) => f.t === 'settingsAck').length;
    const acked = acks();
    c.send(encodeSettings({ initialWindowSize: 16384 }));
    await c.until(() => acks() > acked);
    // Bringing it back to 0 lets nothing through.
    c.send(encodeWindowUpdate(1, 49151));
    await roundTrip(c);
    expect(received(c, 1)).toBe(65535);
    // One octet more: exactly one octet.
    c.send(encodeWindowUpdate(1, 1));
    await c.until(() => received(c, 1) >= 65536);
    await roundTrip(c);
    expect(received(c, 1)).toBe(65536);
    // A new stream starts at the new initial size.
    c.send(c.headers(3, '/big'));
    await c.until(() => received(c, 3) >= 16384);
    await roundTrip(c);
    expect(received(c, 3)).toBe(16384);
    // The rest of both.
    c.send(encodeWindowUpdate(1, BIG.length), encodeWindowUpdate(3, BIG.length));
    await c.body(1);
    await c.body(3);
    expect(Buffer.concat(c.bodies.get(1)!).equals(BIG)).toBe(true);
    expect(Buffer.concat(c.bodies.get(3)!).equals(BIG)).toBe(true);
    expect(c.frames.some((f) => f.t === 'goaway' || f.t === 'rst')).toBe(false);
  });
});
