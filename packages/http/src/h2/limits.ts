/**
 * The HTTP/2 limits a server takes (HttpServer's `http2` option) and their defaults, resolved
 * and checked when the server is made. Apart from the rest of h2/ on purpose: every HttpServer
 * loads this module, and only one whose client speaks HTTP/2 loads the codec and the session
 * (server.ts imports them at the first h2 connection; issue 18). So no import of frames.ts here.
 *
 * Not for the SETTINGS frame these become (server-shared.ts).
 */

/** The largest flow-control window (RFC 9113 §6.9.1: 2^31-1), frames.ts's MAX_WINDOW_SIZE. */
const MAX_WINDOW_SIZE = 0x7fffffff;

/**
 * HTTP/2 server limits (the `http2` option of HttpServer). Defaults in parentheses; the
 * flood budgets count per `floodInterval` and end the connection with GOAWAY
 * ENHANCE_YOUR_CALM when exceeded (0 turns a counter off).
 */
export interface Http2ServerLimits {
  /** SETTINGS_MAX_CONCURRENT_STREAMS (100); streams over it are refused (REFUSED_STREAM). */
  readonly maxConcurrentStreams?: number;
  /**
   * SETTINGS_INITIAL_WINDOW_SIZE (65535): request body octets a client may send on a stream
   * before its handler reads them; with maxConcurrentStreams it bounds a connection's buffers.
   */
  readonly initialWindowSize?: number;
  /** The connection's receive window (1 MiB), credited as DATA arrives (streams bound the buffers). */
  readonly connectionWindowSize?: number;
  /** SETTINGS_MAX_FRAME_SIZE (16384). */
  readonly maxFrameSize?: number;
  /**
   * SETTINGS_MAX_HEADER_LIST_SIZE (the server's `limits.maxHeadSize` plus 32 per allowed field,
   * 19,584 by default); a larger decoded request head is answered 431.
   */
  readonly maxHeaderListSize?: number;
  /** The interval the flood budgets count over, ms (1000). */
  readonly floodInterval?: number;
  /** Streams reset per interval, by the client or by us for its errors (200): rapid reset. */
  readonly maxResetsPerInterval?: number;
  /** SETTINGS frames per interval (100). */
  readonly maxSettingsPerInterval?: number;
  /** PING frames per interval (100). */
  readonly maxPingsPerInterval?: number;
  /** Frames that carry nothing (empty DATA without END_STREAM, PRIORITY) per interval (200). */
  readonly maxEmptyFramesPerInterval?: number;
  /**
   * WINDOW_UPDATE frames of less than 1 KiB per interval (1000): a tiny-window client makes us
   * write a DATA frame per update; a client reading fast sends large increments, not counted.
   */
  readonly maxWindowUpdatesPerInterval?: number;
  /** Output octets queued before the session stops reading input (256 KiB). */
  readonly maxOutputBuffer?: number;
  /**
   * How long the client has to acknowledge our SETTINGS, ms (10,000; 0: no limit). A client that
   * never does is ended with GOAWAY SETTINGS_TIMEOUT (RFC 9113 §6.5.3): until it acknowledges,
   * our window and frame-size settings are not in force for it.
   */
  readonly settingsTimeout?: number;
}

/** The limits with every default filled in. */
export type ResolvedHttp2Limits = Required<Http2ServerLimits>;

/** Resolves `limits` against the defaults; `maxHeaderListSize` defaults from the h1 head limits. */
export function resolveHttp2Limits(
  limits: Http2ServerLimits,
  maxHeadSize: number,
  maxHeaderCount: number,
): ResolvedHttp2Limits {
  const r: ResolvedHttp2Limits = {
    maxConcurrentStreams: limits.maxConcurrentStreams ?? 100,
    initialWindowSize: limits.initialWindowSize ?? 65535,
    connectionWindowSize: limits.connectionWindowSize ?? 1024 * 1024,
    maxFrameSize: limits.maxFrameSize ?? 16384,
    maxHeaderListSize: limits.maxHeaderListSize ?? maxHeadSize + 32 * maxHeaderCount,
    floodInterval: limits.floodInterval ?? 1000,
    maxResetsPerInterval: limits.maxResetsPerInterval ?? 200,
    maxSettingsPerInterval: limits.maxSettingsPerInterval ?? 100,
    maxPingsPerInterval: limits.maxPingsPerInterval ?? 100,
    maxEmptyFramesPerInterval: limits.maxEmptyFramesPerInterval ?? 200,
    maxWindowUpdatesPerInterval: limits.maxWindowUpdatesPerInterval ?? 1000,
    maxOutputBuffer: limits.maxOutputBuffer ?? 256 * 1024,
    settingsTimeout: limits.settingsTimeout ?? 10_000,
  };
  if (r.initialWindowSize < 1 || r.initialWindowSize > MAX_WINDOW_SIZE)
    throw new RangeError(`http2.initialWindowSize ${r.initialWindowSize} outside 1..2^31-1`);
  if (r.connectionWindowSize < 65535 || r.connectionWindowSize > MAX_WINDOW_SIZE)
    throw new RangeError(`http2.connectionWindowSize ${r.connectionWindowSize} outside 65535..2^31-1`);
  if (r.maxConcurrentStreams < 1) throw new RangeError('http2.maxConcurrentStreams must be at least 1');
  return r;
}
