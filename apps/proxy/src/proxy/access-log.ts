/**
 * Where access-log lines go and how they look: the sinks (stdout, or a file opened with
 * O_APPEND by every worker, as nginx's workers do) and the two line formats (text and JSON
 * lines). A file sink never blocks the worker's event loop on a request: lines are appended to
 * a string, and one asynchronous write (libuv's thread pool) carries everything pending every
 * ACCESS_FLUSH_MS or as soon as FLUSH_BYTES are waiting; while that write is in flight new lines
 * wait in memory. The wait is bounded (MAX_PENDING_BYTES per file and worker): when the disk
 * does not keep up, further lines are dropped and counted, and the count is reported on the
 * error log once the writer catches up. `reopen()` (SIGUSR1, the logrotate convention) lets
 * the write in flight finish, then closes the file and opens its path again. Not for the
 * operational log (log.ts).
 *
 * A file sink keeps its pending lines as bytes, not a string: a text line is formatted straight
 * into the sink's buffer (textLineInto), so a request's line makes no string, no rope node, no
 * UTF-8 encoding at the write and no crossing into Node (each was per request: a latin1Slice
 * call for the line's string, then the rope flattened and encoded for fs.write). Two buffers
 * take turns: one filled while the other is being written. Text known before the request (the
 * time of this millisecond, server keys, upstream labels, client addresses) is kept as bytes
 * (TextChunk) and copied into a line whole, not char by char.
 */
import { close, closeSync, open, openSync, write, writeSync } from 'node:fs';
import { formatAddress, type SocketAddress } from '@loch/uring-runtime';

/** Line format of an access log. */
export type AccessLogFormat = 'text' | 'json';

/** Longest time an access-log line waits in the buffer (ms). */
export const ACCESS_FLUSH_MS = 50;
/** Pending lines of one sink written at once without waiting for the tick (stdout). */
const FLUSH_LINES = 256;
/** Pending bytes of a file sink written at once without waiting for the tick. */
const FLUSH_BYTES = 64 * 1024;
/**
 * Most bytes a file sink holds while its disk is busy (per worker and file). Past it lines are
 * dropped (counted and reported), so a stalled disk costs bounded memory and never the loop.
 */
export const MAX_PENDING_BYTES = 8 * 1024 * 1024;

/** One destination of access-log lines. */
export interface AccessSink {
  /** Adds one line (ending in "\n"); never blocks. */
  push(line: string): void;
  /** Adds `r`'s text line (textLine) the cheapest way this sink has; never blocks. */
  pushText(r: AccessRecord): void;
  /** Writes what is pending now (a file sink: synchronously, at shutdown). */
  flush(): void;
  /** Opens the file again by its path (files only; stdout ignores it). */
  reopen(): Promise<void>;
  /** Flushes, then releases the file. */
  close(): Promise<void>;
}

/**
 * A buffered line writer to a function (stdout, or a test's array). Lines wait at most `flushMs`
 * (0 = the next event-loop turn) or until FLUSH_LINES are pending. In a worker thread every
 * stdout write is a message to the main thread, so a coarse tick keeps logging off the hot path.
 */
export class LineBuffer implements AccessSink {
  #lines = '';
  #count = 0;
  #timer: NodeJS.Timeout | NodeJS.Immediate | null = null;
  constructor(
    private readonly out: (text: string) => void,
    private readonly flushMs: number,
  ) {}

  push(line: string): void {
    this.#lines += line;
    if (++this.#count >= FLUSH_LINES) this.flush();
    else if (this.#timer === null) {
      this.#timer = this.flushMs > 0 ? setTimeout(this.#onTick, this.flushMs) : setImmediate(this.#onTick);
    }
  }

  pushText(r: AccessRecord): void {
    this.push(textLine(r));
  }

  readonly #onTick = (): void => {
    this.#timer = null;
    this.flush();
  };

  flush(): void {
    if (this.#timer !== null) {
      if (this.flushMs > 0) clearTimeout(this.#timer as NodeJS.Timeout);
      else clearImmediate(this.#timer as NodeJS.Immediate);
      this.#timer = null;
    }
    if (this.#count === 0) return;
    const text = this.#lines;
    this.#lines = '';
    this.#count = 0;
    this.out(text);
  }

  reopen(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.flush();
    return Promise.resolve();
  }
}

/** A file that cannot be opened for the access log (bad directory, permissions). */
export class AccessLogFileError extends Error {
  override readonly name = 'AccessLogFileError';
  readonly code = 'ERR_LOCH_ACCESS_LOG_FILE';
  constructor(
    readonly path: string,
    cause: unknown,
  ) {
    super(`access log ${path}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

/**
 * An access-log file, appended to by one asynchronous write at a time (see the module header).
 * `report` receives the drop notices (the worker's error log).
 */
export class FileSink implements AccessSink {
  readonly path: string;
  #fd: number;
  /** Pending bytes: `#buf[0, #pendingBytes)` (allocated at the first line). */
  #buf: Buffer = NO_BYTES;
  /** A view of all of `#buf` (text lines write words through it). */
  #view: DataView = viewOf(NO_BYTES);
  #pendingBytes = 0;
  /** The buffer of the last finished write, filled next (null: none kept). */
  #spare: Buffer | null = null;
  /** The buffer being written, `[#writtenTo, #writeEnd)` of it still to go. */
  #out: Buffer = NO_BYTES;
  #writtenTo = 0;
  #writeEnd = 0;
  #writing = false;
  #dropped = 0;
  #timer: NodeJS.Timeout | null = null;
  #reopenWanted = false;
  #closed = false;
  /** Resolved when the write in flight (if any) and a requested reopen are done. */
  #idle: (() => void)[] = [];

  /** Opens `path` for appending (created 0644 when missing); throws AccessLogFileError. */
  constructor(
    path: string,
    private readonly report: (message: string) => void,
    private readonly flushMs = ACCESS_FLUSH_MS,
    private readonly maxPending = MAX_PENDING_BYTES,
    private readonly flushBytes = FLUSH_BYTES,
  ) {
    this.path = path;
    try {
      this.#fd = openSync(path, 'a', 0o644);
    } catch (error) {
      throw new AccessLogFileError(path, error);
    }
  }

  push(line: string): void {
    if (this.#closed) return;
    // UTF-16 units: a lower bound of the bytes, so a line that cannot fit is dropped at once.
    if (this.#pendingBytes + line.length > this.maxPending) {
      this.#dropped++;
      return;
    }
    this.#room(3 * line.length);
    const end = this.#pendingBytes + this.#buf.write(line, this.#pendingBytes);
    this.#added(end);
  }

  pushText(r: AccessRecord): void {
    if (this.#closed) return;
    this.#room(textLineNeed(r));
    // ASCII only: the file holds UTF-8, which a latin1 byte above 0x7f is not (such a line is push()ed).
    const end = textLineInto(r, this.#buf, this.#view, this.#pendingBytes, 0x7f);
    // Most lines: kept, with a write already timed. Everything else (the line that starts a
    // write's timer, or its bytes, or is dropped, or is push()ed) goes through #lineRest, a call
    // every line that sets the timer makes, from the first line on: its rare paths (the first
    // write by bytes, a line textLineInto leaves to textLineOf) are then in a function called
    // now and then, and do not deoptimize this one when they first run (V8 compiled them in as
    // "insufficient type feedback" exits; bench/http-proxy/deopts-2026-12-07.md).
    if (end >= 0 && end < this.flushBytes && end <= this.maxPending && this.#timer !== null)
      this.#pendingBytes = end;
    else this.#lineRest(r, end);
  }

  /** pushText's line past its common case: `end` as textLineInto returned it. */
  #lineRest(r: AccessRecord, end: number): void {
    if (end < 0) this.push(textLineOf(r));
    else this.#added(end);
  }

  /** Room for `bytes` more pending bytes (the buffer grows; what is pending is kept). */
  #room(bytes: number): void {
    const need = this.#pendingBytes + bytes;
    if (need > this.#buf.length) this.#grow(need);
  }

  /**
   * A buffer of at least `need` bytes holding what is pending: the spare one, or a new one. Its
   * own function, called from the first line on (the first buffer) and at each write after: its
   * branches that run later (a spare too small) are not compiled into the line's path as exits.
   */
  #grow(need: number): void {
    let buf = this.#spare;
    this.#spare = null;
    if (buf === null || buf.length < need)
      buf = Buffer.allocUnsafeSlow(Math.max(need, 2 * this.#buf.length, BUFFER_BYTES));
    this.#buf.copy(buf, 0, 0, this.#pendingBytes);
    this.#setBuf(buf);
  }

  /** `buf` is filled next (its view made once, not per line). */
  #setBuf(buf: Buffer): void {
    this.#buf = buf;
    this.#view = viewOf(buf);
  }

  /** A line was written into the buffer up to `end`: kept (or dropped past maxPending), a write scheduled. */
  #added(end: number): void {
    if (end > this.maxPending) {
      this.#dropped++;
      return;
    }
    this.#pendingBytes = end;
    if (end >= this.flushBytes) this.#writeSoon();
    else if (this.#timer === null) this.#timer = setTimeout(this.#onTick, this.flushMs);
  }

  readonly #onTick = (): void => {
    this.#timer = null;
    this.#writeSoon();
  };

  /** Starts the one asynchronous write unless one is in flight (its completion starts the next). */
  #writeSoon(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#writing || this.#closed) return;
    if (this.#pendingBytes === 0) {
      // Lines logged before a reopen was asked for go to the file open then (written first).
      if (this.#reopenWanted) this.#doReopen();
      else this.#settle();
      return;
    }
    // The pending buffer is written; lines meanwhile go to the spare one (or a new one).
    const out = this.#buf;
    this.#out = out;
    this.#writtenTo = 0;
    this.#writeEnd = this.#pendingBytes;
    this.#setBuf(this.#spare ?? NO_BYTES);
    this.#spare = null;
    this.#pendingBytes = 0;
    this.#writing = true;
    write(this.#fd, out, 0, this.#writeEnd, null, this.#written);
  }

  readonly #written = (error: NodeJS.ErrnoException | null, bytes: number): void => {
    if (error === null && bytes > 0 && this.#writtenTo + bytes < this.#writeEnd) {
      // A short write: the rest of the same bytes goes next, before anything newer.
      this.#writtenTo += bytes;
      write(this.#fd, this.#out, this.#writtenTo, this.#writeEnd - this.#writtenTo, null, this.#written);
      return;
    }
    this.#writing = false;
    // The written buffer is filled next, unless a busy disk grew it: let that one go.
    if (this.#spare === null && this.#out.length <= BUFFER_BYTES) this.#spare = this.#out;
    this.#out = NO_BYTES;
    if (error !== null) this.report(`access log ${this.path}: write failed: ${error.message}`);
    this.#reportDropped();
    if (this.#reopenWanted || this.#pendingBytes >= this.flushBytes) this.#writeSoon();
    else if (this.#pendingBytes > 0 && this.#timer === null)
      this.#timer = setTimeout(this.#onTick, this.flushMs);
    else this.#settle();
  };

  /** Reports the lines dropped since the last report (after a write, and at a flush or close). */
  #reportDropped(): void {
    if (this.#dropped === 0) return;
    this.report(
      `access log ${this.path}: ${this.#dropped} line(s) dropped: the disk did not keep up (${this.maxPending} bytes pending)`,
    );
    this.#dropped = 0;
  }

  #doReopen(): void {
    this.#reopenWanted = false;
    this.#writing = true;
    const old = this.#fd;
    open(this.path, 'a', 0o644, (error, fd) => {
      this.#writing = false;
      if (error !== null) {
        // Keep writing to the old file rather than lose lines; a later SIGUSR1 tries again.
        this.report(`access log ${this.path}: reopen failed, still writing the old file: ${error.message}`);
      } else {
        this.#fd = fd;
        close(old, () => {});
      }
      if (this.#closed) return;
      this.#writeSoon();
    });
  }

  #settle(): void {
    const waiters = this.#idle;
    this.#idle = [];
    for (const w of waiters) w();
  }

  #whenIdle(): Promise<void> {
    if (!this.#writing && !this.#reopenWanted) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  flush(): void {
    if (this.#closed) return;
    if (this.#pendingBytes === 0) {
      this.#reportDropped();
      return;
    }
    if (this.#writing) {
      // The write in flight goes first; the rest follows it (order kept).
      this.#writeSoon();
      return;
    }
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    const n = this.#pendingBytes;
    this.#pendingBytes = 0;
    try {
      for (let at = 0; at < n; ) at += writeSync(this.#fd, this.#buf, at, n - at);
    } catch (error) {
      this.report(`access log ${this.path}: write failed: ${(error as Error).message}`);
    }
    this.#reportDropped();
  }

  /** Resolves once the file at `path` is the one written (lines pending are written first). */
  reopen(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#reopenWanted = true;
    const done = this.#whenIdle();
    this.#writeSoon();
    return done;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#whenIdle();
    this.flush();
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    try {
      closeSync(this.#fd);
    } catch {
      // already gone
    }
  }
}

/** Characters that a text line never carries raw (they could forge or split a line). */
const UNSAFE_TEXT = /[^\x21-\x7e]|["\\]/;
const UNSAFE_TEXT_ALL = /[^\x21-\x7e]|["\\]/g;

/**
 * A field of a text line: "-" when empty, else itself with spaces, controls, quotes,
 * backslashes and non-ASCII written \xHH (nginx's escape=default), so a client-chosen value
 * (a Thrift method name) can neither split a line nor add a field.
 */
export function textField(value: string): string {
  if (value === '') return '-';
  if (!UNSAFE_TEXT.test(value)) return value;
  return value.replace(UNSAFE_TEXT_ALL, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x80
      ? `\\x${code.toString(16).padStart(2, '0')}`
      : Array.from(new TextEncoder().encode(c), (b) => `\\x${b.toString(16).padStart(2, '0')}`).join('');
  });
}

/** The client as a text line writes it ("unix" for a Unix-socket peer). */
export function peerText(peer: SocketAddress): string {
  // Port 0: a client read from X-Forwarded-For, which carries no port.
  return peer.family === 'unix' ? 'unix' : peer.port === 0 ? peer.address : formatAddress(peer);
}

/** One access-log record: what both formats are made from. */
export interface AccessRecord {
  time: string;
  /**
   * `time` as a chunk, when the logger keeps one (ProxyLog: updated with its clock, once per
   * millisecond): a text line copies it in one native copy instead of reading the string's 24
   * chars one by one (and flattening the string the clock made). Undefined: read from `time`. The
   * logger's own chunk, rewritten at its next millisecond: valid only during the push that
   * receives the record (a sink copies it then, never keeps it).
   */
  timeChunk: TextChunk | undefined;
  server: string;
  /** The client (after PROXY protocol and trusted X-Forwarded-For hops). */
  client: SocketAddress;
  /** The connection's peer, when it differs from the client (a trusted proxy). */
  peer: SocketAddress | undefined;
  method: string;
  target: string;
  status: number;
  bytes: number;
  upstream: string | undefined;
  /** Status the upstream answered, when the response came from one. */
  upstreamStatus: number | undefined;
  /** Ms from the request's head until the upstream's response head. */
  upstreamMs: number | undefined;
  ms: number;
  requestId: string | undefined;
}

/**
 * The text line (space separated, "-" for an absent field):
 *   time server client method target status bytes upstream ms
 * Written byte by byte into one scratch buffer and made one flat string (textLineInto), so a
 * line costs that string alone; a line with a field to escape (or anything else unusual: see
 * textLineInto) is made by textLineOf, the same line from string pieces. A file sink formats
 * it into its own buffer instead (FileSink.pushText): no string at all.
 */
export function textLine(r: AccessRecord): string {
  const need = textLineNeed(r);
  if (scratch.length < need) {
    scratch = Buffer.allocUnsafeSlow(Math.max(need, 2 * scratch.length));
    scratchView = viewOf(scratch);
  }
  const n = textLineInto(r, scratch, scratchView, 0, 0xff);
  return n < 0 ? textLineOf(r) : latin1Slice.call(scratch, 0, n);
}

/** The text line from string pieces: the reference textLineInto writes byte for byte. */
export function textLineOf(r: AccessRecord): string {
  return `${r.time} ${r.server} ${peerText(r.client)} ${textField(r.method)} ${textField(r.target)} ${r.status} ${r.bytes} ${r.upstream ?? '-'} ${r.ms.toFixed(2)}\n`;
}

/** Buffer's native latin1 decoder (not in Node's type declarations). */
const latin1Slice = (
  Buffer.prototype as unknown as { latin1Slice(this: Buffer, start: number, end: number): string }
).latin1Slice;

/** Whether a 32-bit word's low byte comes first in memory here (x64, arm64): chunks are written in memory order. */
const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/**
 * Writes 8 bytes of a chunk (an element of `TextChunk.doubles`: memory order) at `p`, in the
 * same order. Why a function per byte order: a DataView store's `littleEndian` given as a
 * literal compiles to the store alone, where LITTLE_ENDIAN (a module binding) was loaded and
 * converted to a boolean at every store (~12 instructions each in Node 20's optimized code); V8
 * inlines whichever of the two this binding holds behind one identity check.
 */
const putChunkDouble: (v: DataView, p: number, d: number) => void = LITTLE_ENDIAN
  ? (v, p, d) => v.setFloat64(p, d, true)
  : (v, p, d) => v.setFloat64(p, d, false);

/**
 * Text known before a line is written (the time of this millisecond, a server key, an upstream
 * label, a client address): its bytes, ASCII only, and the same memory as 8-byte doubles. A line
 * takes a chunk of up to CHUNK_DOUBLES_MAX bytes with one DataView.setFloat64 per 8 bytes, a
 * longer one with one native copy (TypedArray.prototype.set: ~220 instructions with its call),
 * instead of a store per char (~40 each: the string's and the array's checks per char). Why
 * doubles carry text: 8 ASCII bytes (each below 0x80) are never a NaN (that needs a top byte of
 * 0x7f or 0xff and the next at 0xf0 or more), so no NaN's payload can be changed on the way and
 * the bytes arrive as they are. A double's spare bytes (zeros) land past the text's end, where
 * the line's next field overwrites them (textLineNeed leaves room).
 */
export class TextChunk {
  /** The text's bytes, ASCII only; write them here (`doubles` is the same memory). */
  readonly bytes: Uint8Array;
  /** The bytes as doubles in memory order, the last one padded with zeros. */
  readonly doubles: Float64Array;
  constructor(readonly length: number) {
    const memory = new ArrayBuffer((length + 7) & ~7);
    this.bytes = new Uint8Array(memory, 0, length);
    this.doubles = new Float64Array(memory);
  }
}

/**
 * Chunks up to this many bytes are written as doubles (up to 4 stores: the time's 24 bytes, an
 * IPv4 address, a usual upstream label), longer ones by a native copy. Each native copy was ~220
 * instructions a line, 3 copies a proxied request's line (per-request-2026-12-07.md).
 */
const CHUNK_DOUBLES_MAX = 32;

/**
 * %TypedArray%.prototype.set, read once: `b.set(...)` on a sink's Buffer was a generic load in
 * putChunk's optimized code (a LoadICTrampoline and LoadIC call per chunk copied, ~150
 * instructions for a request's two: callgrind, bench/http-proxy/per-request-2026-12-06e.md);
 * the known function called with .call is a direct call. Buffer has no `set` of its own (the
 * same copy). As @loch/http's internal typed-array-methods.ts does for its own hot paths.
 */
const typedArraySet = (
  Object.getPrototypeOf(Uint8Array.prototype) as {
    set(this: Uint8Array, src: ArrayLike<number>, offset: number): void;
  }
).set;

/** Writes `c` at `p` into `b` (`v` its view; 8 bytes of room past the chunk); returns where its text ends. */
function putChunk(b: Buffer, v: DataView, p: number, c: TextChunk): number {
  const n = c.length;
  if (n > CHUNK_DOUBLES_MAX) typedArraySet.call(b, c.bytes, p);
  else {
    const d = c.doubles;
    for (let i = 0; i < d.length; i++) putChunkDouble(v, p + 8 * i, d[i]!);
  }
  return p + n;
}

/** The chunk of an all-ASCII string, or null (a char above 0x7f: written char by char, as its sink's bytes). */
function asciiChunk(s: string): TextChunk | null {
  const c = new TextChunk(s.length);
  const bytes = c.bytes;
  for (let i = 0; i < s.length; i++) {
    const code = s.charCodeAt(i);
    if (code > 0x7f) return null;
    bytes[i] = code;
  }
  return c;
}

/**
 * The chunks of the strings of one field, by string: a server key or upstream label (config
 * strings, the same ones line after line), or a client address (one per connection, the same
 * for every connection from one host). The string of the last line is checked first (one
 * comparison, no hash lookup). Bounded: past `max` strings the rest are written char by char
 * and nothing more is kept (a proxy facing the internet sees more addresses than it keeps).
 */
class ChunkCache {
  #last: string | undefined = undefined;
  #lastChunk: TextChunk | null = null;
  readonly #kept = new Map<string, TextChunk | null>();
  constructor(private readonly max: number) {}

  /** `s`'s chunk, or null: write `s` char by char (not ASCII, or not kept). */
  get(s: string): TextChunk | null {
    if (s === this.#last) return this.#lastChunk;
    let c = this.#kept.get(s);
    if (c === undefined) {
      if (this.#kept.size >= this.max) return null;
      c = asciiChunk(s);
      this.#kept.set(s, c);
    }
    this.#last = s;
    this.#lastChunk = c;
    return c;
  }
}

/** Most strings kept as chunks per field and thread (a config names a few servers and upstreams). */
const KEPT_LABELS = 256;
/** Most client addresses kept as chunks per thread (~300 bytes each: ~75 KiB at most). */
const KEPT_ADDRESSES = 256;
const servers = new ChunkCache(KEPT_LABELS);
const upstreams = new ChunkCache(KEPT_LABELS);
const addresses = new ChunkCache(KEPT_ADDRESSES);

/** A word of 4 bytes for setInt32(p, word, true) (little-endian: b0 first, on any platform). */
function wordOf(b0: number, b1: number, b2: number, b3: number): number {
  return b0 | (b1 << 8) | (b2 << 16) | (b3 << 24);
}
/** " ddd" for a status of 3 digits (100-999), by status. */
const STATUS_WORDS = Int32Array.from({ length: 1000 }, (_, s) =>
  wordOf(0x20, 0x30 + Math.floor(s / 100), 0x30 + (Math.floor(s / 10) % 10), 0x30 + (s % 10)),
);
/** ".dd\n", the end of a line, by hundredths. */
const CENTS_WORDS = Int32Array.from({ length: 100 }, (_, c) =>
  wordOf(0x2e, 0x30 + Math.floor(c / 10), 0x30 + (c % 10), 0x0a),
);
/** "unix", a Unix-socket client. */
const UNIX_WORD = wordOf(0x75, 0x6e, 0x69, 0x78);

/** A DataView over all of `b`. */
function viewOf(b: Buffer): DataView {
  return new DataView(b.buffer, b.byteOffset, b.length);
}

/** The scratch buffer textLine formats into (grown for a longer line, kept), and its view. */
let scratch = Buffer.allocUnsafeSlow(1024);
let scratchView = viewOf(scratch);
/** A file sink's buffer before its first line. */
const NO_BYTES = Buffer.alloc(0);
/**
 * A file sink's buffer: room for a write's worth of lines (FLUSH_BYTES) and the line that passes
 * it. A sink keeps two (one being written, one filled): 136 KiB per worker and file once lines
 * came; one that grew while the disk was busy is let go after its write.
 */
const BUFFER_BYTES = FLUSH_BYTES + 4096;

/**
 * Bytes textLineInto may write for `r` at most (every field one byte per char, numbers at most
 * 16 digits, a chunk's padding and the separators within the 96).
 */
function textLineNeed(r: AccessRecord): number {
  const client = r.client;
  return (
    (r.timeChunk === undefined ? r.time.length : r.timeChunk.length) +
    r.server.length +
    (client.family !== 'unix' ? client.address.length : 4) +
    r.method.length +
    r.target.length +
    (r.upstream ?? '-').length +
    96
  );
}

/**
 * Writes `r`'s text line into `b` (`v`: a view of all of it) at `at` (textLineNeed(r) bytes of
 * room) and returns where it ends, or -1 when the line is for textLineOf: a method or target
 * that is empty or needs escaping, a time, server, upstream or client address with a char above
 * `maxChar` (0xff for a latin1 string of the bytes, 0x7f for UTF-8 bytes as they are), a
 * status or byte count that is not a plain integer, a duration whose two-decimal rounding is not
 * certain from its double (toFixed rounds the exact binary value: a product within 1e-6 of a
 * half is left to it) or not in [0, 1e6). Bytes after `at` may be written either way.
 */
function textLineInto(r: AccessRecord, b: Buffer, v: DataView, at: number, maxChar: number): number {
  const client = r.client;
  const time = r.timeChunk;
  let p: number;
  if (time !== undefined) p = putChunk(b, v, at, time);
  else {
    p = latin1(b, at, r.time, maxChar);
    if (p < 0) return -1;
  }
  b[p++] = 0x20;
  p = text(b, v, p, r.server, maxChar, servers);
  if (p < 0) return -1;
  b[p++] = 0x20;
  if (client.family !== 'unix') {
    const port = client.port;
    const bracket = port !== 0 && client.family === 'ipv6';
    if (bracket) b[p++] = 0x5b;
    p = text(b, v, p, client.address, maxChar, addresses);
    if (p < 0) return -1;
    if (port !== 0) {
      if (bracket) b[p++] = 0x5d;
      b[p++] = 0x3a;
      p = digits(b, p, port);
      if (p < 0) return -1;
    }
  } else {
    v.setInt32(p, UNIX_WORD, true);
    p += 4;
  }
  b[p++] = 0x20;
  p = safe(b, p, r.method);
  if (p < 0) return -1;
  b[p++] = 0x20;
  p = safe(b, p, r.target);
  if (p < 0) return -1;
  const status = r.status;
  if (status >= 100 && status <= 999 && (status | 0) === status) {
    v.setInt32(p, STATUS_WORDS[status]!, true);
    p += 4;
  } else {
    b[p++] = 0x20;
    p = digits(b, p, status);
    if (p < 0) return -1;
  }
  b[p++] = 0x20;
  p = digits(b, p, r.bytes);
  if (p < 0) return -1;
  b[p++] = 0x20;
  const upstream = r.upstream;
  if (upstream === undefined) b[p++] = 0x2d;
  else {
    p = text(b, v, p, upstream, maxChar, upstreams);
    if (p < 0) return -1;
  }
  b[p++] = 0x20;
  // r.ms.toFixed(2), from the nearest hundredth when the double decides it.
  const ms = r.ms;
  // Below 1e6 ms the product's rounding error is under 1e-8, far inside the window below.
  if (!(ms >= 0 && ms < 1e6)) return -1;
  const t = ms * 100;
  const f = t - Math.floor(t);
  if (f > 0.499999 && f < 0.500001) return -1;
  const h = Math.round(t);
  const whole = Math.floor(h / 100);
  p = digits(b, p, whole);
  // ".dd\n": the last 4 bytes.
  v.setInt32(p, CENTS_WORDS[h - whole * 100]!, true);
  return p + 4;
}

/**
 * Writes `s` at `p` as it is when no char of it is above `maxChar` (0xff: the string latin1Slice
 * makes of those bytes is `s` again; 0x7f: they are its UTF-8 too), else -1.
 */
function latin1(b: Uint8Array, p: number, s: string, maxChar: number): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > maxChar) return -1;
    b[p + i] = c;
  }
  return p + n;
}

/**
 * Writes a server key, upstream label or client address at `p` as latin1() does: from its chunk
 * in `cache` when it has one (an ASCII string: the same bytes for every sink's maxChar), else
 * char by char.
 */
function text(b: Buffer, v: DataView, p: number, s: string, maxChar: number, cache: ChunkCache): number {
  const c = cache.get(s);
  return c === null ? latin1(b, p, s, maxChar) : putChunk(b, v, p, c);
}

/** Writes `s` at `p` when textField would leave it as it is: not empty, nothing to escape (else -1). */
function safe(b: Uint8Array, p: number, s: string): number {
  const n = s.length;
  if (n === 0) return -1;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e || c === 0x22 || c === 0x5c) return -1;
    b[p + i] = c;
  }
  return p + n;
}

/** How many decimal digits a small integer of 100,000 or more has. */
function longDigits(v: number): number {
  let k = 6;
  for (let x = (v / 1_000_000) | 0; x > 0; x = (x / 10) | 0) k++;
  return k;
}

/** Writes the decimal digits of an integer in [0, 2^53) at `p` (else -1). */
function digits(b: Uint8Array, p: number, v: number): number {
  if (v >= 0 && v <= 0x7fffffff && (v | 0) === v) {
    // A small integer (every port, status and byte count under 2 GiB): its length by
    // comparisons, its digits by integer division (a multiply in TurboFan's code).
    const k = v < 100_000 ? (v < 100 ? (v < 10 ? 1 : 2) : v < 1000 ? 3 : v < 10_000 ? 4 : 5) : longDigits(v);
    for (let i = p + k - 1; i >= p; i--) {
      const q = (v / 10) | 0;
      b[i] = 0x30 + v - q * 10;
      v = q;
    }
    return p + k;
  }
  if (!(v >= 0 && v <= Number.MAX_SAFE_INTEGER) || Math.floor(v) !== v) return -1;
  let k = 1;
  for (let x = v; x >= 10; x = Math.floor(x / 10)) k++;
  for (let i = p + k - 1; i >= p; i--) {
    const q = Math.floor(v / 10);
    b[i] = 0x30 + (v - q * 10);
    v = q;
  }
  return p + k;
}

/**
 * One JSON object per line (JSON lines). HTTP: time, server, client, client_port, method, path,
 * status, bytes, duration_ms, upstream, upstream_status, upstream_ms, request_id (x-request-id),
 * and peer when a trusted proxy stood between. `thrift` lines name the call's kind ("call" or
 * "oneway"), service (a multiplexed name's prefix, else null) and method instead.
 */
export function jsonLine(r: AccessRecord, thrift: boolean): string {
  let s = `{"time":"${r.time}","server":${jsonString(r.server)},"client":`;
  s +=
    r.client.family === 'unix'
      ? '"unix"'
      : `${jsonString(r.client.address)},"client_port":${r.client.port === 0 ? 'null' : r.client.port}`;
  if (r.peer !== undefined)
    s += `,"peer":${r.peer.family === 'unix' ? '"unix"' : jsonString(r.peer.address)}`;
  if (thrift) {
    const colon = r.target.indexOf(':');
    const service = colon < 0 ? null : r.target.slice(0, colon);
    const method = colon < 0 ? r.target : r.target.slice(colon + 1);
    s += `,"kind":"${r.method === 'ONEWAY' ? 'oneway' : 'call'}","service":${service === null ? 'null' : jsonString(service)},"method":${jsonString(method)}`;
  } else {
    s += `,"method":${jsonString(r.method)},"path":${jsonString(r.target)}`;
  }
  s += `,"status":${r.status},"bytes":${r.bytes},"duration_ms":${round(r.ms)}`;
  s += `,"upstream":${r.upstream === undefined ? 'null' : jsonString(r.upstream)}`;
  if (!thrift) {
    s += `,"upstream_status":${r.upstreamStatus ?? 'null'},"upstream_ms":${r.upstreamMs === undefined ? 'null' : round(r.upstreamMs)}`;
    s += `,"request_id":${r.requestId === undefined ? 'null' : jsonString(r.requestId)}`;
  }
  return `${s}}\n`;
}

/** Characters a JSON string must escape (and lone surrogates, which JSON.stringify escapes). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what must be escaped
const JSON_UNSAFE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * A string as JSON: quoted as it is when nothing in it needs escaping (the usual method, path,
 * server and upstream), else JSON.stringify's escaping.
 */
function jsonString(value: string): string {
  return JSON_UNSAFE.test(value) ? JSON.stringify(value) : `"${value}"`;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
