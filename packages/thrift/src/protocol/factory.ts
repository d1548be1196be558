/**
 * Picks a reader or writer by protocol name, so code that learns the protocol at run time
 * (from a THeader protocol id or by sniffing the first byte) needs no switch of its own.
 */
import type { ProtocolName } from '../types.js';
import { BinaryReader, BinaryWriter } from './binary.js';
import { CompactReader, CompactWriter } from './compact.js';
import type { ProtocolReader, ReaderOptions } from './reader.js';
import type { ProtocolWriter } from './writer.js';

/** A new reader of `protocol`. */
export function createReader(protocol: ProtocolName, options: ReaderOptions = {}): ProtocolReader {
  return protocol === 'binary' ? new BinaryReader(options) : new CompactReader(options);
}

/** A new writer of `protocol`. */
export function createWriter(protocol: ProtocolName, options: { initialSize?: number } = {}): ProtocolWriter {
  return protocol === 'binary' ? new BinaryWriter(options) : new CompactWriter(options);
}
