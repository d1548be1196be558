/**
 * @loch/http/h2: HTTP/2's wire codec and server session, for tool builders (a frame fuzzer, a
 * protocol gateway, a test peer that sends what no client would): frame encoders and the
 * incremental frame decoder, HPACK with Huffman, the RFC 9113 §8 field checks, typed errors,
 * and the server session the HttpServer runs for h2 and h2c connections. Applications use the
 * package root (HttpServer's `http2` option).
 */
export type { Http2RefusedReason } from './client-errors.js';
export { Http2RequestRefusedError, Http2SessionError } from './client-errors.js';
export type { Http2ClientLimits, Http2ClientOptions } from './client-session.js';
export { H2ClientSession } from './client-session.js';
export type {
  Http2ConnectionErrorReason,
  Http2StreamErrorReason,
} from './errors.js';
export { Http2ConnectionError, Http2ErrorCode, Http2StreamError, http2ErrorCodeName } from './errors.js';
export type { FieldBlockKind } from './field-validator.js';
export { FieldBlockValidator } from './field-validator.js';
export { FloodCounter } from './flood-limits.js';
export { ReceiveWindow } from './flow-control.js';
export type { Http2FrameDecoderOptions, Http2FrameHandler } from './frame-decoder.js';
export { Http2FrameDecoder } from './frame-decoder.js';
export type {
  DataFrameOptions,
  HeadersFrameOptions,
  Http2Priority,
  Http2Settings,
  Http2SettingsUpdate,
} from './frames.js';
export {
  applySetting,
  CONNECTION_PREFACE,
  DEFAULT_INITIAL_WINDOW_SIZE,
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_SETTINGS,
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
  FRAME_HEADER_LENGTH,
  FrameFlag,
  FrameType,
  headersFramesLength,
  MAX_FRAME_SIZE_LIMIT,
  MAX_WINDOW_SIZE,
  SettingId,
  writeFrameHeader,
  writeHeaders,
  writePing,
  writeRstStream,
  writeSettingsAck,
  writeWindowUpdate,
} from './frames.js';
export type { HpackDecoderOptions, HpackFieldSink } from './hpack-decoder.js';
export { HpackDecoder } from './hpack-decoder.js';
export type { HpackEncoderOptions } from './hpack-encoder.js';
export { HpackEncoder } from './hpack-encoder.js';
export type { HpackEvictionListener } from './hpack-table.js';
export { HPACK_ENTRY_OVERHEAD, HpackDynamicTable, STATIC_TABLE, STATIC_TABLE_LENGTH } from './hpack-table.js';
export {
  huffmanDecode,
  huffmanEncode,
  huffmanEncodeBytes,
  huffmanEncodedLength,
  huffmanEncodedLengthOfBytes,
  huffmanEncodeToBytes,
  huffmanMaxDecodedLength,
} from './huffman.js';
export type { Http2ServerLimits, ResolvedHttp2Limits } from './limits.js';
export { resolveHttp2Limits } from './limits.js';
export { H2RequestBody } from './request-body.js';
export { H2ServerSession } from './server-session.js';
export { H2ServerShared } from './server-shared.js';
export { H2ServerStream, StreamWait } from './stream.js';
export { Http2StreamResetError } from './stream-reset-error.js';
