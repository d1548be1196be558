/**
 * TCP on the thread's runtime: TcpListener.bind() and TcpStream.connect(), delegating to the
 * runtime's Driver (io_uring or legacy). Not for Unix sockets (unix.ts).
 */
import type { TcpConnectOptions, TcpListenOptions } from '../driver.js';
import { currentRuntime, type Runtime } from '../runtime.js';
import type { ByteStream } from '../stream.js';
import { RuntimeListener, type RuntimeOption, RuntimeStream } from './runtime-stream.js';

/** Options of TcpListener.bind(). */
export type TcpBindOptions = TcpListenOptions & RuntimeOption;

/** Options of TcpStream.connect(). */
export type TcpStreamConnectOptions = TcpConnectOptions & RuntimeOption;

/** A connected TCP stream. */
export class TcpStream extends RuntimeStream {
  /**
   * Connects to host:port. Fails with ECONNREFUSED (nobody listens), ETIMEDOUT (`timeout`
   * passed), ECANCELED (`signal`), each carrying the address.
   */
  static async connect(options: TcpStreamConnectOptions): Promise<TcpStream> {
    const runtime = options.runtime ?? (await currentRuntime());
    return new TcpStream(await runtime.driver.connectTcp(options), runtime);
  }
}

function wrapTcp(inner: ByteStream, runtime: Runtime): TcpStream {
  return new TcpStream(inner, runtime);
}

/** A listening TCP socket; accept() or async iteration yields TcpStreams. */
export class TcpListener extends RuntimeListener<TcpStream> {
  /**
   * Binds and listens. Port 0 picks a free port (see `localAddress`). `reusePort` sets
   * SO_REUSEPORT so every worker can bind the same port; without it a second bind fails with
   * EADDRINUSE.
   */
  static override async bind(options: TcpBindOptions): Promise<TcpListener> {
    const runtime = options.runtime ?? (await currentRuntime());
    return new TcpListener(await runtime.driver.listenTcp(options), runtime, wrapTcp);
  }
}
