/**
 * Reads and rewrites the message header (name, type, seq id) of an encoded message without
 * touching its body: what a router needs to pick a route and a multiplexer to renumber calls.
 * Not for framing headers (THeader/TTHeader): see transport/.
 */
import { ThriftProtocolError } from '../errors.js';
import type { ViewFrame } from '../transport/frame.js';
import type { MessageHeader, ProtocolName } from '../types.js';
import { BinaryReader } from './binary.js';
import { CompactReader } from './compact.js';
import { createWriter } from './factory.js';

const binaryReader = new BinaryReader();
const compactReader = new CompactReader();

/** Reads the message header at the start of `message`. */
export function readMessageHeader(protocol: ProtocolName, message: Uint8Array): MessageHeader {
  const r = protocol === 'binary' ? binaryReader : compactReader;
  r.reset(message);
  try {
    return r.readMessageBegin();
  } finally {
    r.reset(EMPTY);
  }
}

const EMPTY = new Uint8Array(0);

/** Byte offset where the message header ends (where the body struct starts). */
export function messageBodyOffset(protocol: ProtocolName, message: Uint8Array): number {
  const r = protocol === 'binary' ? binaryReader : compactReader;
  r.reset(message);
  try {
    r.skipMessageBegin();
    return r.pos;
  } finally {
    r.reset(EMPTY);
  }
}

/**
 * Returns `message` with its seq id replaced by `seqId`. Binary messages are rewritten in
 * place (the seq id is a fixed i32); compact messages are rewritten in place when the new
 * varint has the same length, and copied otherwise. Use the returned buffer.
 */
export function rewriteSeqId(protocol: ProtocolName, message: Uint8Array, seqId: number): Uint8Array {
  if (protocol === 'binary') {
    // The seq id is the last 4 bytes of a binary message header, both styles.
    const at = messageBodyOffset(protocol, message) - 4;
    // Stored byte by byte: a DataView per call cost more than the rewrite itself.
    message[at] = seqId >>> 24;
    message[at + 1] = seqId >>> 16;
    message[at + 2] = seqId >>> 8;
    message[at + 3] = seqId;
    return message;
  }
  if (message.byteLength < 3) throw new ThriftProtocolError('ERR_THRIFT_TRUNCATED', 'message too short', 0);
  // Compact: 0x82, version/type, then the seq id varint at offset 2.
  let oldEnd = 2;
  for (;;) {
    if (oldEnd >= message.byteLength)
      throw new ThriftProtocolError('ERR_THRIFT_TRUNCATED', 'message too short', oldEnd);
    if (oldEnd - 2 >= 5) throw new ThriftProtocolError('ERR_THRIFT_BAD_VARINT', 'seq id varint too long', 2);
    if (message[oldEnd++]! < 0x80) break;
  }
  let n = 1;
  for (let v = (seqId >>> 0) >>> 7; v !== 0; v >>>= 7) n++;
  // Same varint length: rewritten in place; otherwise the message is copied around it.
  const out = n === oldEnd - 2 ? message : new Uint8Array(message.byteLength - (oldEnd - 2) + n);
  if (out !== message) {
    out[0] = message[0]!;
    out[1] = message[1]!;
    out.set(message.subarray(oldEnd), 2 + n);
  }
  let at = 2;
  let v = seqId >>> 0;
  while (v >= 0x80) {
    out[at++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[at] = v;
  return out;
}

/**
 * @internal The strict (versioned) binary message header at the start of `message`, read from its bytes
 * with no reader: its type and seq id go to `out`, and it returns where the body starts; 0 when
 * the message does not start with a whole strict header of a known type (the caller then reads
 * it with a reader, which accepts old-style headers and says what is wrong). A relayed call's
 * frames are peeked three times (the call's and the reply's seq ids, the reply's type): through
 * the shared reader each stored the frame's new view into it (a write barrier) and reset it twice.
 * The header's name is bytes [8, end - 4) of the message.
 */
export function strictBinaryHeader(message: Uint8Array, out: { type: number; seqId: number }): number {
  // `length`, not byteLength: node 20's TurboFan inlines the one and calls a builtin for the other.
  return strictBinaryHeaderAt(message, 0, message.length, out);
}

/**
 * @internal strictBinaryHeader of the message that is `bytes[start, end)`, read where it lies
 * (a ViewFrame's payload before its view is made); the returned body offset counts from `start`.
 */
export function strictBinaryHeaderAt(
  bytes: Uint8Array,
  start: number,
  end: number,
  out: { type: number; seqId: number },
): number {
  const n = end - start;
  if (n < 12 || bytes[start] !== 0x80 || bytes[start + 1] !== 0x01) return 0;
  const type = bytes[start + 3]!;
  if (type < 1 || type > 4) return 0;
  const len =
    (bytes[start + 4]! << 24) | (bytes[start + 5]! << 16) | (bytes[start + 6]! << 8) | bytes[start + 7]!;
  // A negative length (the top bit set) fails here too.
  if (len < 0 || len > n - 12) return 0;
  const at = start + 8 + len;
  out.type = type;
  out.seqId = (bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!;
  return at + 4 - start;
}

/** peekSeqId's scratch header (module state: nothing allocated per peek). */
const scratch = { type: 0, seqId: 0 };

/** Seq id of `message` without decoding its name. */
export function peekSeqId(protocol: ProtocolName, message: Uint8Array): number {
  if (protocol === 'binary' && strictBinaryHeader(message, scratch) !== 0) return scratch.seqId;
  const r = protocol === 'binary' ? binaryReader : compactReader;
  r.reset(message);
  try {
    return r.skipMessageBegin();
  } finally {
    r.reset(EMPTY);
  }
}

/**
 * The type and seq id of `message` into `out`, without decoding its name or allocating: what a
 * relay checks a reply by (readMessageHeader builds the name string and a header object).
 * Throws as readMessageHeader does on a bad header.
 */
export function peekMessageHeader(
  protocol: ProtocolName,
  message: Uint8Array,
  out: { type: number; seqId: number },
): void {
  if (protocol === 'binary' && strictBinaryHeader(message, out) !== 0) return;
  const r = protocol === 'binary' ? binaryReader : compactReader;
  r.reset(message);
  try {
    out.seqId = r.skipMessageBegin();
    out.type = r.messageType;
  } finally {
    r.reset(EMPTY);
  }
}

/**
 * peekMessageHeader of a decoded frame's payload, read where it lies: a strict binary header
 * makes no payload view (ViewFrame); anything else reads `frame.payload`. What a relay checks a
 * reply by.
 */
export function peekFrameHeader(frame: ViewFrame, out: { type: number; seqId: number }): void {
  if (
    frame.protocol === 'binary' &&
    strictBinaryHeaderAt(frame.bytes, frame.payloadStart, frame.payloadEnd, out) !== 0
  )
    return;
  peekMessageHeader(frame.protocol, frame.payload, out);
}

/**
 * Returns a copy of `message` whose message header names `name` (type, seq id and body
 * unchanged): a proxy renaming a method. Binary headers are written strict (versioned), as
 * every reader accepts.
 */
export function rewriteMessageName(protocol: ProtocolName, message: Uint8Array, name: string): Uint8Array {
  const header = readMessageHeader(protocol, message);
  const body = message.subarray(messageBodyOffset(protocol, message));
  const w = createWriter(protocol, { initialSize: body.byteLength + name.length * 3 + 16 });
  w.writeMessageBegin(name, header.type, header.seqId);
  w.writeRaw(body);
  return w.finishCopy();
}
