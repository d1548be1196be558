/**
 * How ClientExchange's callback-driven connections (exclusive-connection.ts,
 * multiplexed-connection.ts) turn a call's encoded message into the buffers they write: the
 * message with its seq id replaced, in the connection's framing, with the call's headers or else
 * the connection's. Made once per connection from its options. Not for replies (reply-reader.ts)
 * and not for the order calls go out in (each connection kind's own).
 */
import {
  EMPTY_HEADERS,
  EMPTY_INT_HEADERS,
  type FramingName,
  frameParts,
  type ProtocolName,
  rewriteSeqId,
  type ThriftClientOptions,
} from '@loch/thrift';

/** Per-call settings. */
export interface CallOptions {
  readonly oneway?: boolean;
  readonly headers?: ReadonlyMap<string, string>;
}

/** A connection's framing of its calls (framed binary unless its options say otherwise). */
export class CallFramer {
  readonly framing: FramingName;
  readonly protocol: ProtocolName;

  constructor(private readonly options: ThriftClientOptions) {
    this.framing = options.framing ?? 'framed';
    this.protocol = options.protocol ?? 'binary';
  }

  /**
   * The buffers that send `message` as call `seqId`, carrying `headers` (undefined: the
   * connection's). Throws for a message that cannot be framed: then nothing is to be written.
   */
  frame(message: Uint8Array, seqId: number, headers: ReadonlyMap<string, string> | undefined): Uint8Array[] {
    return frameParts(
      {
        framing: this.framing,
        protocol: this.protocol,
        seqId,
        headers: headers ?? this.options.headers ?? EMPTY_HEADERS,
        intHeaders: this.options.intHeaders ?? EMPTY_INT_HEADERS,
        transforms: this.framing === 'theader' ? (this.options.transforms ?? []) : [],
      },
      rewriteSeqId(this.protocol, message, seqId),
    );
  }
}
