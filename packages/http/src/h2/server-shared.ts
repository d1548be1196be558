/**
 * What every HTTP/2 connection of one server shares: the resolved limits (our SETTINGS, the
 * flood counters' budgets, the output bound), our first SETTINGS frame encoded once, and the
 * server-wide choices the h2 sessions need from the neutral server (date field, method policy,
 * field count). One per HttpServer, made by the server at its first HTTP/2 connection (limits.ts
 * holds the options it is made from).
 *
 * Not for per-connection state (server-session.ts).
 */
import { encodeSettings, encodeWindowUpdate } from './frames.js';
import type { ResolvedHttp2Limits } from './limits.js';

/** What the h2 sessions of one server share; see the module comment. */
export class H2ServerShared {
  /** Our SETTINGS (and the connection WINDOW_UPDATE raising its window), the first bytes we send. */
  readonly preface: Uint8Array;

  constructor(
    readonly limits: ResolvedHttp2Limits,
    /** The `date` value to add to responses without one, or null (option `date: false`). */
    readonly date: (() => string) | null,
    /** Methods accepted (others answered 501), or 'any'. */
    readonly methods: ReadonlySet<string> | 'any',
    /** Most fields of a request head (431 past it). */
    readonly maxHeaderCount: number,
  ) {
    const settings = encodeSettings({
      maxConcurrentStreams: limits.maxConcurrentStreams,
      initialWindowSize: limits.initialWindowSize,
      maxFrameSize: limits.maxFrameSize,
      maxHeaderListSize: limits.maxHeaderListSize,
    });
    const extra = limits.connectionWindowSize - 65535;
    if (extra > 0) {
      const update = encodeWindowUpdate(0, extra);
      const out = new Uint8Array(settings.length + update.length);
      out.set(settings, 0);
      out.set(update, settings.length);
      this.preface = out;
    } else {
      this.preface = settings;
    }
  }
}
