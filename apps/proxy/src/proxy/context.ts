/**
 * The proxy's request context: one @loch/certain-map schema for every layer of the service
 * chain. The connection part (peer, socket, driver, server) is set once per accepted
 * connection by the HttpServer `context` factory, in a subset context holding only those keys
 * (ConnectionContext); each request forks it into a whole context and adds the request
 * and its start time; the route layer adds the match, the upstream layer the chosen upstream.
 * A layer states the keys it needs in its request type, so a chain assembled in the wrong
 * order does not compile. Not for configuration (config/) or per-worker state (worker.ts).
 */
import { defineContext, type Has } from '@loch/certain-map';
import type { HttpExchangeCancel, HttpRequest, HttpResponse } from '@loch/http';
import type { DriverName, SocketAddress } from '@loch/uring-runtime';
import type { UpstreamConfig } from '../config/schema.js';
import type { RouteMatch } from '../routing/router.js';
import type { CompiledRoute } from './route.js';

/** What a connection knows about the server (listener) that accepted it. */
export interface ServerIdentity {
  /** The server's key in the config (`servers.<key>`). */
  readonly key: string;
  /** Scheme clients used to reach it (for X-Forwarded-Proto). */
  readonly scheme: 'http' | 'https';
}

/**
 * What the chain may read of the accepted connection's stream: its local address, asked where it
 * is used. The stream caches the address, but on a wildcard listener (`0.0.0.0`, `::`) its first
 * read asks the kernel: a getsockname, and on a direct stream a momentary fd for it too
 * (FIXED_FD_INSTALL, getsockname, close). So the context holds the stream, not the address: a
 * connection nobody asks about (every one but those sent upstream with a PROXY header) pays no
 * syscall and no object for it (REVIEW F217; bench/uring-direct/local-address-syscalls-*.txt).
 */
export interface ConnectionSocket {
  /** The listening side's address (read from the stream, which asks the kernel once at most). */
  readonly localAddress: SocketAddress;
}

/** Every key a proxy context can hold. */
export interface ProxySchema {
  /** The client's address. */
  peerAddr: SocketAddress;
  /** The accepted connection's stream, for its local address (ConnectionSocket says why not the address). */
  socket: ConnectionSocket;
  /** The I/O driver serving the connection. */
  driver: DriverName;
  /** The server that accepted the connection. */
  server: ServerIdentity;
  /**
   * The verified client certificate as forwarded upstream (x-forwarded-client-cert), set only on
   * mTLS connections of servers that forward it.
   */
  clientCert: string;
  /** The request being proxied. */
  request: HttpRequest;
  /** The request target as the client sent it (the request's own target is rewritten). */
  clientTarget: string;
  /** `performance.now()` when the request head was complete. */
  startedAt: number;
  /** The matched route, its parameters and prefix. */
  route: RouteMatch<CompiledRoute>;
  /** The path (and query) to send upstream, after normalization and rewriting. */
  upstreamTarget: string;
  /** The upstream the request was sent to. */
  upstream: UpstreamConfig;
  /**
   * The upstream exchange as it was handed to a connection or stream (transports' onExchange):
   * what a client going away before the response head cancels.
   */
  upstreamExchange: HttpExchangeCancel;
  /** The client went away before the answer (the server's onAbandoned): nginx's 499. */
  abandoned: true;
  /** The code of the failure loch answered for the request itself (core.ts), if it did. */
  failure: string;
  /**
   * The upstream's time to its response head (ms from `startedAt`), kept for the access-log line
   * of a streamed answer, written at the body's end (core.ts, RequestHooks.bodyEnded).
   */
  upstreamHeaderMs: number;
  /**
   * The request's access log (core.ts: CoreService), told the answer by the server's hooks
   * (RequestHooks calls it); set only when the server's access log is on.
   */
  accessLog: AnswerLog;
}

/** What writes a request's access-log line when the server's hooks hear of its answer (core.ts). */
export interface AnswerLog {
  /**
   * The answer goes to the client; `own` when loch made it (the context's `failure` is set), not
   * the chain's upstream. A streamed body's line is written at its end (bodyEnded).
   */
  answered(cx: RequestCx, response: HttpResponse, own: boolean): void;
  /** The server is done with the streamed body of an answer told to answered(): `bytes` taken from it. */
  bodyEnded(cx: RequestCx, response: HttpResponse, bytes: number): void;
  /** The client went away before the answer: nginx's 499. */
  abandoned(cx: RequestCx): void;
}

/** The context definition. */
export const ProxyContext = defineContext<ProxySchema>()([
  'peerAddr',
  'socket',
  'driver',
  'server',
  'clientCert',
  'request',
  'clientTarget',
  'startedAt',
  'route',
  'upstreamTarget',
  'upstream',
  'upstreamExchange',
  'abandoned',
  'failure',
  'upstreamHeaderMs',
  'accessLog',
]);

/**
 * The connection keys' subset of ProxyContext: the HttpServer context factory makes one of these
 * per accepted connection, and it lives as long as the connection (idle keep-alive ones
 * included): 4 slots instead of the schema's 15 (on Node 20, 56 B instead of 144 B per
 * connection). The context layer (core.ts ContextHandler) forks it into a whole ProxyContext
 * per request. A connection whose client certificate is forwarded gets
 * CertifiedConnectionContext instead.
 */
export const ConnectionContext = ProxyContext.subset(['peerAddr', 'socket', 'driver', 'server']);

/**
 * The connection keys and the forwarded client certificate (`clientCert`): for connections of
 * servers that forward a verified client certificate (mTLS), the only ones that set it, so the
 * others do not carry its slot (8 B per idle connection).
 */
export const CertifiedConnectionContext = ProxyContext.subset([
  'peerAddr',
  'socket',
  'driver',
  'server',
  'clientCert',
]);

/** A context with the connection keys (what the HttpServer context factory builds). */
export type ConnectionCx = Has<typeof ProxyContext, 'peerAddr' | 'socket' | 'driver' | 'server'>;

/** A context with the connection keys and a request: what the service chain receives. */
export type RequestCx = Has<
  typeof ProxyContext,
  'peerAddr' | 'socket' | 'driver' | 'server' | 'request' | 'clientTarget' | 'startedAt'
>;

/** A request that has been routed: what the upstream layer receives. */
export type RoutedCx = Has<
  typeof ProxyContext,
  | 'peerAddr'
  | 'socket'
  | 'driver'
  | 'server'
  | 'request'
  | 'clientTarget'
  | 'startedAt'
  | 'route'
  | 'upstreamTarget'
>;

/*
 * Readers of the keys the request path reads (certain-map's `reader`): `CxRequest.get(cx)` is
 * `cx.get('request')`, typed the same, but a one-field-load function V8 inlines wherever it is
 * called. The `get` method switches over all 16 keys, so a function reading several keys ran out
 * of V8's inlining budget and called it (per-request-2026-12-06h.md, "certain-map readers").
 */
export const CxRequest = ProxyContext.reader('request');
export const CxPeerAddr = ProxyContext.reader('peerAddr');
export const CxSocket = ProxyContext.reader('socket');
export const CxServer = ProxyContext.reader('server');
export const CxClientCert = ProxyContext.reader('clientCert');
export const CxClientTarget = ProxyContext.reader('clientTarget');
export const CxStartedAt = ProxyContext.reader('startedAt');
export const CxRoute = ProxyContext.reader('route');
export const CxUpstreamTarget = ProxyContext.reader('upstreamTarget');
export const CxUpstream = ProxyContext.reader('upstream');
export const CxUpstreamHeaderMs = ProxyContext.reader('upstreamHeaderMs');
export const CxUpstreamExchange = ProxyContext.reader('upstreamExchange');
export const CxAbandoned = ProxyContext.reader('abandoned');
export const CxFailure = ProxyContext.reader('failure');
export const CxAccessLog = ProxyContext.reader('accessLog');

/*
 * Writers of the keys the request path sets (certain-map's `writer`): `CxSetRoute.set(cx, m)` is
 * `cx.set('route', m)`, typed the same (it returns the context typed with the key present), but a
 * one-field-store function V8 inlines wherever it is called, where the `set` method switches over
 * all 16 keys, as `get` did (per-request-2026-12-07.md). For whole contexts: a writer's type
 * does not know a subset's keys, so the subset contexts are written in one place only
 * (connectionContext, below).
 */
export const CxSetRequest = ProxyContext.writer('request');
export const CxSetClientTarget = ProxyContext.writer('clientTarget');
export const CxSetStartedAt = ProxyContext.writer('startedAt');
export const CxSetRoute = ProxyContext.writer('route');
export const CxSetUpstreamTarget = ProxyContext.writer('upstreamTarget');
export const CxSetUpstream = ProxyContext.writer('upstream');
export const CxSetUpstreamExchange = ProxyContext.writer('upstreamExchange');
export const CxSetAbandoned = ProxyContext.writer('abandoned');
export const CxSetFailure = ProxyContext.writer('failure');
export const CxSetUpstreamHeaderMs = ProxyContext.writer('upstreamHeaderMs');
export const CxSetAccessLog = ProxyContext.writer('accessLog');

const CxSetPeerAddr = ProxyContext.writer('peerAddr');
const CxSetSocket = ProxyContext.writer('socket');
const CxSetDriver = ProxyContext.writer('driver');
const CxSetServer = ProxyContext.writer('server');
const CxSetClientCert = ProxyContext.writer('clientCert');

/**
 * A connection's context (the HttpServer `context` factory, worker.ts): ConnectionContext with
 * the connection keys, or CertifiedConnectionContext with them and `clientCert` when `clientCert`
 * is given. Through writers, not the subsets' `set`: on HTTP/1.1 the factory runs per request
 * (contextPerRequest), and each `set` was a call (per-request-2026-12-07.md). Every key written
 * here is one of the chosen subset's (the writers' type does not check that: this is the one
 * place that writes a subset context).
 */
export function connectionContext(
  peerAddr: SocketAddress,
  socket: ConnectionSocket,
  driver: DriverName,
  server: ServerIdentity,
  clientCert: string | undefined,
): ConnectionCx {
  const empty = clientCert === undefined ? ConnectionContext.empty() : CertifiedConnectionContext.empty();
  const cx = CxSetServer.set(
    CxSetDriver.set(CxSetSocket.set(CxSetPeerAddr.set(empty, peerAddr), socket), driver),
    server,
  );
  return clientCert === undefined ? cx : CxSetClientCert.set(cx, clientCert);
}
