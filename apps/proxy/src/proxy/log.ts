/**
 * Logging for the proxy: the access log (one line per request, to stdout) and the operational
 * log (levels, to stderr). Access lines are buffered per thread and written in one call every
 * 50 ms (a coarse tick, like nginx's `flush=`) or as soon as 256 lines are waiting, so logging
 * costs a string concatenation per request and no write per request (in a worker thread each
 * write is a message to the main thread); operational lines go out on the next event-loop
 * turn. The timestamp string is recomputed at most once per
 * millisecond. Not for metrics.
 *
 * Access log line (space separated; "-" for an absent field):
 *   2026-11-26T06:00:00.123Z web 127.0.0.1:51234 GET /api/x?y=1 200 1234 127.0.0.1:9000 0.84
 *   time                     server peer         method target status bytes upstream ms
 */
import { formatAddress, type SocketAddress } from '@loch/uring-runtime';

/** Log levels, most verbose first. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'off';

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, off: 100 };
const FLUSH_LINES = 256;
/** Longest time an access-log line waits in the buffer (ms). */
export const ACCESS_FLUSH_MS = 50;

/**
 * A buffered line writer for one output. Lines wait at most `flushMs` (a coarse tick; 0 = the
 * next event-loop turn) or until FLUSH_LINES are pending. In a worker thread every write is a
 * message to the main thread, so a coarse tick is what keeps logging off the hot path.
 */
class LineBuffer {
  #lines = '';
  #count = 0;
  #timer: NodeJS.Timeout | NodeJS.Immediate | null = null;
  constructor(
    private readonly write: (text: string) => void,
    private readonly flushMs: number,
  ) {}

  push(line: string): void {
    this.#lines += line;
    if (++this.#count >= FLUSH_LINES) this.flush();
    else if (this.#timer === null) {
      this.#timer = this.flushMs > 0 ? setTimeout(this.#onTick, this.flushMs) : setImmediate(this.#onTick);
    }
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
    this.write(text);
  }
}

/** The logger of one thread (main or worker). */
export class ProxyLog {
  /** Current level; changed on reload. */
  level: LogLevel;
  readonly #prefix: string;
  readonly #access: LineBuffer;
  readonly #ops: LineBuffer;
  #lastMs = 0;
  #lastIso = '';

  constructor(
    level: LogLevel,
    prefix: string,
    out: (text: string) => void = (t) => process.stdout.write(t),
    err: (text: string) => void = (t) => process.stderr.write(t),
    flushMs = ACCESS_FLUSH_MS,
  ) {
    this.level = level;
    this.#prefix = prefix;
    this.#access = new LineBuffer(out, flushMs);
    this.#ops = new LineBuffer(err, 0);
  }

  /** Current time as ISO 8601 (cached per millisecond). */
  now(): string {
    const ms = Date.now();
    if (ms !== this.#lastMs) {
      this.#lastMs = ms;
      this.#lastIso = new Date(ms).toISOString();
    }
    return this.#lastIso;
  }

  /** Whether messages at `level` are written. */
  enabled(level: Exclude<LogLevel, 'off'>): boolean {
    return RANK[level] >= RANK[this.level];
  }

  debug(message: string): void {
    if (RANK.debug >= RANK[this.level]) this.#ops.push(`${this.now()} debug ${this.#prefix}${message}\n`);
  }
  info(message: string): void {
    if (RANK.info >= RANK[this.level]) this.#ops.push(`${this.now()} info ${this.#prefix}${message}\n`);
  }
  warn(message: string): void {
    if (RANK.warn >= RANK[this.level]) this.#ops.push(`${this.now()} warn ${this.#prefix}${message}\n`);
  }
  error(message: string): void {
    if (RANK.error >= RANK[this.level]) this.#ops.push(`${this.now()} error ${this.#prefix}${message}\n`);
  }

  /** One access-log line. */
  access(
    server: string,
    peer: SocketAddress,
    method: string,
    target: string,
    status: number,
    bytes: number,
    upstream: string | undefined,
    ms: number,
  ): void {
    this.#access.push(
      `${this.now()} ${server} ${peerText(peer)} ${method} ${target} ${status} ${bytes} ${upstream ?? '-'} ${ms.toFixed(2)}\n`,
    );
  }

  /** Writes every buffered line now (before exit). */
  flush(): void {
    this.#access.flush();
    this.#ops.flush();
  }
}

function peerText(peer: SocketAddress): string {
  return peer.family === 'unix' ? 'unix' : formatAddress(peer);
}
