/**
 * Thrift client over one connection: either one call in flight at a time (calls queue), or
 * many multiplexed by seq id with one read loop dispatching replies. Frames calls in any
 * framing and protocol, with THeader/TTHeader headers per call, and turns EXCEPTION replies
 * into TApplicationException. Reply memory: a reply frame views the connection reader's
 * buffer; once every reply handed out was given back (ThriftResponse.release, release(frame)),
 * the next replies are received into the same memory, instead of into new buffers at the rate
 * the connection receives (external memory V8 answers with major GCs). Not a connection pool or
 * a retry policy: those belong to @loch/transports and the proxy.
 */
import { TApplicationException } from '../application-exception.js';
import { ThriftRpcError } from '../errors.js';
import { BinaryReader } from '../protocol/binary.js';
import { CompactReader } from '../protocol/compact.js';
import { createWriter } from '../protocol/factory.js';
import { rewriteSeqId } from '../protocol/message-header.js';
import type { ProtocolReader, ReaderOptions } from '../protocol/reader.js';
import type { ProtocolWriter } from '../protocol/writer.js';
import { frameParts } from '../transport/codec.js';
import { EMPTY_HEADERS, EMPTY_INT_HEADERS, type FramingName, type ThriftFrame } from '../transport/frame.js';
import { type MessageHeader, MessageType, type ProtocolName } from '../types.js';
import { FrameReader } from './frame-reader.js';
import type { ThriftStream } from './stream.js';

/** Client settings. */
export interface ThriftClientOptions extends ReaderOptions {
  /** Framing of calls (default 'framed'). */
  readonly framing?: FramingName;
  /** Protocol of calls (default 'binary'). */
  readonly protocol?: ProtocolName;
  /** Many calls in flight, matched by seq id (default false: one at a time, in order). */
  readonly multiplexed?: boolean;
  /** Milliseconds to wait for a reply (default 0: forever). */
  readonly timeout?: number;
  /** Largest reply frame accepted (default 16 MiB). */
  readonly maxFrameSize?: number;
  /** Largest THeader/TTHeader reply header block, in bytes (default 64 KiB; see FrameCodecOptions). */
  readonly maxHeaderSize?: number | undefined;
  /** Most info headers in one THeader/TTHeader reply (default 1,000; see FrameCodecOptions). */
  readonly maxHeaderCount?: number | undefined;
  /** String headers sent with every THeader/TTHeader call. */
  readonly headers?: ReadonlyMap<string, string>;
  /** Integer headers sent with every TTHeader call. */
  readonly intHeaders?: ReadonlyMap<number, string>;
  /** THeader transforms applied to every call (e.g. [THeaderTransform.ZLIB]). */
  readonly transforms?: readonly number[];
}

/** Per-call settings. */
export interface CallOptions {
  /** Send as ONEWAY: no reply is awaited; resolves undefined once written. */
  readonly oneway?: boolean;
  /** Overrides the client's timeout for this call. */
  readonly timeout?: number;
  /** Headers for this call (replace the client's). */
  readonly headers?: ReadonlyMap<string, string>;
  /** Integer headers for this call (replace the client's). */
  readonly intHeaders?: ReadonlyMap<number, string>;
}

/** A reply: its frame, message header, and a reader at the result struct. */
export interface ThriftResponse {
  readonly frame: ThriftFrame;
  readonly header: MessageHeader;
  /** A reader positioned at the result struct. */
  reader(): ProtocolReader;
  /**
   * The reply's bytes (frame.payload and anything viewing it, readers included) are no longer
   * read: the client may receive later replies into their memory. Optional to call; a second
   * call does nothing.
   */
  release(): void;
}

/** Calls' bytes that go out in one writev of a multiplexed client, and that writev's outcome. */
interface WriteBatch {
  readonly parts: Uint8Array[];
  readonly written: Promise<number>;
}

/** At most this many buffers per writev of a multiplexed client (IOV_MAX is 1024 on Linux). */
const MAX_WRITE_PARTS = 1024;

interface Pending {
  resolve(frame: ThriftFrame): void;
  reject(error: unknown): void;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Timed out: a late reply is dropped. */
  expired: boolean;
}

/** A Thrift client on one stream. */
export class ThriftClient {
  private readonly reader: FrameReader;
  private readonly pending = new Map<number, Pending>();
  private nextSeqId = 1;
  private queue: Promise<unknown> = Promise.resolve();
  /** The multiplexed mode's last write: the next one starts once it settled. */
  private writes: Promise<unknown> = Promise.resolve();
  /** The multiplexed mode's next write, still taking calls' bytes (undefined: none waits). */
  private nextWrite: WriteBatch | undefined;
  private readLoop: Promise<void> | undefined;
  private failure: unknown;
  private readonly framing: FramingName;
  private readonly protocol: ProtocolName;
  /**
   * Reply frames handed out and not given back (release): while any is out, the reader keeps
   * appending after their bytes; when none is, it receives into the memory they used.
   */
  private readonly lent = new Set<ThriftFrame>();

  constructor(
    private readonly stream: ThriftStream,
    private readonly options: ThriftClientOptions = {},
  ) {
    this.framing = options.framing ?? 'framed';
    this.protocol = options.protocol ?? 'binary';
    this.reader = new FrameReader(stream, { ...options, framing: this.framing, protocol: this.protocol });
  }

  /** Calls `method`; `writeArgs` writes the argument struct. Rejects on EXCEPTION replies. */
  async call(
    method: string,
    writeArgs: (w: ProtocolWriter) => void,
    options: CallOptions = {},
  ): Promise<ThriftResponse | undefined> {
    const w = createWriter(this.protocol);
    w.writeMessageBegin(method, options.oneway ? MessageType.ONEWAY : MessageType.CALL, 0);
    writeArgs(w);
    w.writeMessageEnd();
    const frame = await this.send(w.finish(), options);
    if (frame === undefined) return undefined;
    const r = this.newReader();
    r.reset(frame.payload);
    let header: MessageHeader;
    try {
      header = r.readMessageBegin();
      if (header.type === MessageType.EXCEPTION) throw TApplicationException.read(r);
      if (header.type !== MessageType.REPLY || header.name !== method) {
        throw new ThriftRpcError(
          'ERR_THRIFT_BAD_REPLY',
          `expected a REPLY to ${method}, got type ${header.type} ${header.name}`,
        );
      }
    } catch (e) {
      // The exception holds copies (strings): nothing views the frame any more.
      this.release(frame);
      throw e;
    }
    const bodyOffset = r.pos;
    return {
      frame,
      header,
      reader: () => this.newReader().reset(frame.payload, bodyOffset),
      release: () => this.release(frame),
    };
  }

  /**
   * Gives back a reply frame that send() or call() resolved: its bytes are no longer read, so
   * later replies may be received into their memory. Frames of other clients, and a second
   * release, are ignored.
   */
  release(reply: ThriftFrame): void {
    // The last one out: the reader's next bytes go to the front of its buffer (a receive already
    // pending appends there too; bytes of a reply not yet read are kept, moved to the front).
    if (this.lent.delete(reply) && this.lent.size === 0) this.reader.recycle();
  }

  /**
   * Sends an encoded message (header and body in the client's protocol; its seq id is replaced)
   * and resolves the reply frame undecoded: the forwarding path of a proxy. ONEWAY messages
   * (or `options.oneway`) resolve undefined once written. The frame's bytes stay valid until it
   * is given back with release(frame) (never given back: for as long as they are referenced).
   */
  send(message: Uint8Array, options: CallOptions = {}): Promise<ThriftFrame | undefined> {
    if (this.failure !== undefined) return Promise.reject(this.closedError());
    const oneway = options.oneway ?? message[this.protocol === 'binary' ? 3 : 1] === this.onewayByte();
    if (this.options.multiplexed) return this.sendMultiplexed(message, oneway, options);
    const run = this.queue.then(() => this.sendSerial(message, oneway, options));
    this.queue = run.catch(() => {});
    return run;
  }

  private onewayByte(): number {
    return this.protocol === 'binary' ? MessageType.ONEWAY : (MessageType.ONEWAY << 5) | 1;
  }

  private newReader(): ProtocolReader {
    return this.protocol === 'binary' ? new BinaryReader(this.options) : new CompactReader(this.options);
  }

  private allocSeqId(): number {
    const id = this.nextSeqId;
    this.nextSeqId = id >= 0x7fffffff ? 1 : id + 1;
    return id;
  }

  private parts(message: Uint8Array, seqId: number, options: CallOptions): Uint8Array[] {
    const payload = rewriteSeqId(this.protocol, message, seqId);
    return frameParts(
      {
        framing: this.framing,
        protocol: this.protocol,
        seqId,
        headers: options.headers ?? this.options.headers ?? EMPTY_HEADERS,
        intHeaders: options.intHeaders ?? this.options.intHeaders ?? EMPTY_INT_HEADERS,
        transforms: this.framing === 'theader' ? (this.options.transforms ?? []) : [],
      },
      payload,
    );
  }

  private async sendSerial(
    message: Uint8Array,
    oneway: boolean,
    options: CallOptions,
  ): Promise<ThriftFrame | undefined> {
    if (this.failure !== undefined) throw this.closedError();
    const seqId = this.allocSeqId();
    await this.stream.writev(this.parts(message, seqId, options));
    if (oneway) return undefined;
    const ms = options.timeout ?? this.options.timeout ?? 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const next = this.reader.next();
      let frame: ThriftFrame | null;
      if (ms > 0) {
        next.catch(() => {});
        frame = await Promise.race([
          next,
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new ThriftRpcError('ERR_THRIFT_TIMEOUT', `no reply within ${ms} ms`)),
              ms,
            );
          }),
        ]);
      } else {
        frame = await next;
      }
      if (frame === null) throw new ThriftRpcError('ERR_THRIFT_CLOSED', 'connection closed before the reply');
      if (frame.seqId !== seqId) {
        throw new ThriftRpcError('ERR_THRIFT_BAD_REPLY', `reply seq id ${frame.seqId}, expected ${seqId}`);
      }
      this.lent.add(frame);
      return frame;
    } catch (e) {
      // After a timeout or a bad reply the stream is out of step: nothing more can be matched.
      this.fail(e);
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  private sendMultiplexed(
    message: Uint8Array,
    oneway: boolean,
    options: CallOptions,
  ): Promise<ThriftFrame | undefined> {
    const seqId = this.allocSeqId();
    const parts = this.parts(message, seqId, options);
    if (oneway) return this.writeInTurn(parts).then(() => undefined);
    const ms = options.timeout ?? this.options.timeout ?? 0;
    return new Promise<ThriftFrame>((resolve, reject) => {
      const entry: Pending = { resolve, reject, timer: undefined, expired: false };
      if (ms > 0) {
        entry.timer = setTimeout(() => {
          entry.expired = true;
          reject(new ThriftRpcError('ERR_THRIFT_TIMEOUT', `no reply within ${ms} ms`));
        }, ms);
      }
      this.pending.set(seqId, entry);
      this.readLoop ??= this.runReadLoop();
      this.writeInTurn(parts).catch((e) => {
        this.fail(e);
      });
    });
  }

  /**
   * Writes `parts` once every earlier multiplexed write settled, batched: calls made while a
   * write is in flight (or in the same turn) go out together in the next writev, at most
   * MAX_WRITE_PARTS buffers each, so N pipelined calls cost one send, not N. (Order alone the
   * runtime's streams keep by themselves since their write queue, uring/stream.ts sendTo; the
   * batching is why this waits.) The promise settles when the writev carrying `parts` did.
   */
  private writeInTurn(parts: Uint8Array[]): Promise<number> {
    let batch = this.nextWrite;
    if (batch === undefined || batch.parts.length + parts.length > MAX_WRITE_PARTS) {
      const batchParts: Uint8Array[] = [];
      const written = this.writes.then(() => {
        // From here on the batch is being written: later calls start the next one.
        if (this.nextWrite?.parts === batchParts) this.nextWrite = undefined;
        return this.stream.writev(batchParts);
      });
      this.writes = written.catch(() => {});
      this.nextWrite = batch = { parts: batchParts, written };
    }
    for (const part of parts) batch.parts.push(part);
    return batch.written;
  }

  private async runReadLoop(): Promise<void> {
    try {
      for (;;) {
        const frame = await this.reader.next();
        if (frame === null) throw new ThriftRpcError('ERR_THRIFT_CLOSED', 'connection closed');
        const entry = this.pending.get(frame.seqId);
        if (entry === undefined)
          throw new ThriftRpcError('ERR_THRIFT_BAD_REPLY', `reply with unknown seq id ${frame.seqId}`);
        this.pending.delete(frame.seqId);
        clearTimeout(entry.timer);
        // A reply nobody waits for any more (timed out) is never handed out: not lent.
        if (!entry.expired) {
          this.lent.add(frame);
          entry.resolve(frame);
        }
      }
    } catch (e) {
      this.fail(e);
    }
  }

  private closedError(): ThriftRpcError {
    const f = this.failure;
    if (f instanceof ThriftRpcError && f.code === 'ERR_THRIFT_CLOSED') return f;
    return new ThriftRpcError('ERR_THRIFT_CLOSED', 'client is closed', { cause: f });
  }

  /** Fails every pending call and closes the stream. */
  private fail(error: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    for (const entry of this.pending.values()) {
      clearTimeout(entry.timer);
      if (!entry.expired) entry.reject(error instanceof ThriftRpcError ? error : this.closedError());
    }
    this.pending.clear();
    if (!this.stream.closed) void this.stream.close().catch(() => {});
  }

  /** Calls in flight (multiplexed mode). */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Closes the connection; pending calls reject with ERR_THRIFT_CLOSED. */
  async close(): Promise<void> {
    this.fail(new ThriftRpcError('ERR_THRIFT_CLOSED', 'client closed'));
    if (!this.stream.closed) await this.stream.close().catch(() => {});
  }
}
