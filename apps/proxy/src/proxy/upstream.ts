/**
 * The upstream layer, innermost in the chain: picks an upstream of the matched route with the
 * route's balancer, applies the Host policy, and sends the request through @loch/transports'
 * HttpConnector (pooled HTTP/1.1 over TCP or Unix; an idempotent bodiless request that fails on
 * a reused connection before any response byte is retried once on a new one). The response
 * comes back with its hop-by-hop fields removed and Via added; its body streams from the
 * connector (the core layer counts it for the access log), and the connection returns to the
 * pool when the body has been passed on completely. No promise of its own per request: the
 * response filter and the error mapping ride on the connector's (RequestOptions hooks). `make(old)` keeps the old service's connector, so
 * the pool (idle connections and counters) survives reloads.
 * Not for routing (route.ts) or error responses (core.ts).
 */
import {
  HeaderName,
  type HttpRequest,
  type HttpRequestBodyError,
  type HttpResponse,
  type HttpStream,
} from '@loch/http';
import { type MakeService, makeFn, type Service } from '@loch/service-async';
import {
  type Connector,
  type Endpoint,
  encodeProxyHeader,
  HttpConnector,
  ProxyHeaderConnector,
  type RequestOptions,
  TransportError,
  UnifiedL4Connector,
  withProxyHeader,
} from '@loch/transports';
import type { SocketAddress } from '@loch/uring-runtime';
import { type TrustedPeers, trustedPeersOf } from '../config/trusted-peers.js';
import {
  CxPeerAddr,
  CxRequest,
  CxRoute,
  CxSetUpstream,
  CxSocket,
  CxUpstreamTarget,
  type RoutedCx,
} from './context.js';
import { noteUpstreamExchange } from './core.js';
import { classifyUpstreamError, ProxyError } from './errors.js';
import { forwardedClient } from './forwarded-client.js';
import { type GrpcRelayTimeout, grpcTimeoutMs, isGrpcRequest, relayGrpcResponse } from './grpc-status.js';
import { cleanResponseHeaders } from './header-hygiene.js';
import { isH2NotNegotiated, LazyH2Connector, LazyTlsConnector } from './lazy-connectors.js';
import type { CompiledRoute, UpstreamEndpoint } from './route.js';
import { endpointForHost } from './upstream-sni.js';

/** Deadlines of one upstream exchange, in ms (0 disables one). */
export interface UpstreamTimeouts {
  /** To establish a connection. */
  readonly connect: number;
  /** From the request sent to the response head, and between response body reads. */
  readonly read: number;
}

/**
 * Upstream streams a worker has open, so a shutdown past its grace period can close them (an
 * exchange waiting on a silent upstream holds its stream until its read timeout otherwise).
 * Entries are added per new connection, never per request; closed ones are swept on insert.
 */
export class UpstreamStreams {
  readonly #open = new Set<HttpStream>();

  add(stream: HttpStream): void {
    if (this.#open.size >= 256) for (const s of this.#open) if (s.closed) this.#open.delete(s);
    this.#open.add(stream);
  }

  /** Closes every stream still open; resolves when all closes settled. */
  async closeAll(): Promise<number> {
    const open = [...this.#open].filter((s) => !s.closed);
    this.#open.clear();
    await Promise.all(open.map((s) => s.close().catch(() => {})));
    return open.length;
  }
}

/**
 * Idle HTTP/1.1 upstream connections a worker keeps per endpoint unless `upstream_keepalive`
 * says otherwise. It must cover the requests a worker has in flight at a steady load, or each
 * burst above it closes connections that the next burst opens again: with 64, h2load -c16 -m16
 * (256 streams in flight, answered in bursts) made 0.46 upstream connects per request through
 * one worker. Idle ones cost a descriptor and a socket each and close after the idle timeout;
 * Envoy caps none, Pingora keeps 128 by default.
 */
export const DEFAULT_UPSTREAM_KEEPALIVE = 256;

/** The connector the proxy uses: HTTP/1.1 over TCP or Unix, pooled per endpoint. */
export function newUpstreamConnector(options: {
  idleTimeout: number;
  streams: UpstreamStreams;
  /** Idle connections kept per endpoint (`upstream_keepalive`); default DEFAULT_UPSTREAM_KEEPALIVE. */
  maxIdlePerKey?: number | undefined;
}): HttpConnector {
  // TLS for https upstreams stacks on the L4 connector (plain http endpoints pass through; the
  // TLS code is imported at the first https connect: lazy-connectors.ts); a PROXY header
  // (send_proxy_protocol) goes out first, before the TLS handshake.
  const l4 = new LazyTlsConnector(new ProxyHeaderConnector(new UnifiedL4Connector()));
  const streams = options.streams;
  const tracked: Connector<Endpoint, HttpStream> = {
    async connect(key, connectOptions) {
      const stream = await l4.connect(key, connectOptions);
      streams.add(stream);
      return stream;
    },
  };
  return new UpstreamConnector(
    tracked,
    options.idleTimeout,
    options.maxIdlePerKey ?? DEFAULT_UPSTREAM_KEEPALIVE,
  );
}

/**
 * The proxy's upstream connector: pooled HTTP/1.1 connections, and beside them (made on first
 * use) the shared HTTP/2 sessions of `upstream_http_version = "http2"` routes (h2c by prior
 * knowledge for http://, h2 by ALPN for https://) over the same streams, so both carry over a
 * reload, are tracked for shutdown and close together.
 */
export class UpstreamConnector extends HttpConnector {
  readonly #l4: Connector<Endpoint, HttpStream>;
  readonly #idleTimeout: number;
  #h2: LazyH2Connector | undefined;
  /**
   * `upstream_http_version = "auto"`: the https upstreams (by endpoint id) whose server picked
   * HTTP/1.1 by ALPN, learned from the first connect; they go to the HTTP/1.1 pool from then on.
   */
  readonly #h1Only = new Set<string>();

  constructor(
    l4: Connector<Endpoint, HttpStream>,
    idleTimeout: number,
    maxIdlePerKey: number = DEFAULT_UPSTREAM_KEEPALIVE,
  ) {
    super(l4, { pool: { maxIdlePerKey, idleTimeout } });
    this.#l4 = l4;
    this.#idleTimeout = idleTimeout;
  }

  /** The HTTP/2 connector (one per server, shared by its routes; its code imported at its first request). */
  http2(): LazyH2Connector {
    this.#h2 ??= new LazyH2Connector(this.#l4, { pool: { idleTimeout: this.#idleTimeout } });
    return this.#h2;
  }

  override close(): void {
    super.close();
    this.#h2?.close();
  }

  /**
   * `"auto"`: HTTP/1.1 to http:// upstreams; to https:// ones, h2 when the server picks it by
   * ALPN, else HTTP/1.1 (the probe's request was never sent, so it goes over HTTP/1.1 as is;
   * the answer is remembered under `upstreamId`). `h2Options` carry no hooks: this applies
   * `options`' own once the protocol is known.
   */
  requestAuto(
    key: Endpoint,
    upstreamId: string,
    req: HttpRequest,
    options: RequestOptions,
    h2Options: RequestOptions,
  ): Promise<HttpResponse> {
    if (key.scheme !== 'https' || this.#h1Only.has(upstreamId)) return this.request(key, req, options);
    const onResponse = options.onResponse;
    const onError = options.onError;
    return this.http2()
      .request(key, req, h2Options)
      .then(
        (res) => (onResponse === undefined ? res : onResponse(res, key)),
        (error: unknown) => {
          if (error instanceof Error && isH2NotNegotiated(error.cause)) {
            this.#h1Only.add(upstreamId);
            return this.request(key, req, options);
          }
          throw onError === undefined ? error : onError(error, key);
        },
      );
  }
}

/** gRPC needs `te: trailers` end to end (removed as hop-by-hop downstream; HTTP/2 keeps it). */
function isGrpc(req: HttpRequest): boolean {
  return req.headers.get('content-type')?.startsWith('application/grpc') === true;
}

/** Read on every request: resolved once. */
const HOST = new HeaderName('host');

/** What a failure is reported as when it names no upstream of a compiled route. */
const UNKNOWN_UPSTREAM = '(unknown)';

/** The upstream label of an endpoint: compiled routes carry it (route.ts UpstreamEndpoint). */
function labelOf(key: Endpoint): string {
  return (key as Partial<UpstreamEndpoint>).upstream?.label ?? UNKNOWN_UPSTREAM;
}

/**
 * The response filter of every exchange: hop-by-hop fields out, Via in. Runs inside the
 * connector's own head handler (RequestOptions.onResponse), so the upstream layer adds no
 * promise to a request. A HEAD answer keeps the upstream's Content-Length: @loch/http
 * announces it as is; a 101 keeps its Upgrade (the reuse layer opens the tunnel).
 */
function cleanResponse(res: HttpResponse, key: Endpoint): HttpResponse {
  // A response head is the upstream's sign of life (passive health: its failures in a row end).
  const up = key as Partial<UpstreamEndpoint>;
  up.group?.succeeded(up.index!);
  cleanResponseHeaders(res.headers, res.version, res.status);
  return res;
}

/** Maps a failed exchange to the ProxyError it answers (RequestOptions.onError). */
function upstreamFailure(error: unknown, key: Endpoint): unknown {
  // The client's own body failed (it went away mid-upload; the exchange failed at once):
  // that is the error to answer, not the upstream.
  if (error instanceof TransportError && error.code === 'ERR_TRANSPORT_REQUEST_BODY_FAILED') {
    return (error.cause as HttpRequestBodyError).cause;
  }
  const mapped = classifyUpstreamError(error, 'exchange', labelOf(key));
  // Passive health counts what the upstream did (refused, timed out, reset, broke protocol),
  // never the client's own abort.
  const up = key as Partial<UpstreamEndpoint>;
  if (up.group !== undefined && !ownRefusal(error)) up.group.failed(up.index!);
  return mapped;
}

/**
 * A failure that is no sign of the upstream's health: the client aborted, or loch itself held
 * the request back at the upstream's connection limit (not retried either: another upstream
 * would take the overload).
 */
function ownRefusal(error: unknown): boolean {
  return (
    error instanceof TransportError &&
    (error.code === 'ERR_TRANSPORT_ABORTED' || error.code === 'ERR_TRANSPORT_UPSTREAM_BUSY')
  );
}

/**
 * Whether a failed exchange may be sent again: it failed connecting, or the connection was
 * reset or closed before any response byte (the upstream cannot have answered it). A read
 * timeout is not retried (the upstream may be working on it), nor anything after a response
 * byte.
 */
export function retryableFailure(error: unknown): boolean {
  const cause = error instanceof ProxyError ? error.cause : error;
  if (!(cause instanceof TransportError)) return false;
  // Refused, timed out or failed to connect (TLS included): nothing reached the upstream.
  if (cause.phase === 'connect') return !ownRefusal(cause);
  return (
    (cause.code === 'ERR_TRANSPORT_READ_FAILED' || cause.code === 'ERR_TRANSPORT_WRITE_FAILED') &&
    cause.beforeResponse
  );
}

/** Sends routed requests upstream. */
export class UpstreamService implements Service<RoutedCx, HttpResponse> {
  /** The request options of every exchange (one object, not one per request). */
  readonly #options: RequestOptions;
  /**
   * The same deadlines without the response and error hooks (`"auto"` applies them once the
   * protocol is known; the exchange hook stays: it runs once per exchange either way).
   */
  readonly #bareOptions: RequestOptions;
  /** HTTP/2 sessions of `upstream_http_version = "http2"` routes (the connector's, else one of its own). */
  #h2: LazyH2Connector | undefined;
  /** The options of an HTTP/2 client's gRPC call without a shorter deadline of its own (#grpcOptions). */
  readonly #grpcReadOptions: RequestOptions;

  constructor(
    /** The connector (and its pool); carried over from the previous service on reload. */
    readonly connector: HttpConnector,
    readonly timeouts: UpstreamTimeouts,
    /** `trusted_proxies`: a PROXY header sent upstream names the client behind them. */
    readonly trusted: TrustedPeers | undefined = undefined,
  ) {
    // onExchange: the exchange's cancel handle goes to the request's context (a client that
    // goes away before the response head cancels it: core.ts RequestHooks).
    this.#options = {
      connectTimeout: timeouts.connect,
      readTimeout: timeouts.read,
      onResponse: cleanResponse,
      onError: upstreamFailure,
      onExchange: noteUpstreamExchange,
    };
    this.#bareOptions = {
      connectTimeout: timeouts.connect,
      readTimeout: timeouts.read,
      onExchange: noteUpstreamExchange,
    };
    const readTimeout: GrpcRelayTimeout = { name: 'upstream_read', ms: timeouts.read };
    this.#grpcReadOptions = {
      ...this.#options,
      onResponse: (res, key) => relayGrpcResponse(cleanResponse(res, key), readTimeout),
    };
  }

  /**
   * Not async: the connector's promise is the answer (the response filter and the error
   * mapping run in its handlers), so this layer costs no promise and no microtask.
   */
  call(cx: RoutedCx): Promise<HttpResponse> {
    const route = CxRoute.get(cx).route;
    const group = route.group;
    // Health: only routes that can mark an upstream down pay for the check (one predicate call
    // per upstream looked at; nothing allocated).
    const index = group.watches ? group.pick(route.balancer) : route.balancer.pick();
    if (index < 0) return noHealthyUpstream(route);
    const req = CxRequest.get(cx);
    if (
      group.retry === undefined ||
      group.retry.maxRetries === 0 ||
      req.body.kind !== 'empty' ||
      !group.retryMethods.has(req.method)
    )
      return this.#send(cx, route, index);
    const budget = group.budget!;
    budget.enter();
    return this.#send(cx, route, index).then(
      (res) => {
        budget.leave();
        return res;
      },
      (error: unknown) => {
        budget.leave();
        return this.#retry(cx, route, index, error, 1);
      },
    );
  }

  /**
   * Sends the request again after `error` (attempt `attempt` of the route's max_retries), on
   * another upstream that is up when there is one, if the failure allows it (retryableFailure)
   * and the retry budget has room; else fails with `error`. Only bodiless requests get here:
   * their request can be sent as it is.
   */
  #retry(
    cx: RoutedCx,
    route: CompiledRoute,
    failed: number,
    error: unknown,
    attempt: number,
  ): Promise<HttpResponse> {
    const group = route.group;
    if (attempt > group.retry!.maxRetries || !retryableFailure(error) || !group.mayRetry())
      return Promise.reject(error);
    const index = group.pick(route.balancer, failed);
    if (index < 0) return Promise.reject(error);
    group.retries++;
    const budget = group.budget!;
    budget.retryStarted();
    budget.enter();
    return this.#send(cx, route, index).then(
      (res) => {
        budget.retryEnded();
        budget.leave();
        return res;
      },
      (again: unknown) => {
        budget.retryEnded();
        budget.leave();
        return this.#retry(cx, route, index, again, attempt + 1);
      },
    );
  }

  /** One exchange with upstream `index` of `route`. */
  #send(cx: RoutedCx, route: CompiledRoute, index: number): Promise<HttpResponse> {
    const req = CxRequest.get(cx);
    // server_name_from = "host": SNI, the name verified and the pool key follow the client's Host
    // (read for such upstreams only: every other request skips a second Host lookup).
    const routed = route.endpoints[index]!;
    const endpoint = routed.sniFromHost ? endpointForHost(routed, req.headers.get(HOST)) : routed;
    CxSetUpstream.set(cx, endpoint.upstream);
    if (route.hostHeader === 'upstream') req.headers.set(HOST, endpoint.authority);
    req.target = CxUpstreamTarget.get(cx);
    // send_proxy_protocol: the header names this client, so the connection (or HTTP/2 session)
    // is keyed by it and never serves another client (withProxyHeader). Costs a header and a
    // key per request, only for such upstreams.
    const send = endpoint.upstream.sendProxyProtocol;
    const key =
      send === undefined
        ? endpoint
        : withProxyHeader(
            endpoint,
            encodeProxyHeader({
              version: send === 'v1' ? 1 : 2,
              source: this.#client(CxPeerAddr.get(cx), req),
              // The one reader of the local address: asked of the stream here, not per connection.
              destination: CxSocket.get(cx).localAddress,
            }),
          );
    // A gRPC call's own deadline (grpc-timeout) caps the read timeout (only such calls pay for an
    // options object of their own), and an HTTP/2 client's call has its answer relayed message
    // by message (#grpcOptions).
    // gRPC calls are POSTs (gRPC over HTTP/2's spec): any other method skips the content-type read.
    const grpc = req.method === 'POST' && isGrpcRequest(req);
    const deadline = grpc ? this.#grpcDeadline(req) : 0;
    const options =
      grpc && req.version === '2'
        ? this.#grpcOptions(deadline)
        : deadline === 0
          ? this.#options
          : { ...this.#options, readTimeout: deadline };
    if (route.upstreamHttpVersion === 'http2') {
      if (isGrpc(req)) req.headers.set('te', 'trailers');
      this.#h2 ??=
        this.connector instanceof UpstreamConnector
          ? this.connector.http2()
          : new LazyH2Connector(new LazyTlsConnector(new UnifiedL4Connector()));
      return this.#h2.request(key, req, options);
    }
    if (route.upstreamHttpVersion === 'auto' && this.connector instanceof UpstreamConnector) {
      if (isGrpc(req)) req.headers.set('te', 'trailers');
      // Remembered per upstream as configured, not per SNI name: Host values cannot grow the set.
      return this.connector.requestAuto(
        key,
        route.endpoints[index]!.id,
        req,
        options,
        deadline === 0 ? this.#bareOptions : { ...this.#bareOptions, readTimeout: deadline },
      );
    }
    return this.connector.request(key, req, options);
  }

  /**
   * The client a PROXY header names: the connection's peer (the PROXY header loch read, if
   * any), or behind `trusted_proxies` the client X-Forwarded-For names, as nginx's realip
   * changes $remote_addr for `proxy_protocol` upstreams (nginx's real_ip_recursive walk:
   * forwarded-client.ts; the entry this hop appended is the trusted peer itself). Its port is 0
   * (X-Forwarded-For carries none).
   */
  #client(peer: SocketAddress, req: HttpRequest): SocketAddress {
    const trusted = this.trusted;
    if (trusted === undefined || !trusted.has(peer)) return peer;
    const forwardedFor = req.headers.getAll('x-forwarded-for');
    return forwardedFor.length === 0 ? peer : forwardedClient(peer, forwardedFor, trusted);
  }

  /**
   * The options of a gRPC call from an HTTP/2 client: its answer goes through relayGrpcResponse
   * (a failure after the response head at a message boundary ends the stream with grpc-status
   * trailers instead of a reset: grpc-status.ts GrpcRelayBody), with `deadline` (#grpcDeadline)
   * as its read timeout when set (only then an object and a closure of its own). HTTP/1.1
   * clients are not gRPC clients: they never get here.
   */
  #grpcOptions(deadline: number): RequestOptions {
    if (deadline === 0) return this.#grpcReadOptions;
    const timeout: GrpcRelayTimeout = { name: 'grpc-timeout', ms: deadline };
    return {
      ...this.#options,
      readTimeout: deadline,
      onResponse: (res, key) => relayGrpcResponse(cleanResponse(res, key), timeout),
    };
  }

  /**
   * The read timeout of a gRPC call that sent `grpc-timeout`: min(its deadline, the route's read
   * timeout; 0 there is none), or 0 when it sent none, a malformed one (ignored, as Envoy does)
   * or one no shorter than the route's. Expiry is the usual ERR_LOCH_UPSTREAM_TIMEOUT, which a
   * gRPC client gets as DEADLINE_EXCEEDED (grpc-status.ts), and the upstream stream is reset.
   */
  #grpcDeadline(req: HttpRequest): number {
    const ms = grpcTimeoutMs(req.headers.get('grpc-timeout'));
    if (ms === undefined) return 0;
    const read = this.timeouts.read;
    return read === 0 || ms < read ? ms : 0;
  }
}

/** Every upstream of the route is ejected or failing its checks: 503 at once, nothing sent. */
function noHealthyUpstream(route: CompiledRoute): Promise<never> {
  return Promise.reject(
    new ProxyError(
      'ERR_LOCH_NO_HEALTHY_UPSTREAM',
      `no healthy upstream for route ${route.path} (${route.group.labels.join(', ')})`,
    ),
  );
}

/** Config the upstream layer reads. */
export interface UpstreamLayerConfig {
  readonly timeouts: UpstreamTimeouts;
  /** Builds the connector of a server seen for the first time. */
  readonly newConnector: () => HttpConnector;
  /** The server's `trusted_proxies`: the client a PROXY header names is read through them. */
  readonly trustedProxies?: readonly string[] | undefined;
}

/** The innermost factory: `make(old)` reuses `old.connector` (the pool survives the reload). */
export function upstreamFactory(config: UpstreamLayerConfig): MakeService<UpstreamService> {
  const trusted = config.trustedProxies === undefined ? undefined : trustedPeersOf(config.trustedProxies);
  return makeFn(
    (old) => new UpstreamService(old?.connector ?? config.newConnector(), config.timeouts, trusted),
  );
}
