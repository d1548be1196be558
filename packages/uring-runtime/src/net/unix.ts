/**
 * Unix domain stream sockets on the thread's runtime: UnixListener.bind() and
 * UnixStream.connect(), delegating to the runtime's Driver. Not for TCP (tcp.ts).
 */
import type { UnixConnectOptions, UnixListenOptions } from '../driver.js';
import { currentRuntime, type Runtime } from '../runtime.js';
import type { ByteStream } from '../stream.js';
import { RuntimeListener, type RuntimeOption, RuntimeStream } from './runtime-stream.js';

/** Options of UnixListener.bind(). */
export type UnixBindOptions = UnixListenOptions & RuntimeOption;

/** Options of UnixStream.connect(). */
export type UnixStreamConnectOptions = UnixConnectOptions & RuntimeOption;

/** A connected Unix domain stream. */
export class UnixStream extends RuntimeStream {
  /** Connects to the socket at `path` (ENOENT when missing, ECONNREFUSED when nobody listens). */
  static async connect(pathOrOptions: string | UnixStreamConnectOptions): Promise<UnixStream> {
    const options = typeof pathOrOptions === 'string' ? { path: pathOrOptions } : pathOrOptions;
    const runtime = options.runtime ?? (await currentRuntime());
    return new UnixStream(await runtime.driver.connectUnix(options), runtime);
  }
}

function wrapUnix(inner: ByteStream, runtime: Runtime): UnixStream {
  return new UnixStream(inner, runtime);
}

/**
 * A listening Unix domain socket. An existing path fails with EADDRINUSE, as in nginx, unless
 * `removeStale` is set and nothing listens there.
 */
export class UnixListener extends RuntimeListener<UnixStream> {
  /** Binds and listens on `path`. */
  static override async bind(pathOrOptions: string | UnixBindOptions): Promise<UnixListener> {
    const options = typeof pathOrOptions === 'string' ? { path: pathOrOptions } : pathOrOptions;
    const runtime = options.runtime ?? (await currentRuntime());
    return new UnixListener(await runtime.driver.listenUnix(options), runtime, wrapUnix);
  }
}
