/**
 * What the server and client need from the runtime: the subset of @loch/uring-runtime's
 * ByteStream and StreamListener they call, so TcpStream, UnixStream, TLS streams and test doubles
 * all fit without wrapping. Not a transport implementation.
 */
import type { ByteStream, SocketAddress, IoOptions as StreamIoOptions } from '@loch/uring-runtime';

export type {
  DriverName,
  IoOptions as StreamIoOptions,
  RecvChunk as StreamChunk,
  SocketAddress,
} from '@loch/uring-runtime';

/** The stream operations HTTP/1.1 uses: pooled receives, whole writes, close. */
export type HttpStream = Pick<
  ByteStream,
  | 'remoteAddress'
  | 'localAddress'
  | 'driver'
  | 'recv'
  | 'writeAll'
  | 'writev'
  | 'shutdown'
  | 'close'
  | 'setNoDelay'
  | 'closed'
>;

/** The listener operations the server uses (a StreamListener fits). */
export interface HttpListener<S extends HttpStream = HttpStream> {
  readonly localAddress: SocketAddress;
  accept(options?: StreamIoOptions): Promise<S>;
  close(): Promise<void>;
}
