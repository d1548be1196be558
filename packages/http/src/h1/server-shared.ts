/**
 * What every HTTP/1.1 connection of one server shares: a pool of request decoders (a parked
 * connection lends its decoder back, so 10,000 idle connections hold none), the cache of the
 * last fixed-length response head, and the head options object the writer fills and reads
 * synchronously per response. One per HttpServer, made by the server for its h1 connections.
 */
import { plainResponse } from '../internal/answers.js';
import type { HttpRequest, HttpResponse } from '../message.js';
import { RequestDecoder, type RequestDecoderOptions } from './decoder.js';
import { ResponseHeadCache, type ResponseHeadOptions } from './encoder.js';
import type { H1ServerConnection } from './server-connection.js';

/** Most idle decoders a server keeps for reuse. */
const MAX_SPARE_DECODERS = 256;
/** Most rejection answers kept (one per code; the codes are the ERR_HTTP_* a server rejects with). */
const MAX_REJECTIONS = 64;
/** Most idle answer waiters a server keeps for reuse (one is busy per request awaiting its handler). */
const MAX_SPARE_WAITERS = 256;

/**
 * Waits for a handler's promise on behalf of one HTTP/1.1 request of the request loop's fast
 * lane (H1ServerConnection.run): `then(waiter.resolve, waiter.reject)` with settlers made once
 * per waiter, and the request's loop state (connection, request, keep-alive) held here rather
 * than in a suspended async function. Pooled per server, so a request costs the promise
 * reaction and `then`'s promise, and a connection holds nothing for it between requests.
 */
export class AnswerWaiter {
  conn: H1ServerConnection<unknown> | null = null;
  req: HttpRequest | null = null;
  keepAlive = false;

  constructor(private readonly spare: AnswerWaiter[]) {}

  readonly resolve = (res: HttpResponse): void => {
    const conn = this.conn!;
    const req = this.req!;
    const keepAlive = this.keepAlive;
    this.release();
    conn.answerCame(req, res, keepAlive);
  };

  readonly reject = (error: unknown): void => {
    const conn = this.conn!;
    const req = this.req!;
    const keepAlive = this.keepAlive;
    this.release();
    conn.answerFailed(req, error, keepAlive);
  };

  private release(): void {
    this.conn = null;
    this.req = null;
    if (this.spare.length < MAX_SPARE_WAITERS) this.spare.push(this);
  }
}

export class H1ServerShared {
  /** The last fixed-length response head, shared by every connection. */
  readonly heads = new ResponseHeadCache();
  /** What a parked connection holds instead of a decoder: never fed, so always idle. */
  readonly idleDecoder: RequestDecoder;
  /** The response head options, rewritten and read synchronously per response. */
  readonly headOptions: { -readonly [K in keyof ResponseHeadOptions]: ResponseHeadOptions[K] };
  /** Decoders of parked connections, for the next one that wakes up. */
  private readonly decoders: RequestDecoder[] = [];
  /** The answers to rejected requests, by code (see rejection()). */
  private readonly rejections = new Map<string, HttpResponse>();
  /** Waiters not in use (see AnswerWaiter). */
  private readonly waiters: AnswerWaiter[] = [];

  constructor(
    private readonly limits: RequestDecoderOptions,
    date: boolean,
  ) {
    this.idleDecoder = new RequestDecoder(limits);
    this.headOptions = {
      framing: 'none',
      length: 0,
      keepAlive: true,
      requestMinor: 1,
      requestMethod: 'GET',
      date,
    };
  }

  /**
   * The server's own answer to a request it rejects (a 408 for a head whose deadline passed, a
   * 400 for a malformed one): one response per code, shared by every connection. A burst of
   * them (10,000 slowloris heads cut within a second) then encodes one head: `heads` sees the
   * same headers again and copies its last head. Only for answers no hook sees or changes.
   */
  rejection(status: number, code: string): HttpResponse {
    const known = this.rejections.get(code);
    if (known !== undefined && known.status === status) return known;
    const res = plainResponse(status, code);
    if (this.rejections.size < MAX_REJECTIONS) this.rejections.set(code, res);
    return res;
  }

  /**
   * Waits for `answer`, the handler's promise for `req` on `conn` (keep-alive as the request
   * allows): conn.answerCame or conn.answerFailed hears its outcome.
   */
  waitFor(
    answer: Promise<HttpResponse>,
    conn: H1ServerConnection<unknown>,
    req: HttpRequest,
    keepAlive: boolean,
  ): void {
    const w = this.waiters.pop() ?? new AnswerWaiter(this.waiters);
    w.conn = conn;
    w.req = req;
    w.keepAlive = keepAlive;
    answer.then(w.resolve, w.reject);
  }

  /** A decoder for a connection that starts or wakes up. */
  takeDecoder(): RequestDecoder {
    return this.decoders.pop() ?? new RequestDecoder(this.limits);
  }

  /** A parked connection's decoder (idle: no buffered input, no message in progress). */
  spareDecoder(d: RequestDecoder): void {
    if (this.decoders.length < MAX_SPARE_DECODERS) this.decoders.push(d);
  }
}
