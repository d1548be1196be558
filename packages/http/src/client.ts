/**
 * The client side of @loch/http, whatever the protocol: the options of a client connection and
 * of one exchange, and the target an exchange reports to. The HTTP/1.1 client connection is
 * HttpClient (h1/client.ts); HTTP/2's session will take the same options and report to the
 * same target, so a pool or a proxy drives either the same way.
 */
import type { H1Limits } from './h1/decoder.js';
import type { HttpRequest, HttpResponse } from './message.js';

export { HttpClient } from './h1/client.js';

/** HttpClient options. Timeouts are in milliseconds; 0 disables one. */
export interface HttpClientOptions {
  /** Response head limits. */
  readonly limits?: Partial<H1Limits>;
  /** Host header to add when a request has none. */
  readonly authority?: string;
  /** From the end of the request head to the response head (default 60 s). */
  readonly responseTimeout?: number;
  /** Between two reads of a response body (default 60 s). */
  readonly bodyTimeout?: number;
  /** For each write to make progress (default 60 s). */
  readonly writeTimeout?: number;
  /** How long to wait for 100 Continue before sending the body anyway (default 1 s). */
  readonly expectContinueTimeout?: number;
}

/**
 * Options of one exchange; each timeout defaults to the client's. Passing none costs nothing:
 * a signal adds one listener for the exchange.
 */
export interface HttpSendOptions {
  /**
   * Aborts the exchange (sending, waiting for the head, reading the body): it fails with
   * HttpAbortedError and the connection is not reusable.
   */
  readonly signal?: AbortSignal | undefined;
  /** From the end of the request head to the response head (ms, 0 = none). */
  readonly responseTimeout?: number | undefined;
  /** Between two reads of the response body (ms, 0 = none). */
  readonly bodyTimeout?: number | undefined;
  /** For each write of the request to make progress (ms, 0 = none). */
  readonly writeTimeout?: number | undefined;
}

/**
 * Receives the outcome of one `HttpClient.exchange()`: the response at its head (read its body,
 * or `discard()` it, before the next exchange) or the failure, exactly once; from inside
 * `exchange()` only when bytes buffered before the request already decide it. A caller that implements it once (a pooled connection) starts an exchange
 * without a promise of its own.
 */
export interface HttpExchangeTarget {
  onResponse(response: HttpResponse): void;
  onFailure(error: unknown): void;
}

/**
 * An exchange in progress that its caller may cancel while it waits for the response head (a
 * proxy whose own client went away): what `H2ClientSession.exchange()` returns, and what a pooled
 * HTTP/1.1 connection offers (@loch/transports). No signal and no listener per exchange: the
 * caller keeps the object and calls it only when it must.
 */
export interface HttpExchangeCancel {
  /**
   * Cancels the exchange of `request` if it is still waiting for its response head: it fails
   * with HttpAbortedError (HTTP/2: the stream is reset with CANCEL, the session lives on;
   * HTTP/1.1: the connection is closed, never reused). Does nothing once the head arrived (the
   * body is the reader's to abandon), after the exchange ended, or for another request.
   */
  cancelExchange(request: HttpRequest): void;
}
