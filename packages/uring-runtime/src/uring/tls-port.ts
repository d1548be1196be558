/**
 * The door @loch/tls uses to put a TLS session on the ring (in-ring TLS): finds the io_uring
 * stream behind a public stream and hands it out as a RingTlsPort. Not for anything else: the
 * record layer lives in native/src/ring.cc, the TLS API in @loch/tls.
 */
import type { NativeTlsSession } from '@loch/native';
import { driverStream } from '../net/runtime-stream.js';
import type { ByteStream, RecvChunk, WriteTarget } from '../stream.js';
import { type RingTlsEvents, UringStream } from './stream.js';

export type { RingTlsEvents } from './stream.js';

/**
 * An io_uring stream that can carry a TLS session: once `attachTls` returned 0, its reads give
 * plaintext and its writes are encrypted by the ring (it is still the same ByteStream).
 */
export interface RingTlsPort extends ByteStream {
  /** 0, or -errno (-ENOTSUP: no in-ring TLS on this ring; -EBUSY: already read from). */
  attachTls(session: NativeTlsSession, events: RingTlsEvents): number;
  tlsHandshakeDone(): void;
  tlsDetach(): void;
  tlsCloseNotify(target: WriteTarget): void;
  /** A chunk already received and queued, or undefined. */
  takeQueued(): RecvChunk | undefined;
}

/**
 * The io_uring stream behind `stream` (a TcpStream or UnixStream of the uring driver, or that
 * driver's own stream), or undefined for any other stream (legacy driver, wrappers).
 */
export function ringTlsPort(stream: ByteStream): RingTlsPort | undefined {
  const inner = driverStream(stream);
  return inner instanceof UringStream ? inner : undefined;
}
