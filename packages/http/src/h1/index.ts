/**
 * @loch/http/h1: HTTP/1.1's wire codec, for tool builders (a parser fuzzer, a custom
 * connection, a protocol gateway): the incremental request and response decoders and the head,
 * chunk and field-block encoders the server and client use. Applications use the package root.
 */
export type { BodyFraming, H1Limits, RequestDecoderOptions } from './decoder.js';
export { DEFAULT_LIMITS, DecodeEvent, RequestDecoder, ResponseDecoder } from './decoder.js';
export type { RequestHeadOptions, ResponseHeadOptions } from './encoder.js';
export {
  asksToClose,
  CHUNK_END,
  chunkHeader,
  encodeRequestHead,
  encodeRequestHeadBytes,
  encodeResponseHead,
  encodeResponseHeadBytes,
  httpDate,
  lastChunk,
  requestFraming,
  responseFraming,
  responseHasNoBody,
} from './encoder.js';
