/**
 * @loch/thrift: Thrift binary and compact protocols, framed, THeader and TTHeader transports,
 * a skipper and message-bounds finder for proxies, and a server core and client over
 * @loch/uring-runtime byte streams.
 */
export { TApplicationException, TApplicationExceptionType } from './application-exception.js';
export {
  ThriftError,
  ThriftProtocolError,
  type ThriftProtocolErrorCode,
  ThriftRpcError,
  type ThriftRpcErrorCode,
  ThriftTransportError,
  type ThriftTransportErrorCode,
} from './errors.js';
export { BINARY_VERSION_1, BinaryReader, BinaryWriter, type BinaryWriterOptions } from './protocol/binary.js';
export {
  COMPACT_PROTOCOL_ID,
  CompactReader,
  CompactWriter,
  type CompactWriterOptions,
} from './protocol/compact.js';
export { createReader, createWriter } from './protocol/factory.js';
export { MessageBoundsFinder, skipValue, sniffProtocol } from './protocol/message-bounds.js';
export {
  messageBodyOffset,
  peekFrameHeader,
  peekMessageHeader,
  peekSeqId,
  readMessageHeader,
  rewriteMessageName,
  rewriteSeqId,
} from './protocol/message-header.js';
export { DEFAULT_MAX_DEPTH, ProtocolReader, type ReaderOptions } from './protocol/reader.js';
export { transcodeMessage } from './protocol/transcode.js';
export {
  type ReadValueOptions,
  readStruct,
  readValue,
  type ThriftField,
  type ThriftList,
  type ThriftMap,
  type ThriftStruct,
  type ThriftValue,
  writeStruct,
  writeValue,
} from './protocol/value.js';
export { joinI64, ProtocolWriter, splitI64 } from './protocol/writer.js';
export {
  type CallOptions,
  ThriftClient,
  type ThriftClientOptions,
  type ThriftResponse,
} from './rpc/client.js';
export { FrameReader, type FrameReaderOptions, RetainedChunk } from './rpc/frame-reader.js';
export { RecvLowWater } from './rpc/recv-low-water.js';
export {
  createReply,
  type ThriftAbortListener,
  type ThriftHandler,
  type ThriftReply,
  type ThriftRequest,
  type ThriftResponder,
  ThriftServer,
  type ThriftServerOptions,
} from './rpc/server.js';
export type {
  ThriftAbortSignal,
  ThriftListener,
  ThriftRecvChunk,
  ThriftRecvTarget,
  ThriftServerStream,
  ThriftStream,
  ThriftWriteTarget,
} from './rpc/stream.js';
export {
  decodeFrame,
  encodeFrame,
  type FrameCodecOptions,
  FrameSplitter,
  frameParts,
  type ReframeOptions,
  reframe,
  setHeaderSeqId,
} from './transport/codec.js';
export {
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_MAX_HEADER_COUNT,
  DEFAULT_MAX_HEADER_SIZE,
  type DetectedFraming,
  detectFraming,
  EMPTY_HEADERS,
  EMPTY_INT_HEADERS,
  type FrameLimits,
  type FrameSpec,
  type FramingName,
  frameSize,
  protocolFromId,
  protocolId,
  THEADER_MAGIC,
  type ThriftFrame,
  TTHEADER_MAGIC,
  ViewFrame,
} from './transport/frame.js';
export { decodeTHeader, encodeTHeaderParts, THeaderInfoType, THeaderTransform } from './transport/theader.js';
export { decodeTTHeader, encodeTTHeaderParts, TTHeaderInfoId, TTHeaderIntKey } from './transport/ttheader.js';
export {
  isValueType,
  type MessageHeader,
  MessageType,
  ProtocolId,
  type ProtocolName,
  TType,
} from './types.js';
