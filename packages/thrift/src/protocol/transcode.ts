/**
 * Re-encodes a whole message (header and body) from one protocol to another, binary <->
 * compact: what a proxy does when a route speaks another protocol upstream than its client.
 * Every value of the body is decoded and written again (the reader's depth and size limits
 * apply); nothing is interpreted. Not for renaming or renumbering: message-header.ts.
 */
import type { ProtocolName } from '../types.js';
import { createReader, createWriter } from './factory.js';
import type { ReaderOptions } from './reader.js';
import { readStruct, writeStruct } from './value.js';

/** `message` in protocol `to` (the same buffer when `from` is `to`). */
export function transcodeMessage(
  message: Uint8Array,
  from: ProtocolName,
  to: ProtocolName,
  options: ReaderOptions = {},
): Uint8Array {
  if (from === to) return message;
  const r = createReader(from, options).reset(message);
  const header = r.readMessageBegin();
  const body = readStruct(r);
  r.readMessageEnd();
  const w = createWriter(to, { initialSize: message.byteLength + 16 });
  w.writeMessageBegin(header.name, header.type, header.seqId);
  writeStruct(w, body);
  w.writeMessageEnd();
  return w.finishCopy();
}
