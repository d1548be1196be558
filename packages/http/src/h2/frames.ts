/**
 * HTTP/2 frame layout (RFC 9113 §4, §6): frame types, flags, settings and their ranges, the
 * 9-octet frame header, and encoders for every frame type. Encoders either write into a
 * caller-provided buffer at an offset and return the offset after the frame (`write*`, for the
 * small frames a session sends often: PING, WINDOW_UPDATE, RST_STREAM, SETTINGS ack, frame
 * headers in front of DATA it writes itself), or return a new Uint8Array (`encode*`).
 *
 * Not for parsing (frame-decoder.ts) nor for deciding when to send (the session).
 */
import { Http2ConnectionError, Http2ErrorCode } from './errors.js';

/** Frame type codes (RFC 9113 §6). */
export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;
/** One of the {@link FrameType} values. */
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** Frame flags (RFC 9113 §6); ACK and END_STREAM share a bit on different frame types. */
export const FrameFlag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

/** Setting identifiers (RFC 9113 §6.5.2; ENABLE_CONNECT_PROTOCOL from RFC 8441). */
export const SettingId = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
  ENABLE_CONNECT_PROTOCOL: 0x8,
} as const;

/** Octets of a frame header. */
export const FRAME_HEADER_LENGTH = 9;
/** The initial (and smallest allowed) SETTINGS_MAX_FRAME_SIZE. */
export const DEFAULT_MAX_FRAME_SIZE = 16384;
/** The largest allowed SETTINGS_MAX_FRAME_SIZE, 2^24 - 1. */
export const MAX_FRAME_SIZE_LIMIT = 16777215;
/** The largest flow-control window and stream id, 2^31 - 1. */
export const MAX_WINDOW_SIZE = 0x7fffffff;
/** The initial flow-control window of a stream and of the connection. */
export const DEFAULT_INITIAL_WINDOW_SIZE = 65535;
/** The client connection preface (RFC 9113 §3.4), sent before the client's SETTINGS. */
export const CONNECTION_PREFACE: Uint8Array = Uint8Array.from(
  Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'),
);

/** The settings of one endpoint (RFC 9113 §6.5.2). */
export interface Http2Settings {
  headerTableSize: number;
  enablePush: boolean;
  /** Unlimited until set: Infinity. */
  maxConcurrentStreams: number;
  initialWindowSize: number;
  maxFrameSize: number;
  /** Unlimited until set: Infinity. */
  maxHeaderListSize: number;
  enableConnectProtocol: boolean;
}

/** The settings one SETTINGS frame changes; absent ones keep their value. */
export type Http2SettingsUpdate = Partial<Http2Settings>;

/** Every setting's initial value (RFC 9113 §6.5.2). */
export const DEFAULT_SETTINGS: Readonly<Http2Settings> = Object.freeze({
  headerTableSize: 4096,
  enablePush: true,
  maxConcurrentStreams: Number.POSITIVE_INFINITY,
  initialWindowSize: DEFAULT_INITIAL_WINDOW_SIZE,
  maxFrameSize: DEFAULT_MAX_FRAME_SIZE,
  maxHeaderListSize: Number.POSITIVE_INFINITY,
  enableConnectProtocol: false,
});

/** Stream priority of HEADERS and PRIORITY frames (RFC 9113 §5.3.2, deprecated but parsed). */
export interface Http2Priority {
  exclusive: boolean;
  /** The stream this one depends on (0 for the root). */
  dependency: number;
  /** 1..256. */
  weight: number;
}

/**
 * Checks one received setting (RFC 9113 §6.5.2) and applies it to `into`; unknown ids are
 * ignored as the RFC requires. Throws the connection error the RFC names for a value out of range.
 */
export function applySetting(into: Http2SettingsUpdate, id: number, value: number): void {
  switch (id) {
    case SettingId.HEADER_TABLE_SIZE:
      into.headerTableSize = value;
      return;
    case SettingId.ENABLE_PUSH:
      if (value > 1) throw settingError(`SETTINGS_ENABLE_PUSH ${value} is neither 0 nor 1`);
      into.enablePush = value === 1;
      return;
    case SettingId.MAX_CONCURRENT_STREAMS:
      into.maxConcurrentStreams = value;
      return;
    case SettingId.INITIAL_WINDOW_SIZE:
      if (value > MAX_WINDOW_SIZE) {
        throw new Http2ConnectionError(
          'ERR_HTTP2_FLOW_CONTROL_SETTING',
          Http2ErrorCode.FLOW_CONTROL_ERROR,
          `SETTINGS_INITIAL_WINDOW_SIZE ${value} exceeds 2^31 - 1`,
        );
      }
      into.initialWindowSize = value;
      return;
    case SettingId.MAX_FRAME_SIZE:
      if (value < DEFAULT_MAX_FRAME_SIZE || value > MAX_FRAME_SIZE_LIMIT) {
        throw settingError(`SETTINGS_MAX_FRAME_SIZE ${value} outside 16384..16777215`);
      }
      into.maxFrameSize = value;
      return;
    case SettingId.MAX_HEADER_LIST_SIZE:
      into.maxHeaderListSize = value;
      return;
    case SettingId.ENABLE_CONNECT_PROTOCOL:
      if (value > 1) throw settingError(`SETTINGS_ENABLE_CONNECT_PROTOCOL ${value} is neither 0 nor 1`);
      into.enableConnectProtocol = value === 1;
      return;
  }
}

function settingError(message: string): Http2ConnectionError {
  return new Http2ConnectionError('ERR_HTTP2_SETTINGS_VALUE', Http2ErrorCode.PROTOCOL_ERROR, message);
}

/** Writes a frame header at `offset`; returns the offset after it (where the payload goes). */
export function writeFrameHeader(
  buf: Uint8Array,
  offset: number,
  length: number,
  type: number,
  flags: number,
  streamId: number,
): number {
  buf[offset] = length >>> 16;
  buf[offset + 1] = length >>> 8;
  buf[offset + 2] = length;
  buf[offset + 3] = type;
  buf[offset + 4] = flags;
  writeUint31(buf, offset + 5, streamId);
  return offset + FRAME_HEADER_LENGTH;
}

function writeUint31(buf: Uint8Array, offset: number, value: number): void {
  buf[offset] = (value >>> 24) & 0x7f;
  buf[offset + 1] = value >>> 16;
  buf[offset + 2] = value >>> 8;
  buf[offset + 3] = value;
}

function writeUint32(buf: Uint8Array, offset: number, value: number): void {
  buf[offset] = value >>> 24;
  buf[offset + 1] = value >>> 16;
  buf[offset + 2] = value >>> 8;
  buf[offset + 3] = value;
}

function checkStreamId(streamId: number, allowZero: boolean): void {
  if (!Number.isInteger(streamId) || streamId < (allowZero ? 0 : 1) || streamId > MAX_WINDOW_SIZE) {
    throw new RangeError(`invalid stream id ${streamId}`);
  }
}

function checkPadLength(padLength: number): void {
  if (!Number.isInteger(padLength) || padLength < 0 || padLength > 255) {
    throw new RangeError(`pad length ${padLength} outside 0..255`);
  }
}

/** Any frame from its parts (extension frames, tests). */
export function encodeFrame(type: number, flags: number, streamId: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_LENGTH + payload.length);
  writeFrameHeader(out, 0, payload.length, type, flags, streamId);
  out.set(payload, FRAME_HEADER_LENGTH);
  return out;
}

/** Options of {@link encodeData}. */
export interface DataFrameOptions {
  readonly endStream?: boolean;
  /** Padding octets (0..255); sets PADDED. Absent: no padding. */
  readonly padLength?: number;
}

/** A DATA frame (RFC 9113 §6.1). The caller keeps it within the peer's max frame size. */
export function encodeData(streamId: number, data: Uint8Array, options: DataFrameOptions = {}): Uint8Array {
  checkStreamId(streamId, false);
  const padded = options.padLength !== undefined;
  const pad = options.padLength ?? 0;
  checkPadLength(pad);
  const length = data.length + (padded ? 1 + pad : 0);
  const out = new Uint8Array(FRAME_HEADER_LENGTH + length);
  let p = writeFrameHeader(
    out,
    0,
    length,
    FrameType.DATA,
    (options.endStream ? FrameFlag.END_STREAM : 0) | (padded ? FrameFlag.PADDED : 0),
    streamId,
  );
  if (padded) out[p++] = pad;
  out.set(data, p);
  return out;
}

/** Options of {@link encodeHeaders}. */
export interface HeadersFrameOptions {
  readonly endStream?: boolean;
  readonly priority?: Http2Priority;
  /** Padding octets (0..255) of the HEADERS frame; sets PADDED. */
  readonly padLength?: number;
  /** The peer's SETTINGS_MAX_FRAME_SIZE; the block is split into CONTINUATION frames to fit. */
  readonly maxFrameSize?: number;
}

function headersOverhead(options: HeadersFrameOptions): number {
  return (
    (options.padLength !== undefined ? 1 + options.padLength : 0) + (options.priority !== undefined ? 5 : 0)
  );
}

function blockFramesLength(blockLength: number, overhead: number, max: number): number {
  if (overhead > max) throw new RangeError('padding and priority do not fit the frame size');
  const rest = blockLength - Math.min(blockLength, max - overhead);
  const continuations = rest === 0 ? 0 : Math.ceil(rest / max);
  return FRAME_HEADER_LENGTH * (1 + continuations) + overhead + blockLength;
}

/** Octets {@link writeHeaders} writes for a header block of `blockLength` octets. */
export function headersFramesLength(blockLength: number, options: HeadersFrameOptions = {}): number {
  return blockFramesLength(
    blockLength,
    headersOverhead(options),
    options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE,
  );
}

/**
 * Writes a HEADERS frame carrying header block `block`, followed by as many CONTINUATION frames
 * as `maxFrameSize` requires (RFC 9113 §6.2, §6.10; END_HEADERS on the last), at `offset`;
 * returns the offset after them. `buf` needs {@link headersFramesLength} octets from `offset`.
 */
export function writeHeaders(
  buf: Uint8Array,
  offset: number,
  streamId: number,
  block: Uint8Array,
  options: HeadersFrameOptions = {},
): number {
  checkStreamId(streamId, false);
  const padded = options.padLength !== undefined;
  const pad = options.padLength ?? 0;
  checkPadLength(pad);
  const priority = options.priority;
  const overhead = headersOverhead(options);
  const max = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
  if (overhead > max) throw new RangeError('padding and priority do not fit the frame size');
  const first = Math.min(block.length, max - overhead);
  const flags =
    (options.endStream ? FrameFlag.END_STREAM : 0) |
    (padded ? FrameFlag.PADDED : 0) |
    (priority !== undefined ? FrameFlag.PRIORITY : 0) |
    (first === block.length ? FrameFlag.END_HEADERS : 0);
  let p = writeFrameHeader(buf, offset, overhead + first, FrameType.HEADERS, flags, streamId);
  if (padded) buf[p++] = pad;
  if (priority !== undefined) p = writePriorityFields(buf, p, priority);
  buf.set(first === block.length ? block : block.subarray(0, first), p);
  p += first;
  if (padded) {
    buf.fill(0, p, p + pad);
    p += pad;
  }
  return writeContinuations(buf, p, streamId, block, first, max);
}

/** CONTINUATION frames for `block[at..]`, END_HEADERS on the last. */
function writeContinuations(
  buf: Uint8Array,
  p: number,
  streamId: number,
  block: Uint8Array,
  at: number,
  max: number,
): number {
  let rest = block.length - at;
  while (rest > 0) {
    const n = Math.min(rest, max);
    rest -= n;
    p = writeFrameHeader(buf, p, n, FrameType.CONTINUATION, rest === 0 ? FrameFlag.END_HEADERS : 0, streamId);
    buf.set(block.subarray(at, at + n), p);
    p += n;
    at += n;
  }
  return p;
}

/** {@link writeHeaders} into a new array. */
export function encodeHeaders(
  streamId: number,
  block: Uint8Array,
  options: HeadersFrameOptions = {},
): Uint8Array {
  const out = new Uint8Array(headersFramesLength(block.length, options));
  writeHeaders(out, 0, streamId, block, options);
  return out;
}

/**
 * A PUSH_PROMISE frame (RFC 9113 §6.6) plus CONTINUATION frames as needed. Loch never pushes;
 * this exists so tests can send what a misbehaving server would.
 */
export function encodePushPromise(
  streamId: number,
  promisedStreamId: number,
  block: Uint8Array,
  options: { readonly padLength?: number; readonly maxFrameSize?: number } = {},
): Uint8Array {
  checkStreamId(streamId, false);
  checkStreamId(promisedStreamId, false);
  const padded = options.padLength !== undefined;
  const pad = options.padLength ?? 0;
  checkPadLength(pad);
  const overhead = (padded ? 1 + pad : 0) + 4;
  const max = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
  const out = new Uint8Array(blockFramesLength(block.length, overhead, max));
  const first = Math.min(block.length, max - overhead);
  const flags = (padded ? FrameFlag.PADDED : 0) | (first === block.length ? FrameFlag.END_HEADERS : 0);
  let p = writeFrameHeader(out, 0, overhead + first, FrameType.PUSH_PROMISE, flags, streamId);
  if (padded) out[p++] = pad;
  writeUint31(out, p, promisedStreamId);
  p += 4;
  out.set(block.subarray(0, first), p);
  p += first + pad; // padding octets of a new array are zero
  writeContinuations(out, p, streamId, block, first, max);
  return out;
}

/** A CONTINUATION frame on its own (tests; {@link encodeHeaders} emits them itself). */
export function encodeContinuation(streamId: number, fragment: Uint8Array, endHeaders: boolean): Uint8Array {
  return encodeFrame(FrameType.CONTINUATION, endHeaders ? FrameFlag.END_HEADERS : 0, streamId, fragment);
}

function writePriorityFields(out: Uint8Array, p: number, priority: Http2Priority): number {
  checkStreamId(priority.dependency, true);
  if (!Number.isInteger(priority.weight) || priority.weight < 1 || priority.weight > 256) {
    throw new RangeError(`priority weight ${priority.weight} outside 1..256`);
  }
  writeUint31(out, p, priority.dependency);
  if (priority.exclusive) out[p]! |= 0x80;
  out[p + 4] = priority.weight - 1;
  return p + 5;
}

/** A PRIORITY frame (RFC 9113 §6.3). */
export function encodePriority(streamId: number, priority: Http2Priority): Uint8Array {
  checkStreamId(streamId, false);
  const out = new Uint8Array(FRAME_HEADER_LENGTH + 5);
  writePriorityFields(out, writeFrameHeader(out, 0, 5, FrameType.PRIORITY, 0, streamId), priority);
  return out;
}

/** Writes a RST_STREAM frame (RFC 9113 §6.4, 13 octets) at `offset`; returns the offset after it. */
export function writeRstStream(buf: Uint8Array, offset: number, streamId: number, errorCode: number): number {
  const p = writeFrameHeader(buf, offset, 4, FrameType.RST_STREAM, 0, streamId);
  writeUint32(buf, p, errorCode);
  return p + 4;
}

/** A RST_STREAM frame (RFC 9113 §6.4). */
export function encodeRstStream(streamId: number, errorCode: number): Uint8Array {
  checkStreamId(streamId, false);
  const out = new Uint8Array(FRAME_HEADER_LENGTH + 4);
  writeRstStream(out, 0, streamId, errorCode);
  return out;
}

const SETTING_FIELDS: readonly (readonly [keyof Http2Settings, number])[] = [
  ['headerTableSize', SettingId.HEADER_TABLE_SIZE],
  ['enablePush', SettingId.ENABLE_PUSH],
  ['maxConcurrentStreams', SettingId.MAX_CONCURRENT_STREAMS],
  ['initialWindowSize', SettingId.INITIAL_WINDOW_SIZE],
  ['maxFrameSize', SettingId.MAX_FRAME_SIZE],
  ['maxHeaderListSize', SettingId.MAX_HEADER_LIST_SIZE],
  ['enableConnectProtocol', SettingId.ENABLE_CONNECT_PROTOCOL],
];

/**
 * A SETTINGS frame (RFC 9113 §6.5) with the given settings, in a fixed order. Throws RangeError
 * for a value the peer would reject (so we never send a connection error ourselves).
 */
export function encodeSettings(settings: Http2SettingsUpdate): Uint8Array {
  const entries: [number, number][] = [];
  for (const [key, id] of SETTING_FIELDS) {
    const v = settings[key];
    if (v === undefined) continue;
    const value = typeof v === 'boolean' ? (v ? 1 : 0) : v;
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw new RangeError(`setting ${key} = ${value} is not a 32-bit unsigned integer`);
    }
    try {
      applySetting({}, id, value);
    } catch (e) {
      throw new RangeError((e as Error).message);
    }
    entries.push([id, value]);
  }
  const out = new Uint8Array(FRAME_HEADER_LENGTH + 6 * entries.length);
  let p = writeFrameHeader(out, 0, 6 * entries.length, FrameType.SETTINGS, 0, 0);
  for (const [id, value] of entries) {
    out[p] = id >>> 8;
    out[p + 1] = id;
    writeUint32(out, p + 2, value);
    p += 6;
  }
  return out;
}

/** Writes a SETTINGS acknowledgement (9 octets) at `offset`; returns the offset after it. */
export function writeSettingsAck(buf: Uint8Array, offset: number): number {
  return writeFrameHeader(buf, offset, 0, FrameType.SETTINGS, FrameFlag.ACK, 0);
}

/** A SETTINGS acknowledgement. */
export function encodeSettingsAck(): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_LENGTH);
  writeSettingsAck(out, 0);
  return out;
}

/** Writes a PING frame (17 octets) with the 8 octets `data` at `offset`; returns the offset after it. */
export function writePing(buf: Uint8Array, offset: number, data: Uint8Array, ack: boolean): number {
  if (data.length !== 8) throw new RangeError('PING data must be 8 octets');
  const p = writeFrameHeader(buf, offset, 8, FrameType.PING, ack ? FrameFlag.ACK : 0, 0);
  buf.set(data, p);
  return p + 8;
}

/** A PING frame (RFC 9113 §6.7). */
export function encodePing(data: Uint8Array, ack: boolean): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_LENGTH + 8);
  writePing(out, 0, data, ack);
  return out;
}

/** A GOAWAY frame (RFC 9113 §6.8) with optional opaque debug data. */
export function encodeGoaway(lastStreamId: number, errorCode: number, debugData?: Uint8Array): Uint8Array {
  checkStreamId(lastStreamId, true);
  const debug = debugData ?? new Uint8Array(0);
  const out = new Uint8Array(FRAME_HEADER_LENGTH + 8 + debug.length);
  const p = writeFrameHeader(out, 0, 8 + debug.length, FrameType.GOAWAY, 0, 0);
  writeUint31(out, p, lastStreamId);
  writeUint32(out, p + 4, errorCode);
  out.set(debug, p + 8);
  return out;
}

/** Writes a WINDOW_UPDATE frame (13 octets) at `offset`; returns the offset after it. */
export function writeWindowUpdate(
  buf: Uint8Array,
  offset: number,
  streamId: number,
  increment: number,
): number {
  const p = writeFrameHeader(buf, offset, 4, FrameType.WINDOW_UPDATE, 0, streamId);
  writeUint31(buf, p, increment);
  return p + 4;
}

/** A WINDOW_UPDATE frame (RFC 9113 §6.9); the increment must be 1..2^31 - 1. */
export function encodeWindowUpdate(streamId: number, increment: number): Uint8Array {
  checkStreamId(streamId, true);
  if (!Number.isInteger(increment) || increment < 1 || increment > MAX_WINDOW_SIZE) {
    throw new RangeError(`window increment ${increment} outside 1..2^31 - 1`);
  }
  const out = new Uint8Array(FRAME_HEADER_LENGTH + 4);
  writeWindowUpdate(out, 0, streamId, increment);
  return out;
}
