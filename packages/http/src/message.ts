/**
 * Request and response values shared by the HTTP/1.1 codec, the server core and the client, and
 * shaped so an HTTP/2 stream can carry them unchanged: headers are an HttpHeaders multimap (no
 * wire casing, no framing), the body is an HttpBody with its framing kind, and pseudo-header
 * information (method, target, status) lives in fields. Not for routing or URL parsing.
 */
import { EMPTY_BODY, type HttpBody } from './body.js';
import { type HeadersInit, HttpHeaders } from './headers.js';
import type { HttpStream } from './transport.js';

/** Protocol version of a message: '1.0', '1.1' (HTTP/1 wire), '2' (HTTP/2 streams). */
export type HttpVersion = '1.0' | '1.1' | '2';

/**
 * Form of a request target (RFC 9112 §3.2): `origin` (`/path?q`), `absolute` (`http://h/p`, sent
 * to proxies), `authority` (`host:port`, CONNECT only), `asterisk` (`*`, OPTIONS only).
 */
export type TargetForm = 'origin' | 'absolute' | 'authority' | 'asterisk';

/** An HTTP request. */
export interface HttpRequest {
  /** Method, case-sensitive (`GET`). */
  method: string;
  /** Request target as sent on the wire (HTTP/2: `:path`, or `:authority` for CONNECT). */
  target: string;
  /** Form of the target. */
  targetForm: TargetForm;
  /** Protocol version it arrived with (or is to be sent with). */
  version: HttpVersion;
  /** Header fields (Host included; HTTP/2 maps `:authority` to `host`). */
  headers: HttpHeaders;
  /** The body. */
  body: HttpBody;
}

/**
 * A request as a server hands it to its handler: the request and the context of the connection
 * it came on (what the server's `context` option made for that connection, shared by its
 * requests). The context travels on the request so that a handler is a one-argument Service.
 */
export interface HttpServerRequest<Cx> extends HttpRequest {
  /** The connection's context. */
  context: Cx;
}

/** An HTTP response. */
export interface HttpResponse {
  /** Status code, 100-599. */
  status: number;
  /** Reason phrase (HTTP/1 only; empty means the standard phrase). */
  reason: string;
  /** Protocol version it arrived with (or is to be sent with). */
  version: HttpVersion;
  /** Header fields, without framing (Content-Length/Transfer-Encoding are derived from the body). */
  headers: HttpHeaders;
  /** The body. */
  body: HttpBody;
  /**
   * Who takes the connection over after a `101 Switching Protocols` answer (HTTP/1.1 only): a
   * server sends a 101 only when the request asked to upgrade (Connection: upgrade and an
   * Upgrade field, no body) and this is set; otherwise a 1xx answer is a handler error (500).
   */
  tunnel?: HttpTunnel;
  /**
   * Set by a client on a response that switched protocols (HTTP/1.1: a 101 answering a request
   * that carried Upgrade, or a 2xx to CONNECT; the response has no body): takes the connection
   * over, once. What it returns is the caller's to read, write and close; the connection never
   * carries HTTP again (a pool never gets it back). Absent on every other response.
   */
  takeOver?: () => HttpUpgradedConnection;
}

/**
 * A connection handed over after a response that switched protocols (`HttpResponse.takeOver`):
 * the raw stream, and the bytes the server sent behind the response head (the new protocol's
 * first bytes, possibly empty; a copy). With a server's tunnel it makes a proxied upgrade: the
 * tunnel pipes its stream and head to this one and back.
 */
export interface HttpUpgradedConnection {
  readonly stream: HttpStream;
  readonly head: Uint8Array;
}

/**
 * Runs a connection after a 101: `stream` is the raw connection (the 101 head already written),
 * `head` the bytes the client sent after its request head (the new protocol's first bytes,
 * possibly empty). The server closes the stream once the returned promise settles; it arms no
 * deadline meanwhile (the tunnel keeps its own), and a graceful server close waits for it.
 */
export type HttpTunnel = (stream: HttpStream, head: Uint8Array) => Promise<void>;

/** Builds a request; the target form is derived from method and target. */
export function createRequest(
  method: string,
  target: string,
  init: { headers?: HeadersInit; body?: HttpBody; version?: HttpVersion } = {},
): HttpRequest {
  return {
    method,
    target,
    targetForm: targetFormOf(method, target),
    version: init.version ?? '1.1',
    headers: init.headers instanceof HttpHeaders ? init.headers : new HttpHeaders(init.headers),
    body: init.body ?? EMPTY_BODY,
  };
}

/** Builds a response. */
export function createResponse(
  status: number,
  init: { headers?: HeadersInit; body?: HttpBody; reason?: string; version?: HttpVersion } = {},
): HttpResponse {
  return {
    status,
    reason: init.reason ?? '',
    version: init.version ?? '1.1',
    headers: init.headers instanceof HttpHeaders ? init.headers : new HttpHeaders(init.headers),
    body: init.body ?? EMPTY_BODY,
  };
}

/** The target form a method and target imply. */
export function targetFormOf(method: string, target: string): TargetForm {
  if (method === 'CONNECT') return 'authority';
  if (target === '*') return 'asterisk';
  if (target.charCodeAt(0) === 0x2f) return 'origin';
  return 'absolute';
}

/**
 * The authority a request is for: from an absolute-form or authority-form target when present
 * (RFC 9112 §3.2.2: it wins over Host), else the Host field; undefined when neither is there.
 * HTTP/2's `:authority` maps here.
 */
export function authorityOf(request: HttpRequest): string | undefined {
  if (request.targetForm === 'authority') return request.target;
  if (request.targetForm === 'absolute') {
    const start = request.target.indexOf('//') + 2;
    let end = start;
    while (end < request.target.length) {
      const c = request.target.charCodeAt(end);
      if (c === 0x2f || c === 0x3f || c === 0x23) break;
      end++;
    }
    const authority = request.target.slice(start, end);
    const at = authority.lastIndexOf('@');
    return at >= 0 ? authority.slice(at + 1) : authority;
  }
  return request.headers.get('host');
}

/**
 * The path and query of a request (`/a?b`), whatever the target form: `*` for asterisk-form,
 * `''` for authority-form, the part after the authority for absolute-form (`/` when empty).
 * HTTP/2's `:path` maps here.
 */
export function pathOf(request: HttpRequest): string {
  switch (request.targetForm) {
    case 'origin':
    case 'asterisk':
      return request.target;
    case 'authority':
      return '';
    default: {
      const t = request.target;
      const start = t.indexOf('//') + 2;
      for (let i = start; i < t.length; i++) {
        const c = t.charCodeAt(i);
        if (c === 0x2f) return t.slice(i);
        if (c === 0x3f) return `/${t.slice(i)}`;
        if (c === 0x23) break;
      }
      return '/';
    }
  }
}
