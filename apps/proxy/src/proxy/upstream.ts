/**
 * The upstream layer, innermost in the chain: picks an upstream of the matched route with the
 * route's balancer, applies the Host policy, sends the request over a pooled connection and
 * returns the upstream's response with its hop-by-hop fields removed and Via added. The
 * connection goes back to the pool when the response body has been passed on completely;
 * otherwise it is closed. A pooled connection that turns out dead before any response byte
 * (the upstream closed it while idle) is retried once on a fresh connection when the request
 * has no body. `make(old)` keeps the old service's connector, so pools survive reloads.
 * Not for routing (route.ts) or error responses (core.ts).
 */
import {
  type BodyKind,
  type HttpBody,
  HttpConnectionError,
  type HttpHeaders,
  type HttpRequest,
  type HttpResponse,
} from '@loch/http';
import { type MakeService, makeFn, type Service } from '@loch/service-async';
import type { UpstreamConnection, UpstreamConnector, UpstreamTimeouts } from './connector.js';
import type { RoutedCx } from './context.js';
import { classifyUpstreamError } from './errors.js';
import { ForwardedBody } from './forwarded-body.js';
import { cleanResponseHeaders } from './header-hygiene.js';

/** Sends routed requests upstream. */
export class UpstreamService implements Service<RoutedCx, HttpResponse> {
  constructor(
    /** The connector (and its pool); carried over from the previous service on reload. */
    readonly connector: UpstreamConnector,
    readonly timeouts: UpstreamTimeouts,
  ) {}

  async call(cx: RoutedCx): Promise<HttpResponse> {
    const match = cx.get('route');
    const route = match.route;
    const upstream = route.upstreams[route.balancer.pick()]!;
    cx.set('upstream', upstream);
    const req = cx.get('request');
    if (route.hostHeader === 'upstream') req.headers.set('host', upstream.address.authority);
    req.target = cx.get('upstreamTarget');
    const connector = this.connector;
    let conn: UpstreamConnection;
    try {
      conn = await connector.acquire(upstream.address, this.timeouts);
    } catch (error) {
      throw classifyUpstreamError(error, 'connect', upstream.label);
    }
    const bodiless = req.body.kind === 'empty';
    let res: HttpResponse;
    try {
      res = await send(conn, req, bodiless);
    } catch (error) {
      connector.release(conn, false);
      // The client's own body failed (it went away mid-upload): that is the error to answer.
      if (req.body instanceof GuardedRequestBody && req.body.failure !== null) throw req.body.failure;
      if (!conn.reused || !bodiless || !isStale(error)) {
        throw classifyUpstreamError(error, 'exchange', upstream.label);
      }
      // The idle connection was closed by the upstream under us: once more, on a new one.
      try {
        conn = await connector.acquire(upstream.address, this.timeouts, true);
      } catch (e) {
        throw classifyUpstreamError(e, 'connect', upstream.label);
      }
      try {
        res = await send(conn, req, true);
      } catch (e) {
        connector.release(conn, false);
        throw classifyUpstreamError(e, 'exchange', upstream.label);
      }
    }
    cleanResponseHeaders(res.headers, res.version);
    if (res.body.kind === 'empty') {
      connector.release(conn, true);
      return res;
    }
    const held = conn;
    res.body = new ForwardedBody(res.body, (_bytes, error) => connector.release(held, error === null));
    return res;
  }
}

function send(conn: UpstreamConnection, req: HttpRequest, bodiless: boolean): Promise<HttpResponse> {
  if (!bodiless) req.body = new GuardedRequestBody(req.body, conn);
  return conn.client.send(req);
}

/** A failure that a dead idle connection produces before any response byte. */
function isStale(error: unknown): boolean {
  if (error instanceof HttpConnectionError) return error.code === 'ERR_HTTP_CONNECTION_CLOSED';
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE';
}

/**
 * The client's request body on its way upstream. If reading it fails (the client went away
 * mid-body), the upstream connection is closed at once, so the exchange ends instead of
 * waiting for a response the upstream will not send to half a request.
 */
class GuardedRequestBody implements HttpBody, AsyncIterator<Uint8Array> {
  readonly kind: BodyKind;
  readonly length: number;
  /** What reading the client's body threw, if it did. */
  failure: unknown = null;
  #it: AsyncIterator<Uint8Array> | null = null;

  constructor(
    private readonly source: HttpBody,
    private readonly conn: UpstreamConnection,
  ) {
    this.kind = source.kind;
    this.length = source.length;
  }

  get trailers(): HttpHeaders | null {
    return this.source.trailers ?? null;
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    this.#it ??= this.source[Symbol.asyncIterator]();
    return this;
  }

  async next(): Promise<IteratorResult<Uint8Array>> {
    this.#it ??= this.source[Symbol.asyncIterator]();
    try {
      return await this.#it.next();
    } catch (error) {
      this.failure = error;
      void this.conn.client.close().catch(() => {});
      throw error;
    }
  }

  async return(): Promise<IteratorResult<Uint8Array>> {
    await this.#it?.return?.();
    return { done: true, value: undefined };
  }
}

/** Config the upstream layer reads. */
export interface UpstreamLayerConfig {
  readonly timeouts: UpstreamTimeouts;
  /** Builds the connector of a server seen for the first time. */
  readonly newConnector: () => UpstreamConnector;
}

/** The innermost factory: `make(old)` reuses `old.connector` (the pool survives the reload). */
export function upstreamFactory(config: UpstreamLayerConfig): MakeService<UpstreamService> {
  return makeFn((old) => new UpstreamService(old?.connector ?? config.newConnector(), config.timeouts));
}
