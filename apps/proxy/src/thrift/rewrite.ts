/**
 * What a thrift route changes in a call on its way upstream, and undoes in the reply: info
 * headers (THeader/TTHeader string headers, and TTHeader integer ones: `remove`, then `set`,
 * then `add` unless present; integer headers exist only in TTHeader, so a call sent upstream in
 * another framing carries none),
 * method renames (`"Svc:old" = "Svc:new"` or bare names; the reply's name is given back the
 * caller's: the renamed full name, or its bare method as Apache's TMultiplexedProcessor
 * answers, becomes the original one), and the framing and protocol spoken upstream (the reply
 * is transcoded back to the caller's protocol; the server frames it in the caller's framing).
 * A route without any of these forwards the caller's frame untouched and costs nothing here.
 * Not for routing (router.ts) or sending (upstream.ts, mux.ts).
 */
import {
  type FramingName,
  type ProtocolName,
  readMessageHeader,
  rewriteMessageName,
  type ThriftFrame,
  transcodeMessage,
} from '@loch/thrift';
import type { ThriftRouteConfig } from '../config/schema.js';

/** A route's call rewrite, compiled once per config. */
export class RouteRewrite {
  readonly #renames: ReadonlyMap<string, string> | undefined;
  readonly #framing: FramingName | undefined;
  readonly #protocol: ProtocolName | undefined;
  readonly #headers: ThriftRouteConfig['headerRewrite'];
  readonly #intHeaders: ThriftRouteConfig['intHeaderRewrite'];

  /** The rewrite of `route`, or undefined when it changes nothing. */
  static of(route: ThriftRouteConfig): RouteRewrite | undefined {
    const none =
      route.renames === undefined &&
      route.headerRewrite === undefined &&
      route.intHeaderRewrite === undefined &&
      route.upstreamFraming === undefined &&
      route.upstreamProtocol === undefined;
    return none ? undefined : new RouteRewrite(route);
  }

  private constructor(route: ThriftRouteConfig) {
    this.#renames = route.renames;
    this.#framing = route.upstreamFraming;
    this.#protocol = route.upstreamProtocol;
    this.#headers = route.headerRewrite;
    this.#intHeaders = route.intHeaderRewrite;
  }

  /** The framing calls are sent upstream in. */
  framing(client: FramingName): FramingName {
    return this.#framing ?? client;
  }

  /** The call as it goes upstream; `name` is its message name. */
  outgoing(frame: ThriftFrame, name: string): ThriftFrame {
    let payload = frame.payload;
    const renamed = this.#renames?.get(name);
    if (renamed !== undefined) payload = rewriteMessageName(frame.protocol, payload, renamed);
    const protocol = this.#protocol ?? frame.protocol;
    if (protocol !== frame.protocol) payload = transcodeMessage(payload, frame.protocol, protocol);
    const h = this.#headers;
    const headers = h === undefined ? frame.headers : rewritten(frame.headers, h);
    const ih = this.#intHeaders;
    const intHeaders = ih === undefined ? frame.intHeaders : rewritten(frame.intHeaders, ih);
    const framing = this.#framing ?? frame.framing;
    const reframed = framing !== frame.framing;
    return {
      ...frame,
      framing,
      protocol,
      headers,
      intHeaders,
      payload,
      // THeader and TTHeader flags mean different things; transforms are THeader's.
      flags: reframed ? 0 : frame.flags,
      transforms: reframed ? [] : frame.transforms,
    };
  }

  /** The reply's message for the caller (who spoke `protocol` and called `name`). */
  replyPayload(reply: ThriftFrame, protocol: ProtocolName, name: string): Uint8Array {
    let payload = reply.payload;
    if (reply.protocol !== protocol) payload = transcodeMessage(payload, reply.protocol, protocol);
    const renamed = this.#renames?.get(name);
    if (renamed === undefined) return payload;
    const got = readMessageHeader(protocol, payload).name;
    if (got === renamed) return rewriteMessageName(protocol, payload, name);
    if (got === bareName(renamed)) return rewriteMessageName(protocol, payload, bareName(name));
    return payload;
  }
}

/** `headers` after a route's `remove`, then `set`, then `add` (unless present). */
function rewritten<K>(
  headers: ReadonlyMap<K, string>,
  change: {
    readonly add: ReadonlyMap<K, string>;
    readonly set: ReadonlyMap<K, string>;
    readonly remove: readonly K[];
  },
): ReadonlyMap<K, string> {
  const next = new Map(headers);
  for (const key of change.remove) next.delete(key);
  for (const [key, value] of change.set) next.set(key, value);
  for (const [key, value] of change.add) if (!next.has(key)) next.set(key, value);
  return next;
}

/** The method of a possibly multiplexed name ("Svc:m" -> "m"). */
function bareName(name: string): string {
  const colon = name.indexOf(':');
  return colon < 0 ? name : name.slice(colon + 1);
}
