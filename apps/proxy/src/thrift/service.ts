/**
 * The thrift proxy's handler: a Service of @loch/thrift's ThriftServer, one call per message.
 * It routes the call (router.ts) on its method and service without decoding the arguments,
 * picks an upstream with the route's balancer, forwards the caller's frame in the caller's
 * framing and protocol (seq id, headers and transforms as received) unless the route rewrites
 * it (rewrite.ts: headers, method names, framing and protocol), over a pooled exclusive or a
 * multiplexed connection (upstream.ts, mux.ts), and answers the upstream's reply payload and
 * headers; the server frames it back the way the call came, with the caller's seq id. Failures are answered as
 * TApplicationException naming loch and the cause: UNKNOWN_METHOD when no route matches,
 * INTERNAL_ERROR for a refused, reset, slow or misbehaving upstream. ONEWAY calls are answered
 * nothing; their failures are logged. Each call is one access-log line. `make(old)` keeps the
 * old service's upstream pool (reload). A caller whose connection ends while its call runs
 * (ThriftRequest.onAbort) cancels the upstream call: an exclusive connection is closed, a
 * multiplexed call's id tombstoned; logged as 499. Memory: the caller's frame is released
 * exactly once, when no write of it is pending: as soon as its upstream write settled (written;
 * failed and that connection closed), or when it is never sent (no route, not rewritable, no
 * connection, the caller gone first); not when the reply comes, which a multiplexed upstream
 * may send before its writev's completion is reported. So the server hands calls over as views
 * of the received chunks (ThriftServer's `callsInPlace`) and gets each chunk back then. The
 * reply holds the upstream connection's reader memory (or receive buffer) until the server
 * wrote it (RelayedReply). The server dispatches (ThriftHandler.dispatch): an exclusive
 * upstream's reply is answered from that connection's receive callback, with no promise, await
 * or then() per call. Not for accepting or framing (ThriftServer does both).
 */
// The module's binding, not the global: `performance` on Node's global object is a lazy accessor
// whose getter runs on every read (~200 instructions a read in optimized code, callgrind,
// bench/thrift/readings-2026-12-07b.md).
import { performance } from 'node:perf_hooks';
import { type MakeService, makeFn, type Service } from '@loch/service-async';
import {
  EMPTY_HEADERS,
  EMPTY_INT_HEADERS,
  MessageType,
  type RetainedChunk,
  TApplicationException,
  TApplicationExceptionType,
  type ThriftAbortListener,
  type ThriftFrame,
  type ThriftReply,
  type ThriftRequest,
  type ThriftResponder,
} from '@loch/thrift';
import type { ByteStream, SocketAddress } from '@loch/uring-runtime';
import type { ThriftRouteConfig, ThriftServerConfig } from '../config/schema.js';
import { workerMetrics } from '../metrics/recorder.js';
import { turnNow } from '../metrics/turn-clock.js';
import type { ProxyLog } from '../proxy/log.js';
import { type Balancer, createBalancer } from '../routing/balancer.js';
import type { ReplyHolder, UpstreamCall } from './mux.js';
import { RouteRewrite } from './rewrite.js';
import { callTarget, ThriftRouter } from './router.js';
import {
  type LeaseState,
  leaseAbandon,
  leaseFramedWire,
  leaseHold,
  leaseRelease,
  leaseRunning,
  type ThriftCallOptions,
  ThriftUpstreamEndpoint,
  ThriftUpstreamError,
  ThriftUpstreams,
  type UpstreamCallListener,
  type UpstreamLease,
} from './upstream.js';

/** A route ready to serve: its balancer, upstream endpoints and call rewrite. */
interface CompiledRoute {
  readonly balancer: Balancer;
  readonly endpoints: readonly ThriftUpstreamEndpoint[];
  readonly rewrite: RouteRewrite | undefined;
  /** The server's deadlines with the route's own over them. */
  readonly options: ThriftCallOptions;
}

function compiler(server: ThriftServerConfig): (route: ThriftRouteConfig) => CompiledRoute {
  return (route) => ({
    balancer: createBalancer(
      route.loadBalancer,
      route.upstreams.map((u) => u.weight),
    ),
    endpoints: route.upstreams.map((u) => new ThriftUpstreamEndpoint(u)),
    rewrite: RouteRewrite.of(route),
    options: {
      connect: route.timeouts?.upstreamConnect ?? server.timeouts.upstreamConnect,
      call: route.timeouts?.upstreamCall ?? server.timeouts.upstreamCall,
      maxFrameSize: server.maxFrameSize,
      maxHeaderSize: server.maxHeaderSize,
      maxHeaderCount: server.maxHeaderCount,
    },
  });
}

const UNIX_PEER: SocketAddress = { family: 'unix', path: '' } as SocketAddress;

/** The peer of a call's connection (a runtime stream when served by the worker). */
function peerOf(request: ThriftRequest): SocketAddress {
  return (request.stream as Partial<ByteStream>).remoteAddress ?? UNIX_PEER;
}

/**
 * A relayed call's one object of the proxy's own: the answer relayed to the caller (the upstream
 * reply's payload, viewing the upstream connection's reader memory unless rewritten, and headers),
 * and the lease the server releases once it wrote them; the listener the upstream call ends in
 * (its reply goes to the caller from the upstream's receive callback, no promise between); and
 * the call's: the caller's frame is given back to the server when the upstream side says its
 * write settled (callSettled).
 */
class RelayedReply
  implements ThriftReply, UpstreamLease, LeaseState, ThriftAbortListener, UpstreamCallListener
{
  /** The upstream's reply frame, once relayed. */
  reply: ThriftFrame | undefined = undefined;
  /** The reply's payload rewritten for the caller (RouteRewrite.replyPayload), when it was. */
  rewritten: Uint8Array | undefined = undefined;
  /** The reply framed as it came from a framed upstream (ThriftReply.wire), when relayed unchanged. */
  wire: Uint8Array | undefined = undefined;
  /** With `wire`: its payload's length (ThriftReply.payloadLength), so the server makes no payload view. */
  payloadLength: number | undefined = undefined;
  headers: ReadonlyMap<string, string> = EMPTY_HEADERS;
  intHeaders: ReadonlyMap<number, string> = EMPTY_INT_HEADERS;
  // The lease (UpstreamLease): ReplyLease's state, its operations upstream.ts's lease*()
  // functions, which ReplyLease runs too. Not a subclass of ReplyLease: RelayedReply's super()
  // went through V8's generic Construct builtin on every call, inlined or not (161-226
  // instructions a call, bench/thrift/readings-2026-12-07b.md and -07e.md).
  /** @internal LeaseState. */
  leaseHolder: ReplyHolder | undefined = undefined;
  /** @internal LeaseState. */
  leaseChunk: RetainedChunk | null = null;
  /** @internal LeaseState. */
  leaseWireAt = -1;
  /** @internal LeaseState. */
  leaseCall: UpstreamCall | undefined = undefined;
  /** The caller went away (abandon()). */
  abandoned = false;

  constructor(
    readonly service: ThriftProxyService,
    readonly request: ThriftRequest,
    readonly responder: ThriftResponder,
    /** The upstream's label (access log, errors). */
    readonly upstream: string,
    /** When the call came (turnNow(): performance.now() as of the turn it came in). */
    readonly start: number,
    readonly rewrite: RouteRewrite | undefined,
  ) {}

  /**
   * ThriftReply.payload: the rewritten payload, else the reply frame's, read only when the
   * server frames the reply anew (a reply written as its `wire` makes no view: ViewFrame).
   */
  get payload(): Uint8Array {
    return this.rewritten ?? this.reply?.payload ?? EMPTY;
  }

  upstreamReplied(reply: ThriftFrame | undefined): void {
    this.service.relay(this, reply);
  }

  upstreamFailed(error: unknown): void {
    this.service.failed(this, error);
  }

  /** ThriftServer releases every reply it was handed: written, dropped, or after a failed write (ReplyLease.inPlace). */
  get inPlace(): boolean {
    return true;
  }

  /** ReplyLease.running. */
  running(call: UpstreamCall | undefined): boolean {
    return leaseRunning(this, call);
  }

  /** ReplyLease.abandon: the upstream call running for the caller is cancelled, one not yet made is not made. */
  abandon(): void {
    leaseAbandon(this);
  }

  /** ReplyLease.hold. */
  hold(holder: ReplyHolder, chunk: RetainedChunk | null = null, wireAt = -1): void {
    leaseHold(this, holder, chunk, wireAt);
  }

  /** ReplyLease.framedWire: the held reply as it came, one view of its prefix and payload, or undefined. */
  framedWire(wireLength: number): Uint8Array | undefined {
    return leaseFramedWire(this, wireLength);
  }

  /** No write of the caller's frame is pending (or ever will be): the server may reuse its memory. */
  callSettled(): void {
    this.request.release?.();
  }

  /** ThriftReply.release and ReplyLease.release: the reply's bytes are no longer used (once). */
  release(): void {
    leaseRelease(this);
  }

  /** The caller's connection ended (or its handler timeout passed): cancel the upstream call. */
  callAborted(): void {
    this.abandon();
  }
}

const EMPTY = new Uint8Array(0);

/** The status column of a thrift access-log line, HTTP-like so that 5xx reads as a failure. */
function statusOf(error: unknown): number {
  // nginx's 499: the client closed the connection before its answer.
  if (error instanceof ThriftUpstreamError && error.failure === 'abandoned') return 499;
  if (error instanceof ThriftUpstreamError)
    return error.failure === 'timeout' || error.failure === 'connect_timeout' ? 504 : 502;
  return 500;
}

/** Forwards calls of one thrift server. */
export class ThriftProxyService implements Service<ThriftRequest, ThriftReply | undefined> {
  readonly #router: ThriftRouter<CompiledRoute>;

  constructor(
    /** Upstream connections; carried over from the previous service on reload. */
    readonly upstreams: ThriftUpstreams,
    readonly server: ThriftServerConfig,
    readonly log: ProxyLog,
  ) {
    this.#router = new ThriftRouter(server.routes, compiler(server));
  }

  /**
   * The Service form (tests, other servers): dispatch() with a responder that settles a promise.
   * ThriftServer calls dispatch() itself.
   */
  call(request: ThriftRequest): Promise<ThriftReply | undefined> {
    return new Promise((resolve, reject) => {
      this.dispatch(request, {
        respond: (reply, error) => (error === undefined ? resolve(reply) : reject(error)),
      });
    });
  }

  /**
   * Routes and forwards `request`; its answer (the relayed reply, or the TApplicationException
   * of a failure) goes to `responder`, at once when there is no upstream call to make, else from
   * the upstream connection's callbacks (exclusive or multiplexed): no promise per call.
   */
  dispatch(request: ThriftRequest, responder: ThriftResponder): void {
    // The turn's clock (metrics/turn-clock.ts): one clock read per loop turn, not per call.
    const start = turnNow();
    const frame = request.frame;
    const name = request.header.name;
    // A server whose routes match on nothing has its one route (no target made, no lookups).
    let route = this.#router.only;
    if (route === undefined) {
      route = this.#route(request, responder, frame, name, start);
      if (route === undefined) return;
    }
    const endpoint = route.endpoints[route.balancer.pick()]!;
    const rewrite = route.rewrite;
    let outgoing = frame;
    if (rewrite !== undefined) {
      try {
        outgoing = rewrite.outgoing(frame, name);
      } catch (error) {
        // A body that cannot be transcoded: the caller's bytes are at fault (and not sent).
        request.release?.();
        this.#access(request, 400, 0, undefined, start);
        responder.respond(
          undefined,
          new TApplicationException(
            TApplicationExceptionType.PROTOCOL_ERROR,
            `loch: the call could not be rewritten for its upstream: ${(error as Error).message}`,
          ),
        );
        return;
      }
    }
    const key = endpoint.key(outgoing.framing);
    // From here the upstream side releases the caller's frame (callSettled), on every path.
    const relayed = new RelayedReply(this, request, responder, key.label, start, rewrite);
    // The caller going away cancels the upstream call (no AbortSignal made per call).
    request.onAbort?.(relayed);
    // Unchanged, the call goes as it came: one buffer (ThriftRequest.wire), no new prefix.
    const wire = outgoing === frame ? request.wire?.() : undefined;
    this.upstreams.start(key, outgoing, request.header, route.options, relayed, relayed, wire);
  }

  /**
   * The route of a call (router.match on its target); undefined when there is none, the call
   * then answered UNKNOWN_METHOD here.
   */
  #route(
    request: ThriftRequest,
    responder: ThriftResponder,
    frame: ThriftFrame,
    name: string,
    start: number,
  ): CompiledRoute | undefined {
    const target = callTarget(frame, name);
    const route = this.#router.match(target);
    if (route === undefined) {
      request.release?.(); // nothing reads or writes the caller's bytes
      this.#access(request, 404, 0, undefined, start);
      const service = target.service === undefined ? '' : ` of service "${target.service}"`;
      responder.respond(
        undefined,
        new TApplicationException(
          TApplicationExceptionType.UNKNOWN_METHOD,
          `loch: no route for method "${target.method}"${service} (ERR_LOCH_THRIFT_NO_ROUTE)`,
        ),
      );
    }
    return route;
  }

  /** @internal The upstream answered `relayed`'s call: its reply (or failure) goes to the caller. */
  relay(relayed: RelayedReply, reply: ThriftFrame | undefined): void {
    let answer: ThriftReply | undefined;
    try {
      answer = this.#relay(relayed, reply);
    } catch (error) {
      relayed.responder.respond(undefined, error);
      return;
    }
    relayed.responder.respond(answer);
  }

  /** @internal `relayed`'s upstream call failed: the caller gets a TApplicationException. */
  failed(relayed: RelayedReply, error: unknown): void {
    // Runs in the upstream's callback (UpstreamCallListener: must not throw): a throw while
    // logging becomes the call's error; respond() itself never throws.
    let answer: unknown;
    try {
      answer = this.#failure(relayed.request, error, relayed.upstream, relayed.start);
    } catch (bug) {
      answer = bug;
    }
    relayed.responder.respond(undefined, answer);
  }

  #relay(relayed: RelayedReply, reply: ThriftFrame | undefined): ThriftReply | undefined {
    const { request, upstream, start, rewrite } = relayed;
    // The caller's frame was released by the upstream side (callSettled) once written.
    if (reply === undefined) {
      this.#access(request, 200, 0, upstream, start);
      return undefined;
    }
    relayed.reply = reply;
    if (rewrite !== undefined) {
      let payload: Uint8Array;
      try {
        payload = rewrite.replyPayload(reply, request.frame.protocol, request.header.name);
      } catch (error) {
        relayed.release();
        throw this.#failure(
          request,
          new ThriftUpstreamError(
            'protocol',
            upstream,
            `the reply could not be rewritten: ${(error as Error).message}`,
            {
              cause: error,
            },
          ),
          upstream,
          start,
        );
      }
      if (payload !== reply.payload) relayed.rewritten = payload;
    }
    const rewritten = relayed.rewritten;
    // A framed frame's payload is all of it but the 4-byte prefix: its length is known without
    // reading `payload` (the reader makes that view on first read, ViewFrame).
    const length =
      rewritten !== undefined
        ? rewritten.length
        : reply.framing === 'framed'
          ? reply.wireLength - 4
          : reply.payload.length;
    this.#access(request, 200, length, upstream, start);
    // Unchanged from a framed upstream: the server may write it as it came, reading no payload.
    if (rewritten === undefined && reply.framing === 'framed') {
      relayed.wire = relayed.framedWire(reply.wireLength);
      relayed.payloadLength = length;
    }
    relayed.headers = reply.headers;
    relayed.intHeaders = reply.intHeaders;
    return relayed;
  }

  /** Logs a failed call and makes its answer. */
  #failure(request: ThriftRequest, error: unknown, upstream: string, start: number): TApplicationException {
    // The caller's frame is released by the upstream side when its write settles (callSettled).
    const status = statusOf(error);
    this.#access(request, status, 0, upstream, start);
    const code = (error as { code?: string }).code ?? 'ERR_LOCH_THRIFT_UPSTREAM';
    const message = `upstream ${upstream}: ${(error as Error)?.message ?? String(error)} (${code})`;
    const oneway = request.header.type === MessageType.ONEWAY;
    // A caller that went away is no upstream failure: its access-log line (499) says it.
    if (status !== 499)
      this.log.warn(`${this.server.key}: ${oneway ? 'oneway ' : ''}${request.header.name}: ${message}`);
    return new TApplicationException(TApplicationExceptionType.INTERNAL_ERROR, `loch: ${message}`);
  }

  #access(
    request: ThriftRequest,
    status: number,
    bytes: number,
    upstream: string | undefined,
    start: number,
  ): void {
    workerMetrics.thriftCall(this.server.key, status, start);
    if (!this.server.accessLog) return;
    const kind = request.header.type === MessageType.ONEWAY ? 'ONEWAY' : 'CALL';
    this.log.access(
      this.server.key,
      peerOf(request),
      kind,
      request.header.name,
      status,
      bytes,
      upstream,
      performance.now() - start,
    );
  }
}

/** Builds a server's service; `make(old)` keeps the old upstream pool. */
export function thriftProxyFactory(
  server: ThriftServerConfig,
  log: ProxyLog,
  idleTimeout = 30_000,
): MakeService<ThriftProxyService> {
  return makeFn(
    (old) => new ThriftProxyService(old?.upstreams ?? new ThriftUpstreams({ idleTimeout }), server, log),
  );
}
