/**
 * TApplicationException: the error a Thrift server sends back in an EXCEPTION message when a
 * call fails outside the service's declared exceptions (unknown method, internal error, bad
 * input). Reads and writes the standard struct {1: string message, 2: i32 type}. Not for
 * exceptions declared in an IDL: those travel inside REPLY messages.
 */
import { ThriftError } from './errors.js';
import { BinaryWriter } from './protocol/binary.js';
import { CompactWriter } from './protocol/compact.js';
import type { ProtocolReader } from './protocol/reader.js';
import type { ProtocolWriter } from './protocol/writer.js';
import { MessageType, type ProtocolName, TType } from './types.js';

/** Standard TApplicationException type codes. */
export const TApplicationExceptionType = {
  UNKNOWN: 0,
  UNKNOWN_METHOD: 1,
  INVALID_MESSAGE_TYPE: 2,
  WRONG_METHOD_NAME: 3,
  BAD_SEQUENCE_ID: 4,
  MISSING_RESULT: 5,
  INTERNAL_ERROR: 6,
  PROTOCOL_ERROR: 7,
  INVALID_TRANSFORM: 8,
  INVALID_PROTOCOL: 9,
  UNSUPPORTED_CLIENT_TYPE: 10,
} as const;

/** An application-level failure of a call, as sent in an EXCEPTION message. */
export class TApplicationException extends ThriftError {
  override readonly name = 'TApplicationException';
  readonly code = 'ERR_THRIFT_APPLICATION' as const;
  /** One of TApplicationExceptionType (other values are kept as sent). */
  readonly type: number;

  constructor(type: number, message = '') {
    super(message);
    this.type = type;
  }

  /** Reads the exception struct (the body of an EXCEPTION message). */
  static read(r: ProtocolReader): TApplicationException {
    let message = '';
    let type: number = TApplicationExceptionType.UNKNOWN;
    r.readStructBegin();
    for (;;) {
      const t = r.readFieldBegin();
      if (t === TType.STOP) break;
      if (r.fieldId === 1 && t === TType.STRING) message = r.readString();
      else if (r.fieldId === 2 && t === TType.I32) type = r.readI32();
      else r.skip(t);
      r.readFieldEnd();
    }
    r.readStructEnd();
    return new TApplicationException(type, message);
  }

  /** Writes the exception struct. */
  write(w: ProtocolWriter): void {
    w.writeStructBegin();
    w.writeFieldBegin(TType.STRING, 1);
    w.writeString(this.message);
    w.writeFieldEnd();
    w.writeFieldBegin(TType.I32, 2);
    w.writeI32(this.type);
    w.writeFieldEnd();
    w.writeFieldStop();
    w.writeStructEnd();
  }

  /** Encodes a whole EXCEPTION message carrying this exception. */
  toMessage(protocol: ProtocolName, name: string, seqId: number): Uint8Array {
    const w =
      protocol === 'binary' ? new BinaryWriter({ initialSize: 64 }) : new CompactWriter({ initialSize: 64 });
    w.writeMessageBegin(name, MessageType.EXCEPTION, seqId);
    this.write(w);
    w.writeMessageEnd();
    return w.finish();
  }
}
