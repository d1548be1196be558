/**
 * What the server and client need from the runtime: the subset of @loch/uring-runtime's
 * ByteStream and StreamListener they call, so TcpStream, UnixStream and TLS streams fit without
 * wrapping. Not a transport implementation. The one I/O contract is the promise-free pair
 * recvTo/writeTo: every runtime stream implements it, and the server and client read and write
 * through nothing else; a test double with promise operations only is adapted to it once (the
 * package's test support, test/promise-stream.ts).
 */
import type { ByteStream, SocketAddress, IoOptions as StreamIoOptions } from '@loch/uring-runtime';

export type {
  ConnectionFacts,
  DriverName,
  IoOptions as StreamIoOptions,
  RecvChunk as StreamChunk,
  RecvTarget as StreamRecvTarget,
  SocketAddress,
  WriteTarget as StreamWriteTarget,
} from '@loch/uring-runtime';

/**
 * The stream operations HTTP uses: `facts` (what the layers below learned: TLS, ALPN, SNI, the
 * PROXY header's client address; how the server will choose HTTP/2 by ALPN without importing
 * tls), the promise-free `recvTo` (pooled receive chunks) and
 * `writeTo` (whole writes, one buffer or a gathered list), shutdown and close, and the write
 * progress (`sentBytes`, optional: internal/write-progress.ts). Results come to a target
 * object (the connection) at the next microtask checkpoint, never from inside the call: a
 * pending read or write costs no promise, reaction or closure. Where a caller needs a promise
 * (a handler reading a request body, `HttpClient.send`), the server and client build it on top
 * of these two, in one place each.
 */
export type HttpStream = Pick<
  ByteStream,
  | 'remoteAddress'
  | 'localAddress'
  | 'driver'
  | 'recvTo'
  | 'writeTo'
  | 'shutdown'
  | 'close'
  | 'setNoDelay'
  | 'closed'
  | 'facts'
  | 'sentBytes'
>;

/** The listener operations the server uses (a StreamListener fits). */
export interface HttpListener<S extends HttpStream = HttpStream> {
  readonly localAddress: SocketAddress;
  accept(options?: StreamIoOptions): Promise<S>;
  close(): Promise<void>;
}
