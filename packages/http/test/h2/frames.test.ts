// Frame encoders and the incremental frame decoder: round trips of every frame type, every
// malformed-frame rule of RFC 9113 §4-§6, each fed whole, at every split point and byte by byte.
import { describe, expect, it } from 'vitest';
import { Http2ErrorCode } from '../../src/h2/errors.js';
import { Http2FrameDecoder } from '../../src/h2/frame-decoder.js';
import {
  CONNECTION_PREFACE,
  encodeContinuation,
  encodeData,
  encodeFrame,
  encodeGoaway,
  encodeHeaders,
  encodePing,
  encodePriority,
  encodePushPromise,
  encodeRstStream,
  encodeSettings,
  encodeSettingsAck,
  encodeWindowUpdate,
  FrameFlag,
  FrameType,
  headersFramesLength,
  writeFrameHeader,
  writeHeaders,
  writePing,
  writeRstStream,
  writeSettingsAck,
  writeWindowUpdate,
} from '../../src/h2/frames.js';
import {
  concat,
  type DecodeResult,
  decodeChunks,
  decodeEverySplit,
  FrameRecorder,
} from './frame-recorder.js';

const SETTINGS = encodeSettings({});
const client = { role: 'client' } as const;
const server = { role: 'server' } as const;
const bytes = (...b: number[]) => Uint8Array.from(b);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const ascii = (s: string) => Uint8Array.from(Buffer.from(s, 'latin1'));

/** Decodes SETTINGS + `frames` as a client (no preface), at every split. */
const decode = (...frames: Uint8Array[]): DecodeResult =>
  decodeEverySplit(concat(SETTINGS, ...frames), client);

function expectError(r: DecodeResult, code: string, errorCode: number): void {
  expect(r.error?.code).toBe(code);
  expect(r.error?.errorCode).toBe(errorCode);
}

/** A frame with a hand-made header: for lengths and flags the encoders refuse to produce. */
const raw = (type: number, flags: number, streamId: number, payload: number[] | Uint8Array) =>
  encodeFrame(type, flags, streamId, Uint8Array.from(payload));

describe('frame encoders and decoder round trip', () => {
  it('writes the 9-octet header big-endian, the reserved bit clear', () => {
    const buf = new Uint8Array(12);
    expect(writeFrameHeader(buf, 3, 0x123456, 0x7, 0x25, 0x7fffffff)).toBe(12);
    expect(hex(buf.subarray(3))).toBe('1234560725' + '7fffffff');
  });

  it('SETTINGS with every setting, and its ack', () => {
    const settings = {
      headerTableSize: 0,
      enablePush: false,
      maxConcurrentStreams: 100,
      initialWindowSize: 0x7fffffff,
      maxFrameSize: 16777215,
      maxHeaderListSize: 0xffffffff,
      enableConnectProtocol: true,
    };
    const r = decode(encodeSettings(settings), encodeSettingsAck());
    expect(r.error).toBeNull();
    expect(r.events).toEqual([
      { t: 'settings', settings: {} },
      { t: 'settings', settings },
      { t: 'settingsAck' },
    ]);
  });

  it('DATA plain, padded, empty, with END_STREAM; flow length counts padding', () => {
    const r = decode(
      encodeData(1, ascii('hello')),
      encodeData(3, ascii('padded'), { padLength: 10, endStream: true }),
      encodeData(5, new Uint8Array(0), { endStream: true }),
      encodeData(7, new Uint8Array(0), { padLength: 0, endStream: true }),
    );
    expect(r.error).toBeNull();
    expect(r.events.slice(1)).toEqual([
      { t: 'data', streamId: 1, data: hex(ascii('hello')), endStream: false, flow: 5 },
      { t: 'data', streamId: 3, data: hex(ascii('padded')), endStream: true, flow: 17 },
      { t: 'data', streamId: 5, data: '', endStream: true, flow: 0 },
      { t: 'data', streamId: 7, data: '', endStream: true, flow: 1 },
    ]);
  });

  it('DATA arrives in the pieces fed, as views of the chunk, each frame at least one call', () => {
    const rec = new FrameRecorder();
    const d = new Http2FrameDecoder(rec, client);
    d.feed(SETTINGS);
    const frame = encodeData(1, ascii('abcdef'), { padLength: 2, endStream: true });
    d.feed(frame.subarray(0, 12)); // header, pad length, 'ab'
    d.feed(frame.subarray(12, 16)); // 'cdef'
    d.feed(frame.subarray(16)); // padding only
    expect(rec.events.slice(1)).toEqual([
      { t: 'data', streamId: 1, data: hex(ascii('ab')), endStream: false, flow: 3 },
      { t: 'data', streamId: 1, data: hex(ascii('cdef')), endStream: false, flow: 4 },
      { t: 'data', streamId: 1, data: '', endStream: true, flow: 2 },
    ]);
  });

  it('HEADERS with padding and priority; a long block split into CONTINUATION frames and joined again', () => {
    const block = Uint8Array.from({ length: 40000 }, (_, i) => i & 0xff);
    const frames = encodeHeaders(5, block, {
      endStream: true,
      padLength: 3,
      priority: { exclusive: true, dependency: 3, weight: 256 },
    });
    // 16384 - 9 of block in HEADERS, then two CONTINUATION frames.
    expect(frames.length).toBe(3 * 9 + 1 + 3 + 5 + block.length);
    expect(frames[4]).toBe(FrameFlag.END_STREAM | FrameFlag.PADDED | FrameFlag.PRIORITY);
    const rec = new FrameRecorder();
    const d = new Http2FrameDecoder(rec, client);
    d.feed(concat(SETTINGS, frames));
    expect(rec.events[1]).toEqual({
      t: 'headers',
      streamId: 5,
      block: hex(block),
      endStream: true,
      priority: { exclusive: true, dependency: 3, weight: 256 },
    });
  });

  it('HEADERS + CONTINUATION at every split point', () => {
    const block = ascii('0123456789abcdefghij');
    const r = decode(
      raw(FrameType.HEADERS, 0, 1, block.subarray(0, 5)),
      encodeContinuation(1, block.subarray(5, 5), false),
      encodeContinuation(1, block.subarray(5, 12), false),
      encodeContinuation(1, block.subarray(12), true),
      encodeHeaders(3, block, { maxFrameSize: 16384 }),
    );
    expect(r.error).toBeNull();
    expect(r.events.slice(1)).toEqual([
      { t: 'headers', streamId: 1, block: hex(block), endStream: false, priority: null },
      { t: 'headers', streamId: 3, block: hex(block), endStream: false, priority: null },
    ]);
  });

  it('PRIORITY, RST_STREAM, PING, GOAWAY, WINDOW_UPDATE', () => {
    const r = decode(
      encodePriority(3, { exclusive: false, dependency: 1, weight: 16 }),
      encodeRstStream(3, Http2ErrorCode.CANCEL),
      encodePing(bytes(1, 2, 3, 4, 5, 6, 7, 8), false),
      encodePing(bytes(8, 7, 6, 5, 4, 3, 2, 1), true),
      encodeGoaway(7, Http2ErrorCode.ENHANCE_YOUR_CALM, ascii('slow down')),
      encodeGoaway(0, 0xdeadbeef),
      encodeWindowUpdate(0, 0x7fffffff),
      encodeWindowUpdate(9, 1),
    );
    expect(r.error).toBeNull();
    expect(r.events.slice(1)).toEqual([
      { t: 'priority', streamId: 3, priority: { exclusive: false, dependency: 1, weight: 16 } },
      { t: 'rst', streamId: 3, errorCode: 8 },
      { t: 'ping', data: '0102030405060708', ack: false },
      { t: 'ping', data: '0807060504030201', ack: true },
      { t: 'goaway', lastStreamId: 7, errorCode: 0xb, debug: hex(ascii('slow down')) },
      { t: 'goaway', lastStreamId: 0, errorCode: 0xdeadbeef, debug: '' },
      { t: 'window', streamId: 0, increment: 0x7fffffff },
      { t: 'window', streamId: 9, increment: 1 },
    ]);
  });

  it('write* forms write at an offset and return the end', () => {
    const buf = new Uint8Array(64);
    let p = 2;
    p = writePing(buf, p, bytes(1, 1, 1, 1, 1, 1, 1, 1), true);
    p = writeWindowUpdate(buf, p, 5, 1000);
    p = writeRstStream(buf, p, 5, Http2ErrorCode.STREAM_CLOSED);
    p = writeSettingsAck(buf, p);
    expect(p).toBe(2 + 17 + 13 + 13 + 9);
    const r = decode(buf.subarray(2, p));
    expect(r.events.slice(1)).toEqual([
      { t: 'ping', data: '0101010101010101', ack: true },
      { t: 'window', streamId: 5, increment: 1000 },
      { t: 'rst', streamId: 5, errorCode: 5 },
      { t: 'settingsAck' },
    ]);
  });

  it('writeHeaders writes HEADERS + CONTINUATION into a dirty buffer at an offset, padding zeroed', () => {
    const block = Uint8Array.from({ length: 40 }, (_, i) => i);
    const options = { maxFrameSize: 16384, padLength: 4, endStream: true } as const;
    const n = headersFramesLength(block.length, options);
    const buf = new Uint8Array(n + 10).fill(0xee);
    expect(writeHeaders(buf, 5, 9, block, options)).toBe(5 + n);
    expect(hex(buf.subarray(5, 5 + n))).toBe(hex(encodeHeaders(9, block, options)));
    expect(buf.subarray(5 + n - 4, 5 + n).every((b) => b === 0)).toBe(true);
    expect(buf[4]).toBe(0xee);
    expect(buf[5 + n]).toBe(0xee);
    // Split into CONTINUATION frames: lengths agree with what is written.
    const big = new Uint8Array(40000);
    expect(headersFramesLength(big.length)).toBe(encodeHeaders(1, big).length);
    expect(() => headersFramesLength(10, { padLength: 255, maxFrameSize: 100 })).toThrow(RangeError);
  });

  it('ignores the reserved bits of stream ids and window increments', () => {
    const r = decode(
      raw(FrameType.WINDOW_UPDATE, 0, 0, [0x80, 0, 0, 5]),
      raw(FrameType.RST_STREAM, 0, 1, [0, 0, 0, 8]),
    );
    const frame = raw(FrameType.PING, 0, 0, [0, 0, 0, 0, 0, 0, 0, 0]);
    frame[5] = 0x80; // R bit of the stream id
    const r2 = decode(frame);
    expect(r.events.slice(1)).toEqual([
      { t: 'window', streamId: 0, increment: 5 },
      { t: 'rst', streamId: 1, errorCode: 8 },
    ]);
    expect(r2.error).toBeNull();
  });

  it('skips unknown frame types and unknown settings, unknown flags are ignored', () => {
    const r = decode(
      raw(0xfa, 0xff, 0, [1, 2, 3]),
      raw(0x0b, 0, 7, []),
      raw(FrameType.SETTINGS, 0, 0, [0, 0x99, 0xff, 0xff, 0xff, 0xff, 0, 3, 0, 0, 0, 9]),
      raw(FrameType.PING, 0xfe, 0, [0, 0, 0, 0, 0, 0, 0, 1]),
    );
    expect(r.error).toBeNull();
    expect(r.events.slice(1)).toEqual([
      { t: 'settings', settings: { maxConcurrentStreams: 9 } },
      { t: 'ping', data: '0000000000000001', ack: false },
    ]);
  });
});

describe('connection start', () => {
  it('server: reads the client preface, then the first SETTINGS', () => {
    const r = decodeEverySplit(
      concat(CONNECTION_PREFACE, SETTINGS, encodePing(new Uint8Array(8), false)),
      server,
    );
    expect(r.error).toBeNull();
    expect(r.events.map((e) => e.t)).toEqual(['settings', 'ping']);
  });

  it('server: a bad preface is a PROTOCOL_ERROR', () => {
    const bad = concat(ascii('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), SETTINGS);
    expectError(decodeEverySplit(bad, server), 'ERR_HTTP2_BAD_PREFACE', Http2ErrorCode.PROTOCOL_ERROR);
    const almost = concat(CONNECTION_PREFACE.subarray(0, 23), ascii('X'), SETTINGS);
    expectError(decodeEverySplit(almost, server), 'ERR_HTTP2_BAD_PREFACE', Http2ErrorCode.PROTOCOL_ERROR);
  });

  it('a first frame other than SETTINGS (or a SETTINGS ack) is a PROTOCOL_ERROR', () => {
    for (const first of [encodePing(new Uint8Array(8), false), encodeSettingsAck(), raw(0xfa, 0, 0, [])]) {
      expectError(
        decodeEverySplit(concat(CONNECTION_PREFACE, first), server),
        'ERR_HTTP2_FIRST_FRAME_NOT_SETTINGS',
        Http2ErrorCode.PROTOCOL_ERROR,
      );
      expectError(
        decodeEverySplit(first, client),
        'ERR_HTTP2_FIRST_FRAME_NOT_SETTINGS',
        Http2ErrorCode.PROTOCOL_ERROR,
      );
    }
  });
});

describe('malformed frames (RFC 9113 §4.2, §6)', () => {
  const P = Http2ErrorCode.PROTOCOL_ERROR;
  const F = Http2ErrorCode.FRAME_SIZE_ERROR;

  it('a frame above SETTINGS_MAX_FRAME_SIZE is a FRAME_SIZE_ERROR, checked before its payload arrives', () => {
    const big = encodeData(1, new Uint8Array(16385));
    expectError(decodeChunks([SETTINGS, big.subarray(0, 9)], client), 'ERR_HTTP2_FRAME_TOO_LARGE', F);
    const rec = new FrameRecorder();
    const d = new Http2FrameDecoder(rec, { role: 'client', maxFrameSize: 20000 });
    d.feed(concat(SETTINGS, big));
    expect(rec.events.at(-1)).toMatchObject({ t: 'data', endStream: false, flow: 16385 });
    d.setMaxFrameSize(16384);
    expect(() => d.feed(big)).toThrow(expect.objectContaining({ code: 'ERR_HTTP2_FRAME_TOO_LARGE' }));
    expect(() => new Http2FrameDecoder(rec, client).setMaxFrameSize(16383)).toThrow(RangeError);
  });

  it('frames that need a stream on stream 0, and connection frames on a stream', () => {
    for (const frame of [
      raw(FrameType.DATA, 0, 0, [1]),
      raw(FrameType.HEADERS, FrameFlag.END_HEADERS, 0, [0x82]),
      raw(FrameType.PRIORITY, 0, 0, [0, 0, 0, 1, 0]),
      raw(FrameType.RST_STREAM, 0, 0, [0, 0, 0, 0]),
      raw(FrameType.CONTINUATION, FrameFlag.END_HEADERS, 0, []),
      raw(FrameType.SETTINGS, FrameFlag.ACK, 1, []),
      raw(FrameType.PING, 0, 1, [0, 0, 0, 0, 0, 0, 0, 0]),
      raw(FrameType.GOAWAY, 0, 1, [0, 0, 0, 0, 0, 0, 0, 0]),
    ]) {
      expectError(decode(frame), 'ERR_HTTP2_STREAM_ID', P);
    }
  });

  it('padding: PADDED without a pad length is a FRAME_SIZE_ERROR, padding too long a PROTOCOL_ERROR', () => {
    expectError(decode(raw(FrameType.DATA, FrameFlag.PADDED, 1, [])), 'ERR_HTTP2_FRAME_SIZE', F);
    expectError(decode(raw(FrameType.DATA, FrameFlag.PADDED, 1, [1])), 'ERR_HTTP2_PADDING', P);
    expectError(decode(raw(FrameType.DATA, FrameFlag.PADDED, 1, [3, 0, 0])), 'ERR_HTTP2_PADDING', P);
    expect(decode(raw(FrameType.DATA, FrameFlag.PADDED, 1, [2, 0, 0])).error).toBeNull();
    const H = FrameFlag.END_HEADERS;
    expectError(decode(raw(FrameType.HEADERS, H | FrameFlag.PADDED, 1, [])), 'ERR_HTTP2_FRAME_SIZE', F);
    expectError(decode(raw(FrameType.HEADERS, H | FrameFlag.PADDED, 1, [2, 0x82])), 'ERR_HTTP2_PADDING', P);
    expectError(
      decode(raw(FrameType.HEADERS, H | FrameFlag.PADDED | FrameFlag.PRIORITY, 1, [1, 0, 0, 0, 3, 9])),
      'ERR_HTTP2_PADDING',
      P,
    );
    expectError(
      decode(raw(FrameType.HEADERS, H | FrameFlag.PRIORITY, 1, [0, 0, 0, 3])),
      'ERR_HTTP2_FRAME_SIZE',
      F,
    );
    expect(decode(raw(FrameType.HEADERS, H | FrameFlag.PADDED, 1, [1, 0])).events[1]).toMatchObject({
      block: '',
    });
  });

  it('fixed lengths: RST_STREAM 4, PING 8, WINDOW_UPDATE 4, GOAWAY at least 8, SETTINGS a multiple of 6, ack empty', () => {
    expectError(decode(raw(FrameType.RST_STREAM, 0, 1, [0, 0, 0])), 'ERR_HTTP2_FRAME_SIZE', F);
    expectError(decode(raw(FrameType.RST_STREAM, 0, 1, [0, 0, 0, 0, 0])), 'ERR_HTTP2_FRAME_SIZE', F);
    expectError(decode(raw(FrameType.PING, 0, 0, [0, 0, 0, 0, 0, 0, 0])), 'ERR_HTTP2_FRAME_SIZE', F);
    expectError(decode(raw(FrameType.PING, 0, 0, new Uint8Array(9))), 'ERR_HTTP2_FRAME_SIZE', F);
    expectError(decode(raw(FrameType.WINDOW_UPDATE, 0, 1, [0, 0, 1])), 'ERR_HTTP2_FRAME_SIZE', F);
    expectError(decode(raw(FrameType.GOAWAY, 0, 0, [0, 0, 0, 0, 0, 0, 0])), 'ERR_HTTP2_FRAME_SIZE', F);
    expectError(decode(raw(FrameType.SETTINGS, 0, 0, [0, 1, 0, 0, 0])), 'ERR_HTTP2_FRAME_SIZE', F);
    expectError(
      decode(raw(FrameType.SETTINGS, FrameFlag.ACK, 0, [0, 1, 0, 0, 0, 0])),
      'ERR_HTTP2_FRAME_SIZE',
      F,
    );
  });

  it('PRIORITY of a wrong length or depending on itself is a stream error; decoding goes on', () => {
    const r = decode(
      raw(FrameType.PRIORITY, 0, 3, [0, 0, 0, 1]),
      raw(FrameType.PRIORITY, 0, 5, [0x80, 0, 0, 5, 0]),
      encodeWindowUpdate(0, 10),
    );
    expect(r.error).toBeNull();
    expect(r.events.slice(1)).toEqual([
      { t: 'streamError', code: 'ERR_HTTP2_FRAME_SIZE', errorCode: F, streamId: 3 },
      { t: 'streamError', code: 'ERR_HTTP2_PRIORITY_SELF_DEPENDENCY', errorCode: P, streamId: 5 },
      { t: 'window', streamId: 0, increment: 10 },
    ]);
  });

  it('HEADERS depending on itself: a stream error first, then the block (HPACK must still see it)', () => {
    const r = decode(
      encodeHeaders(5, bytes(0x82), { priority: { exclusive: false, dependency: 5, weight: 1 } }),
    );
    expect(r.error).toBeNull();
    expect(r.events.slice(1)).toEqual([
      { t: 'streamError', code: 'ERR_HTTP2_PRIORITY_SELF_DEPENDENCY', errorCode: P, streamId: 5 },
      {
        t: 'headers',
        streamId: 5,
        block: '82',
        endStream: false,
        priority: { exclusive: false, dependency: 5, weight: 1 },
      },
    ]);
  });

  it('WINDOW_UPDATE of 0: a connection error on stream 0, a stream error on a stream', () => {
    expectError(decode(raw(FrameType.WINDOW_UPDATE, 0, 0, [0, 0, 0, 0])), 'ERR_HTTP2_WINDOW_UPDATE_ZERO', P);
    const r = decode(raw(FrameType.WINDOW_UPDATE, 0, 3, [0x80, 0, 0, 0]), encodeWindowUpdate(3, 1));
    expect(r.error).toBeNull();
    expect(r.events.slice(1)).toEqual([
      { t: 'streamError', code: 'ERR_HTTP2_WINDOW_UPDATE_ZERO', errorCode: P, streamId: 3 },
      { t: 'window', streamId: 3, increment: 1 },
    ]);
  });

  it('SETTINGS values out of range', () => {
    const setting = (id: number, value: number) =>
      raw(FrameType.SETTINGS, 0, 0, [
        0,
        id,
        value >>> 24,
        (value >>> 16) & 0xff,
        (value >>> 8) & 0xff,
        value & 0xff,
      ]);
    expectError(decode(setting(2, 2)), 'ERR_HTTP2_SETTINGS_VALUE', P);
    expectError(
      decode(setting(4, 0x80000000)),
      'ERR_HTTP2_FLOW_CONTROL_SETTING',
      Http2ErrorCode.FLOW_CONTROL_ERROR,
    );
    expectError(decode(setting(5, 16383)), 'ERR_HTTP2_SETTINGS_VALUE', P);
    expectError(decode(setting(5, 16777216)), 'ERR_HTTP2_SETTINGS_VALUE', P);
    expectError(decode(setting(8, 2)), 'ERR_HTTP2_SETTINGS_VALUE', P);
    // A server must not enable push; a client may.
    expectError(decode(setting(2, 1)), 'ERR_HTTP2_SETTINGS_VALUE', P);
    const r = decodeEverySplit(concat(CONNECTION_PREFACE, SETTINGS, setting(2, 1)), server);
    expect(r.events[1]).toEqual({ t: 'settings', settings: { enablePush: true } });
    expect(decode(setting(4, 0x7fffffff), setting(5, 16777215)).error).toBeNull();
    expect(() => encodeSettings({ maxFrameSize: 100 })).toThrow(RangeError);
    expect(() => encodeSettings({ initialWindowSize: 2 ** 31 })).toThrow(RangeError);
  });

  it('PUSH_PROMISE: rejected by a server and by a client that disabled push; decoded when accepted', () => {
    const push = encodePushPromise(1, 2, bytes(0x82, 0x84), { padLength: 2 });
    expectError(
      decodeEverySplit(concat(CONNECTION_PREFACE, SETTINGS, push), server),
      'ERR_HTTP2_PUSH_PROMISE_REJECTED',
      P,
    );
    expectError(decode(push), 'ERR_HTTP2_PUSH_PROMISE_REJECTED', P);
    const accepting = { role: 'client', acceptPushPromise: true } as const;
    const r = decodeEverySplit(concat(SETTINGS, push), accepting);
    expect(r.error).toBeNull();
    expect(r.events.slice(1)).toEqual([{ t: 'push', streamId: 1, promised: 2, block: '8284' }]);
    const long = encodePushPromise(1, 4, new Uint8Array(20000).fill(0x82));
    expect(decodeChunks([SETTINGS, long], accepting).events.slice(1)).toEqual([
      { t: 'push', streamId: 1, promised: 4, block: '82'.repeat(20000) },
    ]);
    expectError(
      decodeEverySplit(
        concat(SETTINGS, raw(FrameType.PUSH_PROMISE, FrameFlag.END_HEADERS, 1, [0, 0, 2])),
        accepting,
      ),
      'ERR_HTTP2_FRAME_SIZE',
      F,
    );
    expectError(
      decodeEverySplit(
        concat(
          SETTINGS,
          raw(FrameType.PUSH_PROMISE, FrameFlag.END_HEADERS | FrameFlag.PADDED, 1, [2, 0, 0, 0, 2, 0]),
        ),
        accepting,
      ),
      'ERR_HTTP2_PADDING',
      P,
    );
  });
});

describe('CONTINUATION rules (RFC 9113 §6.10)', () => {
  const P = Http2ErrorCode.PROTOCOL_ERROR;
  const open = raw(FrameType.HEADERS, 0, 1, [0x82]);

  it('any other frame inside a header block is a PROTOCOL_ERROR, unknown types included', () => {
    for (const next of [
      encodePing(new Uint8Array(8), false),
      encodeData(1, bytes(1)),
      encodeHeaders(3, bytes(0x82)),
      raw(0xfa, 0, 0, []),
      encodeSettingsAck(),
    ]) {
      expectError(decode(open, next), 'ERR_HTTP2_CONTINUATION_EXPECTED', P);
    }
  });

  it('CONTINUATION of another stream, or with no open block, is a PROTOCOL_ERROR', () => {
    expectError(decode(open, encodeContinuation(3, bytes(0x84), true)), 'ERR_HTTP2_CONTINUATION_EXPECTED', P);
    expectError(decode(encodeContinuation(1, bytes(0x84), true)), 'ERR_HTTP2_UNEXPECTED_CONTINUATION', P);
    expectError(
      decode(encodeHeaders(1, bytes(0x82)), encodeContinuation(1, bytes(0x84), true)),
      'ERR_HTTP2_UNEXPECTED_CONTINUATION',
      P,
    );
  });

  it('a CONTINUATION flood is cut at maxHeaderBlockSize, empty frames included (ENHANCE_YOUR_CALM)', () => {
    const options = { role: 'client', maxHeaderBlockSize: 1000 } as const;
    const empty = encodeContinuation(1, new Uint8Array(0), false);
    // 9 + 1 for the HEADERS, then 9 per empty CONTINUATION: the 111th crosses 1000.
    const flood = concat(SETTINGS, open, ...Array.from({ length: 200 }, () => empty));
    const r = decodeChunks([flood], options);
    expect(r.error?.code).toBe('ERR_HTTP2_HEADER_BLOCK_TOO_LARGE');
    expect(r.error?.errorCode).toBe(Http2ErrorCode.ENHANCE_YOUR_CALM);
    expect(r.events.length).toBe(1);
    const fat = concat(SETTINGS, open, encodeContinuation(1, new Uint8Array(1000), true));
    expect(decodeChunks([fat], options).error?.code).toBe('ERR_HTTP2_HEADER_BLOCK_TOO_LARGE');
    // Exactly at the bound is fine.
    const fits = concat(SETTINGS, open, encodeContinuation(1, new Uint8Array(1000 - 10 - 9), true));
    expect(decodeChunks([fits], options).error).toBeNull();
  });

  it('the default bound admits a 64 KiB block in 16 KiB frames', () => {
    const frames = encodeHeaders(1, new Uint8Array(65536).fill(0x82));
    const r = decodeChunks([SETTINGS, frames], client);
    expect(r.error).toBeNull();
    const tooMuch = encodeHeaders(1, new Uint8Array(65536 + 100).fill(0x82));
    expect(decodeChunks([SETTINGS, tooMuch], client).error?.code).toBe('ERR_HTTP2_HEADER_BLOCK_TOO_LARGE');
  });
});
