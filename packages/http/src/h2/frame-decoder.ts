/**
 * Incremental HTTP/2 frame decoder (RFC 9113 §4, §6): fed the connection's bytes in chunks of any
 * size, it checks every framing rule that needs no stream state and hands each frame to an
 * {@link Http2FrameHandler}. It enforces:
 * - the client preface (server role) and SETTINGS as the first frame (§3.4);
 * - our SETTINGS_MAX_FRAME_SIZE (§4.2) before reading a payload;
 * - each frame type's stream-id rule, fixed lengths, padding and setting ranges (§6);
 * - the CONTINUATION rule (§6.10): after a HEADERS or PUSH_PROMISE without END_HEADERS only
 *   CONTINUATION frames of the same stream may come;
 * - a bound on the wire bytes of one header block across HEADERS/PUSH_PROMISE + CONTINUATION
 *   frames (9 per frame header plus payloads; `maxHeaderBlockSize`). The block is joined before
 *   HPACK sees it, so the bound is what keeps a CONTINUATION flood (CVE-2024-27316 and kin:
 *   endless CONTINUATION frames, empty or not) from growing memory or burning CPU. Past it the
 *   connection ends with ENHANCE_YOUR_CALM: the block cannot be decoded any more (HPACK state
 *   lost, RFC 9113 §10.5.1 then requires closing) and the peer is flooding.
 * Violations end the connection ({@link Http2ConnectionError}, thrown from {@link feed}; the
 * decoder then stays failed). Rules the RFC makes stream errors (PRIORITY of a wrong length, a
 * stream depending on itself, WINDOW_UPDATE of 0 on a stream) go to
 * {@link Http2FrameHandler.onStreamError} and decoding goes on. Unknown frame types are skipped
 * (§5.5).
 *
 * DATA is streamed: a frame's payload is handed over in the pieces it arrived in, as views of
 * the fed chunk (no copy). Other frames are handed over whole, as views of the chunk when they
 * arrived in one piece, else of the decoder's buffer. Views are valid during the callback only.
 *
 * Not for stream states, flow control or HPACK: the session tracks those from the callbacks.
 */
import {
  Http2ConnectionError,
  type Http2ConnectionErrorReason,
  Http2ErrorCode,
  Http2StreamError,
} from './errors.js';
import {
  applySetting,
  CONNECTION_PREFACE,
  DEFAULT_MAX_FRAME_SIZE,
  FRAME_HEADER_LENGTH,
  FrameFlag,
  FrameType,
  type Http2Priority,
  type Http2SettingsUpdate,
  MAX_FRAME_SIZE_LIMIT,
} from './frames.js';

/** Receives decoded frames; called synchronously from {@link Http2FrameDecoder.feed}. */
export interface Http2FrameHandler {
  /**
   * A piece of a DATA frame's content, in order. `flowLength` is the flow-controlled octets this
   * call accounts for (content plus pad length and padding); over the calls of one frame they sum
   * to the frame's payload length. The last call of a frame has `endStream` when the frame has
   * END_STREAM; every frame yields at least one call.
   */
  onData(streamId: number, data: Uint8Array, endStream: boolean, flowLength: number): void;
  /**
   * A complete header block (HEADERS plus any CONTINUATION frames). The session must HPACK-decode
   * every block, even of a stream it reset, or its table falls out of step with the peer's.
   */
  onHeaders(streamId: number, block: Uint8Array, endStream: boolean, priority: Http2Priority | null): void;
  /** A PRIORITY frame (deprecated signal; RFC 9113 §5.3.2). */
  onPriority(streamId: number, priority: Http2Priority): void;
  onRstStream(streamId: number, errorCode: number): void;
  /** A SETTINGS frame, already range-checked; only the settings it carries are present. */
  onSettings(settings: Http2SettingsUpdate): void;
  onSettingsAck(): void;
  /** A PUSH_PROMISE with its complete header block (client role with pushes accepted only). */
  onPushPromise(streamId: number, promisedStreamId: number, block: Uint8Array): void;
  /** A PING (8 octets of `data`); the session answers one without ACK. */
  onPing(data: Uint8Array, ack: boolean): void;
  onGoaway(lastStreamId: number, errorCode: number, debugData: Uint8Array): void;
  onWindowUpdate(streamId: number, increment: number): void;
  /** A framing rule broken that ends only one stream; the session resets it. */
  onStreamError(error: Http2StreamError): void;
}

/** Options of an {@link Http2FrameDecoder}. */
export interface Http2FrameDecoderOptions {
  /** `server` expects the client preface first and rejects PUSH_PROMISE. */
  readonly role: 'server' | 'client';
  /** Our SETTINGS_MAX_FRAME_SIZE. Default 16384. */
  readonly maxFrameSize?: number;
  /**
   * Most wire octets of one header block: frame headers plus payloads of its HEADERS or
   * PUSH_PROMISE and CONTINUATION frames. Default 65536 + 9 * 8: larger than any block a
   * SETTINGS_MAX_HEADER_LIST_SIZE of 64 KiB needs.
   */
  readonly maxHeaderBlockSize?: number;
  /** Client role: accept PUSH_PROMISE (only if we sent SETTINGS_ENABLE_PUSH 1). Default false. */
  readonly acceptPushPromise?: boolean;
}

enum State {
  Preface,
  Header,
  Payload,
  Data,
  Skip,
}

const NONE = -1;
const EMPTY = new Uint8Array(0);

function connectionError(
  code: Http2ConnectionErrorReason,
  errorCode: Http2ErrorCode,
  message: string,
): Http2ConnectionError {
  return new Http2ConnectionError(code, errorCode, message);
}

const protocolError = (code: Http2ConnectionErrorReason, message: string) =>
  connectionError(code, Http2ErrorCode.PROTOCOL_ERROR, message);
const frameSizeError = (message: string) =>
  connectionError('ERR_HTTP2_FRAME_SIZE', Http2ErrorCode.FRAME_SIZE_ERROR, message);

const TYPE_NAMES = [
  'DATA',
  'HEADERS',
  'PRIORITY',
  'RST_STREAM',
  'SETTINGS',
  'PUSH_PROMISE',
  'PING',
  'GOAWAY',
  'WINDOW_UPDATE',
  'CONTINUATION',
];

/** Decodes the frames one peer sends on a connection; see the module comment. */
export class Http2FrameDecoder {
  readonly #handler: Http2FrameHandler;
  readonly #role: 'server' | 'client';
  readonly #acceptPush: boolean;
  #maxFrameSize: number;
  readonly #maxBlock: number;
  #failed: unknown = null;

  #state: State;
  #prefaceAt = 0;
  #settingsSeen = false;
  // Frame header being read (bytes copied when it straddles chunks).
  readonly #header = new Uint8Array(FRAME_HEADER_LENGTH);
  #headerFill = 0;
  #length = 0;
  #type = 0;
  #flags = 0;
  #streamId = 0;
  // Payload being collected when it straddles chunks.
  #payload: Uint8Array = EMPTY;
  #payloadFill = 0;
  /** Octets left to skip (unknown frames, PRIORITY of a wrong length). */
  #skipLeft = 0;
  // DATA frame being streamed.
  #needPadLength = false;
  #dataLeft = 0;
  #padLeft = 0;
  #flowPending = 0;
  // Header block being joined across CONTINUATION frames.
  #blockStream = NONE;
  #block: Uint8Array = EMPTY;
  #blockFill = 0;
  #blockWire = 0;
  #blockType = 0;
  #blockEndStream = false;
  #blockPriority: Http2Priority | null = null;
  #blockPromised = 0;

  constructor(handler: Http2FrameHandler, options: Http2FrameDecoderOptions) {
    this.#handler = handler;
    this.#role = options.role;
    this.#acceptPush = options.role === 'client' && options.acceptPushPromise === true;
    this.#maxFrameSize = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
    this.#maxBlock = options.maxHeaderBlockSize ?? 65536 + 8 * FRAME_HEADER_LENGTH;
    this.#state = options.role === 'server' ? State.Preface : State.Header;
  }

  /** Applies our new SETTINGS_MAX_FRAME_SIZE (once the peer acknowledged it). */
  setMaxFrameSize(size: number): void {
    if (size < DEFAULT_MAX_FRAME_SIZE || size > MAX_FRAME_SIZE_LIMIT)
      throw new RangeError(`max frame size ${size}`);
    this.#maxFrameSize = size;
  }

  /** True while a header block waits for CONTINUATION frames. */
  get inHeaderBlock(): boolean {
    return this.#blockStream !== NONE;
  }

  /**
   * Decodes `chunk`, calling the handler for each frame or piece of DATA it completes. Throws
   * the first {@link Http2ConnectionError}; the decoder then rethrows it on every call. A handler
   * that throws leaves the decoder failed the same way.
   */
  feed(chunk: Uint8Array): void {
    if (this.#failed !== null) throw this.#failed;
    try {
      this.#feed(chunk);
    } catch (e) {
      this.#failed = e;
      throw e;
    }
  }

  #feed(chunk: Uint8Array): void {
    const end = chunk.length;
    let pos = 0;
    while (pos < end) {
      switch (this.#state) {
        case State.Preface: {
          while (pos < end && this.#prefaceAt < CONNECTION_PREFACE.length) {
            if (chunk[pos] !== CONNECTION_PREFACE[this.#prefaceAt]) {
              throw protocolError(
                'ERR_HTTP2_BAD_PREFACE',
                'the connection does not start with the HTTP/2 client preface',
              );
            }
            pos++;
            this.#prefaceAt++;
          }
          if (this.#prefaceAt === CONNECTION_PREFACE.length) this.#state = State.Header;
          break;
        }
        case State.Header: {
          if (this.#headerFill === 0 && end - pos >= FRAME_HEADER_LENGTH) {
            this.#parseHeader(chunk, pos);
            pos += FRAME_HEADER_LENGTH;
          } else {
            const n = Math.min(FRAME_HEADER_LENGTH - this.#headerFill, end - pos);
            this.#header.set(chunk.subarray(pos, pos + n), this.#headerFill);
            this.#headerFill += n;
            pos += n;
            if (this.#headerFill < FRAME_HEADER_LENGTH) break;
            this.#headerFill = 0;
            this.#parseHeader(this.#header, 0);
          }
          this.#startFrame();
          break;
        }
        case State.Payload: {
          const length = this.#length;
          if (this.#payloadFill === 0 && end - pos >= length) {
            this.#state = State.Header;
            this.#frame(chunk, pos, length);
            pos += length;
            break;
          }
          if (this.#payload.length < length)
            this.#payload = new Uint8Array(Math.max(length, this.#payload.length * 2, 64));
          const n = Math.min(length - this.#payloadFill, end - pos);
          this.#payload.set(chunk.subarray(pos, pos + n), this.#payloadFill);
          this.#payloadFill += n;
          pos += n;
          if (this.#payloadFill === length) {
            this.#payloadFill = 0;
            this.#state = State.Header;
            this.#frame(this.#payload, 0, length);
          }
          break;
        }
        case State.Data:
          pos = this.#data(chunk, pos, end);
          break;
        case State.Skip: {
          const n = Math.min(this.#skipLeft, end - pos);
          this.#skipLeft -= n;
          pos += n;
          if (this.#skipLeft === 0) this.#state = State.Header;
          break;
        }
      }
    }
  }

  #parseHeader(b: Uint8Array, p: number): void {
    this.#length = (b[p]! << 16) | (b[p + 1]! << 8) | b[p + 2]!;
    this.#type = b[p + 3]!;
    this.#flags = b[p + 4]!;
    this.#streamId = ((b[p + 5]! & 0x7f) << 24) | (b[p + 6]! << 16) | (b[p + 7]! << 8) | b[p + 8]!;
  }

  /** Checks a frame header against everything knowable before the payload; picks the next state. */
  #startFrame(): void {
    const length = this.#length;
    const type = this.#type;
    const streamId = this.#streamId;
    const name = TYPE_NAMES[type] ?? `frame type 0x${type.toString(16)}`;
    if (length > this.#maxFrameSize) {
      throw connectionError(
        'ERR_HTTP2_FRAME_TOO_LARGE',
        Http2ErrorCode.FRAME_SIZE_ERROR,
        `${name} frame of ${length} octets exceeds SETTINGS_MAX_FRAME_SIZE ${this.#maxFrameSize}`,
      );
    }
    if (this.#blockStream !== NONE && type !== FrameType.CONTINUATION) {
      throw protocolError(
        'ERR_HTTP2_CONTINUATION_EXPECTED',
        `${name} frame while the header block of stream ${this.#blockStream} awaits CONTINUATION`,
      );
    }
    if (!this.#settingsSeen) {
      if (type !== FrameType.SETTINGS || (this.#flags & FrameFlag.ACK) !== 0) {
        throw protocolError('ERR_HTTP2_FIRST_FRAME_NOT_SETTINGS', `the first frame is ${name}, not SETTINGS`);
      }
      this.#settingsSeen = true;
    }
    switch (type) {
      case FrameType.DATA:
        this.#requireStream(streamId, name);
        this.#needPadLength = (this.#flags & FrameFlag.PADDED) !== 0;
        if (this.#needPadLength && length === 0)
          throw frameSizeError('padded DATA frame without a pad length');
        this.#dataLeft = this.#needPadLength ? 0 : length;
        this.#padLeft = 0;
        this.#flowPending = 0;
        if (length === 0) {
          this.#state = State.Header;
          this.#handler.onData(streamId, EMPTY, (this.#flags & FrameFlag.END_STREAM) !== 0, 0);
          return;
        }
        this.#state = State.Data;
        return;
      case FrameType.HEADERS:
      case FrameType.PUSH_PROMISE:
        this.#requireStream(streamId, name);
        break;
      case FrameType.CONTINUATION:
        this.#requireStream(streamId, name);
        if (this.#blockStream === NONE) {
          throw protocolError(
            'ERR_HTTP2_UNEXPECTED_CONTINUATION',
            `CONTINUATION on stream ${streamId} without a header block`,
          );
        }
        if (streamId !== this.#blockStream) {
          throw protocolError(
            'ERR_HTTP2_CONTINUATION_EXPECTED',
            `CONTINUATION on stream ${streamId} while the header block of stream ${this.#blockStream} is open`,
          );
        }
        break;
      case FrameType.PRIORITY:
        this.#requireStream(streamId, name);
        if (length !== 5) {
          this.#handler.onStreamError(
            new Http2StreamError(
              'ERR_HTTP2_FRAME_SIZE',
              Http2ErrorCode.FRAME_SIZE_ERROR,
              streamId,
              `PRIORITY frame of ${length} octets`,
            ),
          );
          this.#skip(length);
          return;
        }
        break;
      case FrameType.RST_STREAM:
        this.#requireStream(streamId, name);
        if (length !== 4) throw frameSizeError(`RST_STREAM frame of ${length} octets`);
        break;
      case FrameType.SETTINGS:
        this.#requireConnection(streamId, name);
        if ((this.#flags & FrameFlag.ACK) !== 0) {
          if (length !== 0) throw frameSizeError(`SETTINGS ack with ${length} octets of payload`);
        } else if (length % 6 !== 0) {
          throw frameSizeError(`SETTINGS frame of ${length} octets, not a multiple of 6`);
        }
        break;
      case FrameType.PING:
        this.#requireConnection(streamId, name);
        if (length !== 8) throw frameSizeError(`PING frame of ${length} octets`);
        break;
      case FrameType.GOAWAY:
        this.#requireConnection(streamId, name);
        if (length < 8) throw frameSizeError(`GOAWAY frame of ${length} octets`);
        break;
      case FrameType.WINDOW_UPDATE:
        if (length !== 4) throw frameSizeError(`WINDOW_UPDATE frame of ${length} octets`);
        break;
      default:
        this.#skip(length);
        return;
    }
    this.#state = State.Payload;
    this.#payloadFill = 0;
    if (length === 0) {
      this.#state = State.Header;
      this.#frame(EMPTY, 0, 0);
    }
  }

  #skip(length: number): void {
    this.#skipLeft = length;
    this.#state = length === 0 ? State.Header : State.Skip;
  }

  #requireStream(streamId: number, name: string): void {
    if (streamId === 0) throw protocolError('ERR_HTTP2_STREAM_ID', `${name} frame on stream 0`);
  }

  #requireConnection(streamId: number, name: string): void {
    if (streamId !== 0)
      throw protocolError('ERR_HTTP2_STREAM_ID', `${name} frame on stream ${streamId}, not 0`);
  }

  /** Streams the DATA payload in `chunk[pos, end)`; returns the new position. */
  #data(chunk: Uint8Array, pos: number, end: number): number {
    let consumed = 0;
    if (this.#needPadLength) {
      const pad = chunk[pos++]!;
      consumed = 1;
      const room = this.#length - 1;
      if (pad > room) {
        throw protocolError(
          'ERR_HTTP2_PADDING',
          `DATA padding of ${pad} octets in a ${this.#length}-octet payload`,
        );
      }
      this.#needPadLength = false;
      this.#dataLeft = room - pad;
      this.#padLeft = pad;
    }
    const take = Math.min(this.#dataLeft, end - pos);
    const data = take === 0 ? EMPTY : chunk.subarray(pos, pos + take);
    pos += take;
    consumed += take;
    this.#dataLeft -= take;
    if (this.#dataLeft === 0 && this.#padLeft > 0) {
      const n = Math.min(this.#padLeft, end - pos);
      pos += n;
      consumed += n;
      this.#padLeft -= n;
    }
    this.#flowPending += consumed;
    const last = this.#dataLeft === 0 && this.#padLeft === 0;
    if (take > 0 || last) {
      const flow = this.#flowPending;
      this.#flowPending = 0;
      if (last) this.#state = State.Header;
      this.#handler.onData(this.#streamId, data, last && (this.#flags & FrameFlag.END_STREAM) !== 0, flow);
    }
    return pos;
  }

  /** Handles a whole non-DATA payload `b[p, p + length)`. */
  #frame(b: Uint8Array, p: number, length: number): void {
    const h = this.#handler;
    const streamId = this.#streamId;
    const flags = this.#flags;
    switch (this.#type) {
      case FrameType.HEADERS: {
        let off = 0;
        let pad = 0;
        if ((flags & FrameFlag.PADDED) !== 0) {
          if (length < 1) throw frameSizeError('padded HEADERS frame without a pad length');
          pad = b[p]!;
          off = 1;
        }
        let priority: Http2Priority | null = null;
        if ((flags & FrameFlag.PRIORITY) !== 0) {
          if (length - off < 5) throw frameSizeError('HEADERS frame too short for its priority fields');
          priority = readPriority(b, p + off);
          off += 5;
        }
        if (pad > length - off) {
          throw protocolError(
            'ERR_HTTP2_PADDING',
            `HEADERS padding of ${pad} octets exceeds the ${length - off} left`,
          );
        }
        this.#beginBlock(
          FrameType.HEADERS,
          b,
          p + off,
          p + length - pad,
          (flags & FrameFlag.END_STREAM) !== 0,
          priority,
          0,
        );
        return;
      }
      case FrameType.PUSH_PROMISE: {
        let off = 0;
        let pad = 0;
        if ((flags & FrameFlag.PADDED) !== 0) {
          if (length < 1) throw frameSizeError('padded PUSH_PROMISE frame without a pad length');
          pad = b[p]!;
          off = 1;
        }
        if (length - off < 4) throw frameSizeError('PUSH_PROMISE frame too short for the promised stream id');
        const promised = readUint31(b, p + off);
        off += 4;
        if (pad > length - off) {
          throw protocolError(
            'ERR_HTTP2_PADDING',
            `PUSH_PROMISE padding of ${pad} octets exceeds the ${length - off} left`,
          );
        }
        if (!this.#acceptPush) {
          throw protocolError(
            'ERR_HTTP2_PUSH_PROMISE_REJECTED',
            this.#role === 'server'
              ? 'PUSH_PROMISE sent by a client'
              : 'PUSH_PROMISE although push is disabled',
          );
        }
        this.#beginBlock(FrameType.PUSH_PROMISE, b, p + off, p + length - pad, false, null, promised);
        return;
      }
      case FrameType.CONTINUATION: {
        this.#appendBlock(b, p, p + length, length);
        if ((flags & FrameFlag.END_HEADERS) !== 0) {
          this.#endBlock(this.#block.subarray(0, this.#blockFill));
        }
        return;
      }
      case FrameType.PRIORITY: {
        const priority = readPriority(b, p);
        if (priority.dependency === streamId) {
          h.onStreamError(
            new Http2StreamError(
              'ERR_HTTP2_PRIORITY_SELF_DEPENDENCY',
              Http2ErrorCode.PROTOCOL_ERROR,
              streamId,
              `stream ${streamId} depends on itself`,
            ),
          );
          return;
        }
        h.onPriority(streamId, priority);
        return;
      }
      case FrameType.RST_STREAM:
        h.onRstStream(streamId, readUint32(b, p));
        return;
      case FrameType.SETTINGS: {
        if ((flags & FrameFlag.ACK) !== 0) {
          h.onSettingsAck();
          return;
        }
        const settings: Http2SettingsUpdate = {};
        for (let i = p; i < p + length; i += 6)
          applySetting(settings, (b[i]! << 8) | b[i + 1]!, readUint32(b, i + 2));
        if (this.#role === 'client' && settings.enablePush === true) {
          throw protocolError('ERR_HTTP2_SETTINGS_VALUE', 'a server sent SETTINGS_ENABLE_PUSH 1');
        }
        h.onSettings(settings);
        return;
      }
      case FrameType.PING:
        h.onPing(b.subarray(p, p + 8), (flags & FrameFlag.ACK) !== 0);
        return;
      case FrameType.GOAWAY:
        h.onGoaway(readUint31(b, p), readUint32(b, p + 4), b.subarray(p + 8, p + length));
        return;
      case FrameType.WINDOW_UPDATE: {
        const increment = readUint31(b, p);
        if (increment === 0) {
          if (streamId === 0) {
            throw protocolError('ERR_HTTP2_WINDOW_UPDATE_ZERO', 'WINDOW_UPDATE of 0 on the connection');
          }
          h.onStreamError(
            new Http2StreamError(
              'ERR_HTTP2_WINDOW_UPDATE_ZERO',
              Http2ErrorCode.PROTOCOL_ERROR,
              streamId,
              `WINDOW_UPDATE of 0 on stream ${streamId}`,
            ),
          );
          return;
        }
        h.onWindowUpdate(streamId, increment);
        return;
      }
    }
  }

  #beginBlock(
    type: number,
    b: Uint8Array,
    start: number,
    end: number,
    endStream: boolean,
    priority: Http2Priority | null,
    promised: number,
  ): void {
    this.#blockWire = 0;
    this.#countBlock(this.#length);
    const streamId = this.#streamId;
    if ((this.#flags & FrameFlag.END_HEADERS) !== 0) {
      this.#blockType = type;
      this.#blockEndStream = endStream;
      this.#blockPriority = priority;
      this.#blockPromised = promised;
      this.#blockStream = streamId;
      this.#endBlock(b.subarray(start, end));
      return;
    }
    this.#blockStream = streamId;
    this.#blockType = type;
    this.#blockEndStream = endStream;
    this.#blockPriority = priority;
    this.#blockPromised = promised;
    this.#blockFill = 0;
    this.#appendBlock(b, start, end, -1);
  }

  /** Counts a frame of `length` payload octets against the header-block bound. */
  #countBlock(length: number): void {
    this.#blockWire += FRAME_HEADER_LENGTH + length;
    if (this.#blockWire > this.#maxBlock) {
      throw connectionError(
        'ERR_HTTP2_HEADER_BLOCK_TOO_LARGE',
        Http2ErrorCode.ENHANCE_YOUR_CALM,
        `header block of stream ${this.#streamId} exceeds ${this.#maxBlock} octets on the wire`,
      );
    }
  }

  /** Appends a fragment; `frameLength` >= 0 counts a CONTINUATION frame first. */
  #appendBlock(b: Uint8Array, start: number, end: number, frameLength: number): void {
    if (frameLength >= 0) this.#countBlock(frameLength);
    const n = end - start;
    const need = this.#blockFill + n;
    if (this.#block.length < need) {
      const next = new Uint8Array(Math.max(need, this.#block.length * 2, 256));
      next.set(this.#block.subarray(0, this.#blockFill));
      this.#block = next;
    }
    this.#block.set(b.subarray(start, end), this.#blockFill);
    this.#blockFill = need;
  }

  #endBlock(block: Uint8Array): void {
    const streamId = this.#blockStream;
    this.#blockStream = NONE;
    const priority = this.#blockPriority;
    this.#blockPriority = null;
    if (this.#blockType === FrameType.HEADERS) {
      if (priority !== null && priority.dependency === streamId) {
        // §5.3.1: a stream error; reported first, and the block still goes to the session.
        this.#handler.onStreamError(
          new Http2StreamError(
            'ERR_HTTP2_PRIORITY_SELF_DEPENDENCY',
            Http2ErrorCode.PROTOCOL_ERROR,
            streamId,
            `stream ${streamId} depends on itself`,
          ),
        );
      }
      this.#handler.onHeaders(streamId, block, this.#blockEndStream, priority);
    } else {
      this.#handler.onPushPromise(streamId, this.#blockPromised, block);
    }
    // A joined block larger than a few frames is not kept for the connection's lifetime.
    if (this.#block.length > 4 * DEFAULT_MAX_FRAME_SIZE) this.#block = EMPTY;
  }
}

function readUint31(b: Uint8Array, p: number): number {
  return ((b[p]! & 0x7f) << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
}

function readUint32(b: Uint8Array, p: number): number {
  return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
}

function readPriority(b: Uint8Array, p: number): Http2Priority {
  return { exclusive: (b[p]! & 0x80) !== 0, dependency: readUint31(b, p), weight: b[p + 4]! + 1 };
}
