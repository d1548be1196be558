/**
 * Writing responses on the streams of an HTTP/2 server connection: the response HEADERS
 * (`:status`, the handler's fields without connection-specific ones, `date`, a content-length
 * for sized bodies; CONTINUATION past the peer's frame size), DATA within the peer's stream and
 * connection windows and the output bound (a body waits while a window is closed and resumes on
 * WINDOW_UPDATE, the write timeout bounding the wait), trailers as a final HEADERS. The usual
 * small answer (HEADERS and one DATA) is written into the output arena at once, without a
 * promise. Keeps the send side of flow control: the connection window, the peer's frame size
 * and the streams waiting for the connection window.
 *
 * Not for reading requests, stream states or resets (server-session.ts), nor for the bytes'
 * way out (server-output.ts).
 */
import { FixedBody, type HttpBody, nextNow } from '../body.js';
import { HttpError } from '../errors.js';
import type { HttpHeaders } from '../headers.js';
import { closeBody } from '../internal/answers.js';
import { ENTRY, ID_MASK } from '../internal/head-slab.js';
import * as known from '../internal/known-names.js';
import type { HttpResponse } from '../message.js';
import { Http2ErrorCode } from './errors.js';
import {
  DEFAULT_INITIAL_WINDOW_SIZE,
  DEFAULT_MAX_FRAME_SIZE,
  FRAME_HEADER_LENGTH,
  FrameFlag,
  FrameType,
  type HeadersFrameOptions,
  headersFramesLength,
  writeFrameHeader,
  writeHeaders,
} from './frames.js';
import { HpackEncoder } from './hpack-encoder.js';
import type { H2FrameOutput } from './server-output.js';
import { type H2ServerStream, StreamWait } from './stream.js';
import { Http2StreamResetError } from './stream-reset-error.js';

// Local copies: transpilers turn imported bindings into getters.
const KNOWN_NAMES = known.KNOWN_NAMES;
const ID_DATE = known.ID_DATE;

/** Fields that are connection-specific in HTTP/2 (RFC 9113 §8.2.2): never sent. */
const CONNECTION_SPECIFIC = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'te',
  'content-length',
]);

/**
 * A body chunk of at least this many octets is lent to the output on a plain connection (its DATA
 * payloads are views of it, server-output.ts' `lend()`), and the body's next step waits for the
 * write; a smaller one is copied, which costs less than that wait (and lets an answer that came
 * with its head go out without a promise).
 */
const LEND_MIN = 16 * 1024;

/** The status lines of the common answers, as :status values. */
const STATUS_TEXT: string[] = [];
for (let s = 100; s < 600; s++) STATUS_TEXT[s] = String(s);

/** What the writer needs from its session. */
export interface H2ResponseHost {
  /** The session is ending: nothing more is answered. */
  readonly ending: boolean;
  /** A stream waits for a window: its write timeout runs. */
  armStream(s: H2ServerStream, wait: StreamWait): void;
  /** The stream waits no more. */
  disarmStream(s: H2ServerStream): void;
}

/** Writes the responses of one server connection; see the module comment. */
export class H2ResponseWriter {
  /** Our HPACK encoder (the peer's SETTINGS_HEADER_TABLE_SIZE applies to it). */
  readonly hpack = new HpackEncoder();
  /** The peer's connection window for our DATA. */
  sendWindow = DEFAULT_INITIAL_WINDOW_SIZE;
  /** The peer's SETTINGS_MAX_FRAME_SIZE. */
  peerMaxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  /** Streams whose response waits for the connection window. */
  readonly blocked = new Set<H2ServerStream>();
  /** HEADERS frame options for the peer's frame size (made again when it changes). */
  private headersEnd: HeadersFrameOptions = { endStream: true, maxFrameSize: DEFAULT_MAX_FRAME_SIZE };
  private headersOpen: HeadersFrameOptions = { maxFrameSize: DEFAULT_MAX_FRAME_SIZE };

  constructor(
    private readonly host: H2ResponseHost,
    private readonly output: H2FrameOutput,
    /** The `date` value to add to responses without one, or null. */
    private readonly date: (() => string) | null,
  ) {}

  /** Answers a stream with a bare status (431 for a head over the limits) and no handler. */
  answerRefused(streamId: number, status: number, endStream: boolean): void {
    const enc = this.hpack;
    enc.begin();
    enc.addField(':status', STATUS_TEXT[status]!);
    this.queueHeaders(streamId, true);
    if (!endStream) this.output.queueRst(streamId, Http2ErrorCode.NO_ERROR);
  }

  /** Writes a response on a stream: HEADERS, DATA within the windows, trailers. */
  respond(s: H2ServerStream, method: string, res: HttpResponse): Promise<void> | undefined {
    const body = res.body;
    if (s.reset || this.host.ending) {
      void closeBody(body);
      return undefined;
    }
    const status = res.status;
    const noBody = method === 'HEAD' || status === 204 || status === 304;
    const fixed = body instanceof FixedBody ? body.data : null;
    // A sized body announces its length (HEAD: the length the GET would have).
    const length = status === 204 || status === 304 ? -1 : body.kind === 'stream' ? -1 : body.length;
    const endAtHead = noBody || body.kind === 'empty' || (fixed !== null && fixed.length === 0);
    if (
      !endAtHead &&
      fixed !== null &&
      fixed.length <= s.sendWindow &&
      fixed.length <= this.sendWindow &&
      fixed.length <= this.peerMaxFrameSize
    ) {
      // The usual small answer: HEADERS and the one DATA frame (END_STREAM) in one buffer.
      this.writeHead(s, status, res.headers, length, false, fixed);
      s.sendWindow -= fixed.length;
      this.sendWindow -= fixed.length;
      s.localClosed = true;
      return undefined;
    }
    this.writeHead(s, status, res.headers, length, endAtHead, null);
    if (endAtHead) {
      s.localClosed = true;
      if (!(body instanceof FixedBody)) void closeBody(body);
      return undefined;
    }
    if (fixed !== null) {
      const sent = this.sendNow(s, fixed, 0, true);
      if (sent === fixed.length) return undefined;
      // The rest waits for the windows.
      return this.sendChunk(s, fixed, sent, true);
    }
    return this.sendStream(s, body, length);
  }

  /** Queues the response HEADERS (+ CONTINUATION) of a stream. */
  private writeHead(
    s: H2ServerStream,
    status: number,
    headers: HttpHeaders,
    length: number,
    endStream: boolean,
    data: Uint8Array | null,
  ): void {
    const enc = this.hpack;
    enc.begin();
    enc.addField(':status', STATUS_TEXT[status] ?? String(status));
    const hasDate = addHeaderFields(enc, headers, true);
    const date = this.date;
    if (!hasDate && date !== null) enc.addField('date', date());
    if (length >= 0) enc.addField('content-length', String(length));
    s.headersSent = true;
    this.queueHeaders(s.id, endStream, data);
  }

  /**
   * Queues the block the encoder just made as HEADERS (+ CONTINUATION) frames; with `data`, a
   * DATA frame with END_STREAM follows in the same buffer (the caller checked the windows). A
   * block within the peer's frame size (every usual head) is copied from the encoder into the
   * output as one HEADERS frame: no view of the block is made (an object and a species lookup
   * per response).
   */
  queueHeaders(streamId: number, endStream: boolean, data: Uint8Array | null = null): void {
    const enc = this.hpack;
    const length = enc.blockLength;
    const max = this.peerMaxFrameSize;
    const dataBytes = data === null ? 0 : FRAME_HEADER_LENGTH + data.length;
    let head: number;
    let at: number;
    let out: Uint8Array;
    if (length <= max) {
      head = FRAME_HEADER_LENGTH + length;
      at = this.output.reserve(head + dataBytes);
      out = this.output.arena;
      const flags = FrameFlag.END_HEADERS | (endStream ? FrameFlag.END_STREAM : 0);
      writeFrameHeader(out, at, length, FrameType.HEADERS, flags, streamId);
      enc.copyBlockTo(out, at + FRAME_HEADER_LENGTH);
    } else {
      let o = endStream ? this.headersEnd : this.headersOpen;
      if (o.maxFrameSize !== max) {
        this.headersEnd = { endStream: true, maxFrameSize: max };
        this.headersOpen = { maxFrameSize: max };
        o = endStream ? this.headersEnd : this.headersOpen;
      }
      const block = enc.finish();
      head = headersFramesLength(block.length, o);
      at = this.output.reserve(head + dataBytes);
      out = this.output.arena;
      writeHeaders(out, at, streamId, block, o);
    }
    if (data !== null) {
      writeFrameHeader(out, at + head, data.length, FrameType.DATA, FrameFlag.END_STREAM, streamId);
      out.set(data, at + head + FRAME_HEADER_LENGTH);
    }
  }

  /**
   * Whether `data`'s DATA payloads go out as views of it (`lend`): a streamed body's chunk of at
   * least LEND_MIN octets on a connection whose output lends (plain, io_uring). Its sender must not take the body's next step
   * before `output.written()` settles (the chunk is valid only until then).
   */
  private lends(data: Uint8Array): boolean {
    return data.length >= LEND_MIN && this.output.lending;
  }

  /**
   * Queues as much of `data[from..]` as the windows allow, in DATA frames of at most the peer's
   * frame size, with END_STREAM on the last when `end`; returns the offset reached. The payloads
   * are copied (the chunk may be a view valid only until the body's next step), or with `lend`
   * queued as views of `data` (see lends()).
   */
  private sendNow(s: H2ServerStream, data: Uint8Array, from: number, end: boolean, lend = false): number {
    let off = from;
    const total = data.length;
    const output = this.output;
    while (off < total) {
      // The client's windows may be huge: the output bound caps what one body queues at once.
      if (output.overBound) return off;
      const room = Math.min(s.sendWindow, this.sendWindow, this.peerMaxFrameSize, total - off);
      if (room <= 0) return off;
      const last = end && off + room === total;
      const flags = last ? FrameFlag.END_STREAM : 0;
      if (lend) {
        const at = output.reserve(FRAME_HEADER_LENGTH);
        writeFrameHeader(output.arena, at, room, FrameType.DATA, flags, s.id);
        output.lend(data.subarray(off, off + room));
      } else {
        const at = output.reserve(FRAME_HEADER_LENGTH + room);
        const frame = output.arena;
        writeFrameHeader(frame, at, room, FrameType.DATA, flags, s.id);
        // The whole chunk in one frame (the usual small answer) is copied without a view of it.
        frame.set(room === total ? data : data.subarray(off, off + room), at + FRAME_HEADER_LENGTH);
      }
      s.sendWindow -= room;
      this.sendWindow -= room;
      off += room;
      if (last) s.localClosed = true;
    }
    if (end && total === 0) this.endData(s);
    return off;
  }

  /** An empty DATA frame with END_STREAM. */
  private endData(s: H2ServerStream): void {
    const at = this.output.reserve(FRAME_HEADER_LENGTH);
    writeFrameHeader(this.output.arena, at, 0, FrameType.DATA, FrameFlag.END_STREAM, s.id);
    s.localClosed = true;
  }

  /**
   * Sends `data[from..]` (END_STREAM after it when `end`), waiting for the windows and for the
   * output to drain; the write timeout bounds a wait for a window. A lent chunk (lends(): its
   * frames before `from` were lent too) settles once no write reads it.
   */
  private async sendChunk(s: H2ServerStream, data: Uint8Array, from: number, end: boolean): Promise<void> {
    let off = from;
    let stalled = false;
    const lend = this.lends(data);
    for (;;) {
      if (s.reset || this.host.ending) throw this.streamGone(s);
      off = this.sendNow(s, data, off, end, lend);
      if (off === data.length) break;
      if (this.output.overBound) {
        // Stopped by the output bound, not a window: wait for the writes (the write timeout
        // covers a client that does not read).
        this.output.scheduleFlush();
        await this.output.drained();
        continue;
      }
      if (!stalled) {
        // The write timeout runs from the first stall until this chunk is out.
        stalled = true;
        this.host.armStream(s, StreamWait.Window);
      }
      if (this.sendWindow <= 0) this.blocked.add(s);
      await this.windowOpen(s);
    }
    if (stalled) this.host.disarmStream(s);
    // The body's next step may end the chunk's life: not before the write that reads it ended.
    if (lend) await this.output.written();
    if (this.output.overBound) await this.output.drained();
    if (s.reset || this.host.ending) throw this.streamGone(s);
  }

  private streamGone(s: H2ServerStream): Http2StreamResetError {
    return new Http2StreamResetError(s.id, Http2ErrorCode.CANCEL, 'server');
  }

  /** A promise of a stream's window opening (or the stream ending). */
  private windowOpen(s: H2ServerStream): Promise<void> {
    this.output.scheduleFlush();
    return new Promise<void>((resolve, reject) => {
      s.windowResolve = resolve;
      s.windowReject = reject;
    });
  }

  /**
   * Streams a body: each chunk as the windows allow, then trailers or an empty END_STREAM. The
   * steps at hand are taken at once (nextNow), so a body that came with its head (a proxied
   * answer of a few KB: its chunk, then its end) is written without a promise, as the h1 writer
   * does; returns undefined then, else a promise of the rest (sendStreamRest).
   */
  private sendStream(s: H2ServerStream, body: HttpBody, length: number): Promise<void> | undefined {
    const it = body[Symbol.asyncIterator]();
    let sent = 0;
    try {
      for (;;) {
        if (s.reset || this.host.ending) throw this.streamGone(s);
        const r = nextNow(it);
        if (r === null) break;
        if (r.done) {
          this.endBody(s, body, length, sent);
          return undefined;
        }
        const chunk = r.value;
        sent += chunk.length;
        s.bodyBytes = sent;
        if (length >= 0 && sent > length) throw bodyTooLong(length);
        if (chunk.length === 0) continue;
        // The last byte of a sized body carries END_STREAM.
        const last = length >= 0 && sent === length;
        const lend = this.lends(chunk);
        const off = this.sendNow(s, chunk, 0, last, lend);
        // Not all of it fits the windows or the output bound, or it is lent: the rest waits (the
        // chunk stays valid: the iterator takes no step meanwhile).
        if (off < chunk.length || lend)
          return this.sendStreamRest(s, it, body, length, sent, chunk, off, last);
      }
    } catch (e) {
      returnQuietly(it);
      throw e;
    }
    return this.sendStreamRest(s, it, body, length, sent, null, 0, false);
  }

  /**
   * The waiting part of sendStream: first the rest of `chunk` from `from` (when not null), then
   * the body's further chunks, then its end.
   */
  private async sendStreamRest(
    s: H2ServerStream,
    it: AsyncIterator<Uint8Array>,
    body: HttpBody,
    length: number,
    sentBefore: number,
    chunk: Uint8Array | null,
    from: number,
    last: boolean,
  ): Promise<void> {
    let sent = sentBefore;
    try {
      if (chunk !== null) await this.sendChunk(s, chunk, from, last);
      for (;;) {
        if (s.reset || this.host.ending) throw this.streamGone(s);
        let r = nextNow(it);
        if (r === null) {
          this.output.scheduleFlush();
          s.pendingBody = it;
          try {
            r = await it.next();
          } finally {
            s.pendingBody = null;
          }
        }
        if (r.done) break;
        const chunk = r.value;
        sent += chunk.length;
        s.bodyBytes = sent;
        if (length >= 0 && sent > length) throw bodyTooLong(length);
        if (chunk.length === 0) continue;
        // The last byte of a sized body carries END_STREAM.
        await this.sendChunk(s, chunk, 0, length >= 0 && sent === length);
      }
    } catch (e) {
      try {
        // A lent chunk's views may still be in a write: its source keeps it until that ended.
        await this.output.written();
        await it.return?.();
      } catch {
        // Its source failed as well: nothing more to release.
      }
      throw e;
    }
    this.endBody(s, body, length, sent);
  }

  /** A body's end: its length checked, then trailers or an empty END_STREAM unless sent with the last DATA. */
  private endBody(s: H2ServerStream, body: HttpBody, length: number, sent: number): void {
    if (s.localClosed) return;
    if (length >= 0 && sent !== length) {
      throw new HttpError('ERR_HTTP_BODY_LENGTH_MISMATCH', 500, `body of ${sent} bytes, not ${length}`);
    }
    if (s.reset || this.host.ending) throw this.streamGone(s);
    const trailers = body.trailers;
    if (trailers !== null && trailers.size > 0) {
      const enc = this.hpack;
      enc.begin();
      addHeaderFields(enc, trailers, false);
      this.queueHeaders(s.id, true);
      s.localClosed = true;
    } else {
      this.endData(s);
    }
    this.output.scheduleFlush();
  }
}

function bodyTooLong(length: number): HttpError {
  return new HttpError('ERR_HTTP_BODY_LENGTH_MISMATCH', 500, `body longer than its length ${length}`);
}

/** Lets a body's source go after a failure (as for-await would), not waiting for it. */
function returnQuietly(it: AsyncIterator<Uint8Array>): void {
  try {
    it.return?.()?.then(undefined, () => {});
  } catch {
    // Its source failed as well: nothing more to release.
  }
}

/**
 * Adds the fields of `headers` to the block `enc` is encoding, without the connection-specific
 * ones (RFC 9113 §8.2.2) and, with `dropNamed`, the fields a Connection field names; returns
 * whether a `date` field was among them. The one place a header list becomes HPACK (response
 * heads and trailers). Fields still in the HeadSlab they were decoded into (an upstream's
 * HTTP/1.1 answer that a proxy forwards) go in as bytes (HpackEncoder.addFieldBytes), so their
 * values never become strings; names are lowercase either way (a common name's interned string,
 * another's lowercased by nameAt). @internal exported for the differential test against the
 * string path.
 */
export function addHeaderFields(enc: HpackEncoder, headers: HttpHeaders, dropNamed: boolean): boolean {
  const n = headers.size;
  let named: Set<string> | null = null;
  if (dropNamed) {
    for (let i = 0; i < n; i++) {
      if (headers.nameAt(i) === 'connection') named = connectionNamed(headers.valueAt(i), named);
    }
  }
  let hasDate = false;
  const wc = headers.wcount;
  if (wc > 0) {
    const slab = headers.slab!;
    const words = slab.words;
    const bytes = slab.bytes;
    for (let i = 0, e = headers.wbase; i < wc; i++, e += ENTRY) {
      const id = words[e + 4]! & ID_MASK;
      const name = id !== 0 ? KNOWN_NAMES[id]! : headers.nameAt(i);
      if (CONNECTION_SPECIFIC.has(name) || named?.has(name) === true) continue;
      if (id === ID_DATE) hasDate = true;
      enc.addFieldBytes(name, bytes, words[e + 2]!, words[e + 3]!);
    }
  }
  for (let i = wc; i < n; i++) {
    const name = headers.nameAt(i);
    if (CONNECTION_SPECIFIC.has(name) || named?.has(name) === true) continue;
    if (name === 'date') hasDate = true;
    enc.addField(name, headers.valueAt(i));
  }
  return hasDate;
}

/** The fields a Connection value names (lowercase), added to `into`. */
function connectionNamed(value: string, into: Set<string> | null): Set<string> {
  const set = into ?? new Set<string>();
  for (const token of value.split(',')) {
    const t = token.trim().toLowerCase();
    if (t !== '') set.add(t);
  }
  return set;
}
