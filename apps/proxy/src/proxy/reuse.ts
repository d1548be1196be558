/**
 * The connection-reuse layer: the downstream hop's connection management. It removes the
 * request's hop-by-hop fields (the client's Connection, Keep-Alive, TE, Upgrade, ... and what
 * Connection names: RFC 9110 §7.6.1) before the request is routed on, and asks the server to
 * close the client connection after the response when the server this service belongs to has
 * been removed by a reload (its listener is gone; the client should reconnect). Whether a
 * connection stays open otherwise (HTTP/1.0, Connection: close, shutdown) is the HttpServer's
 * decision, made from the request as received.
 *
 * Protocol upgrades (WebSocket) are the one connection this layer hands on: a request whose
 * Upgrade protocols are all on the server's allow-list keeps Upgrade and `Connection: upgrade`;
 * when the upstream answers it with a 101 that names a protocol asked for, the answer gets a
 * tunnel (`HttpResponse.tunnel`): the HttpServer writes the 101 and hands over the client's
 * stream, the tunnel takes the upstream connection over (`HttpResponse.takeOver`) and pipes
 * bytes both ways (tunnel.ts) until both sides ended, either failed, or both stayed silent
 * for the idle timeout. Any other answer keeps HTTP framing. Not for response hygiene
 * (upstream.ts).
 */
import { HeaderName, type HttpResponse } from '@loch/http';
import {
  type Answer,
  type FactoryLayer,
  layerFn,
  type MakeService,
  makeFn,
  type Service,
} from '@loch/service-async';
import { CxRequest, type RequestCx } from './context.js';
import { ProxyError } from './errors.js';
import { keepUpgrade, removeHopByHop, upgradeProtocols, upgradeToForward } from './header-hygiene.js';
import { Tunnel } from './tunnel.js';

/** Per-build state a worker flips when the server is removed by a reload. */
export interface ServerLifecycle {
  retired: boolean;
}

/** Config the reuse layer reads. */
export interface ReuseLayerConfig {
  readonly lifecycle: ServerLifecycle;
  /**
   * The server's onAnswered hook (RequestHooks with this lifecycle) adds a retired server's
   * `connection: close`, so this layer does not (see CoreLayerConfig.serverHooks).
   */
  readonly serverHooks?: boolean;
  readonly server: {
    readonly key: string;
    /** Upgrade protocols let through (lowercase); default `websocket`. */
    readonly allowUpgrades?: readonly string[];
    /**
     * `tunnelIdle`: ms a tunnel may stay silent both ways (0 = no limit); default 60 s.
     * `tunnelDrain` (else `shutdownGrace`): ms a tunnel goes on once a graceful stop began.
     */
    readonly timeouts?: {
      readonly tunnelIdle: number;
      readonly tunnelDrain?: number | undefined;
      readonly shutdownGrace?: number;
    };
  };
}

/** Looked up in every request: resolved once. */
const UPGRADE = new HeaderName('upgrade');

/** What the layer lets through when the config names nothing. */
const DEFAULT_UPGRADES: readonly string[] = ['websocket'];
const DEFAULT_TUNNEL_IDLE = 60_000;

/** Request hop-by-hop hygiene, close-after-retire, and upgrades into tunnels. */
export class ConnectionReuseService<
  S extends Service<RequestCx, HttpResponse> = Service<RequestCx, HttpResponse>,
> implements Service<RequestCx, HttpResponse>
{
  /** Upgrade protocols let through (lowercase). */
  readonly allowUpgrades: ReadonlySet<string>;

  constructor(
    readonly inner: S,
    readonly lifecycle: ServerLifecycle,
    allowUpgrades: readonly string[] = DEFAULT_UPGRADES,
    /** Ms a tunnel may stay silent both ways before it is closed (0 = no limit). */
    readonly tunnelIdle = DEFAULT_TUNNEL_IDLE,
    /** Ms a tunnel goes on once a graceful stop began (undefined: until the worker's grace ends). */
    readonly tunnelDrain: number | undefined = undefined,
    /** Adds a retired server's `connection: close` (false: the server's onAnswered does). */
    readonly closesRetired = true,
  ) {
    this.allowUpgrades = new Set(allowUpgrades.map((p) => p.toLowerCase()));
  }

  /**
   * Not async. With `closesRetired` (a retired server's `connection: close` added here), a later
   * answer costs one `then` whose handler is made once per service; without it (the server's
   * onAnswered hook adds it: RequestHooks) the inner answer is this layer's as it is, no
   * promise reaction per request. An upgrade request, rare, costs a closure of its own.
   */
  call(cx: RequestCx): Answer<HttpResponse> {
    const req = CxRequest.get(cx);
    const headers = req.headers;
    // One id lookup per request; the rest only for requests that ask to upgrade.
    const upgrade = headers.has(UPGRADE) ? upgradeToForward(req, this.allowUpgrades) : null;
    removeHopByHop(headers);
    if (upgrade !== null) {
      keepUpgrade(headers, upgrade);
      const out = this.inner.call(cx);
      return out instanceof Promise
        ? out.then((res) => this.#upgraded(res, upgrade))
        : this.#upgraded(out, upgrade);
    }
    const out = this.inner.call(cx);
    if (!this.closesRetired) return out;
    return out instanceof Promise ? out.then(this.#afterResponse) : this.#afterResponse(out);
  }

  /** A retired server's responses tell the client to reconnect (the check is made at the response, not the request). */
  readonly #afterResponse = (res: HttpResponse): HttpResponse => {
    if (this.lifecycle.retired) res.headers.set('connection', 'close');
    return res;
  };

  /**
   * The answer to an upgrade request that was let through: a 101 that switched to a protocol
   * the client asked for becomes a tunnel; a 101 naming another (or none) is the upstream's
   * protocol error (502, its connection closed); anything else is an HTTP answer as usual.
   */
  #upgraded(res: HttpResponse, asked: string): HttpResponse {
    if (res.status !== 101) return this.#afterResponse(res);
    const takeOver = res.takeOver;
    if (takeOver === undefined) {
      throw new ProxyError('ERR_LOCH_UPSTREAM_PROTOCOL', 'upstream 101 without a connection to take over');
    }
    const named = res.headers.get('upgrade');
    const askedFor = upgradeProtocols(asked);
    const switched = named === undefined ? [] : upgradeProtocols(named);
    if (switched.length === 0 || !switched.every((p) => askedFor.includes(p))) {
      void takeOver()
        .stream.close()
        .catch(() => {});
      throw new ProxyError(
        'ERR_LOCH_UPSTREAM_PROTOCOL',
        `upstream switched to ${JSON.stringify(named ?? '')}, asked for ${JSON.stringify(asked)}`,
      );
    }
    const idle = this.tunnelIdle;
    const drain = this.tunnelDrain;
    // Taken over only when the server runs the tunnel (the 101 is out); if it never does (the
    // client left first), the upstream connection is closed by its read timeout.
    res.tunnel = (stream, head) => {
      const upstream = takeOver();
      return new Tunnel(stream, head, upstream.stream, upstream.head, idle, drain).run();
    };
    return res;
  }
}

/** The connection-reuse layer. */
export function reuseLayer<
  C extends ReuseLayerConfig,
  S extends Service<RequestCx, HttpResponse> = Service<RequestCx, HttpResponse>,
>(): FactoryLayer<C, MakeService<S>, MakeService<ConnectionReuseService<S>>> {
  return layerFn((config, inner) =>
    makeFn(
      (old) =>
        new ConnectionReuseService(
          inner.make(old?.inner),
          config.lifecycle,
          config.server.allowUpgrades,
          config.server.timeouts?.tunnelIdle,
          config.server.timeouts?.tunnelDrain ?? config.server.timeouts?.shutdownGrace,
          config.serverHooks !== true,
        ),
    ),
  );
}
