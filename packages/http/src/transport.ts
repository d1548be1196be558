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
  RecvTarget as StreamRecvTarget,
  SocketAddress,
  WriteTarget as StreamWriteTarget,
} from '@loch/uring-runtime';

/**
 * The stream operations HTTP/1.1 uses: pooled receives, whole writes, close; and, when the stream
 * has them (every @loch/uring-runtime stream does), the promise-free `recvTo`/`writeTo`, which the
 * server and client prefer on their hot paths. Test doubles and adapters may leave those two out.
 */
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
> &
  Partial<Pick<ByteStream, 'recvTo' | 'writeTo'>>;

/** The listener operations the server uses (a StreamListener fits). */
export interface HttpListener<S extends HttpStream = HttpStream> {
  readonly localAddress: SocketAddress;
  accept(options?: StreamIoOptions): Promise<S>;
  close(): Promise<void>;
}
