/**
 * The per-connection request context: a @loch/certain-map context that the server fills with
 * what it knows about the connection (peer and local address, driver) before the first request.
 * Handlers read it with `ctx.get('peerAddr')`; layers that need more keys declare their own
 * schema and pass a `context` factory to HttpServer. Not for per-request state: fork() it.
 */
import { defineContext, type Has } from '@loch/certain-map';
import type { DriverName, HttpStream, SocketAddress } from './transport.js';

/** Keys the server sets on every connection context. */
export interface ConnectionSchema {
  /** The remote peer's address. */
  peerAddr: SocketAddress;
  /** The local (listening side) address. */
  localAddr: SocketAddress;
  /** The I/O driver serving the connection. */
  driver: DriverName;
}

/** The context definition HttpServer uses by default. */
export const ConnectionContext = defineContext<ConnectionSchema>()(['peerAddr', 'localAddr', 'driver']);

/** The default handler context: every ConnectionSchema key is present. */
export type HttpConnectionContext = Has<typeof ConnectionContext, 'peerAddr' | 'localAddr' | 'driver'>;

/** Builds the default context of a connection. */
export function connectionContext(stream: HttpStream): HttpConnectionContext {
  return ConnectionContext.empty()
    .set('peerAddr', stream.remoteAddress)
    .set('localAddr', stream.localAddress)
    .set('driver', stream.driver);
}
