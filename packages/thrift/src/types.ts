/**
 * Thrift wire constants shared by every protocol: type ids (TType), message types, and the
 * protocol ids that THeader and TTHeader carry. Not for protocol-specific encodings (compact
 * type nibbles live in protocol/compact.ts).
 */

/** Thrift type ids as the binary protocol writes them. */
export const TType = {
  STOP: 0,
  VOID: 1,
  BOOL: 2,
  BYTE: 3,
  DOUBLE: 4,
  I16: 6,
  I32: 8,
  I64: 10,
  STRING: 11,
  STRUCT: 12,
  MAP: 13,
  SET: 14,
  LIST: 15,
  UUID: 16,
} as const;
/** A Thrift type id. */
export type TType = (typeof TType)[keyof typeof TType];

/** Message types of a message header. */
export const MessageType = { CALL: 1, REPLY: 2, EXCEPTION: 3, ONEWAY: 4 } as const;
/** A message type. */
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** Protocol ids carried by THeader and TTHeader (same numbering in both). */
export const ProtocolId = { BINARY: 0, COMPACT: 2 } as const;
/** A protocol id this package speaks. */
export type ProtocolId = (typeof ProtocolId)[keyof typeof ProtocolId];

/** Which protocol encodes a message body. */
export type ProtocolName = 'binary' | 'compact';

/** True when `t` is a valid value type id (not STOP/VOID). */
export function isValueType(t: number): t is TType {
  return (t >= 2 && t <= 4) || t === 6 || t === 8 || (t >= 10 && t <= 16);
}

/** Message name, type and sequence id of a message header. */
export interface MessageHeader {
  name: string;
  type: MessageType;
  seqId: number;
}
