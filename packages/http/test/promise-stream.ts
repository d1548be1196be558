/**
 * Test support: the one adapter from a stream double with promise operations only (recv,
 * writeAll, writev: the easy way to script a peer by hand) to HttpStream's contract, the
 * promise-free recvTo/writeTo. Results are delivered from promise reactions, so never from
 * inside recvTo/writeTo, as the runtime's are. Every double of this package's tests goes
 * through it (or implements recvTo/writeTo itself); protocol code never sees a promise stream.
 * Not part of the package's exports.
 */
import { plainFacts } from '@loch/uring-runtime';
import type { HttpStream, StreamChunk, StreamRecvTarget, StreamWriteTarget } from '../src/transport.js';

/** A stream double that scripts its peer with promises. */
export interface PromiseStreamDouble {
  readonly remoteAddress: HttpStream['remoteAddress'];
  readonly localAddress: HttpStream['localAddress'];
  readonly driver: HttpStream['driver'];
  readonly closed: boolean;
  /** The next chunk, or null at end of stream. close() should settle a pending one. */
  recv(): Promise<StreamChunk | null>;
  writeAll(buf: Uint8Array): Promise<unknown>;
  writev(bufs: readonly Uint8Array[]): Promise<unknown>;
  shutdown(): Promise<void>;
  close(): Promise<void>;
  setNoDelay(enabled: boolean): void;
}

/** `double` as an HttpStream: recvTo is recv(), writeTo is writeAll (one buffer) or writev. */
export function promiseStream(double: PromiseStreamDouble): HttpStream {
  return {
    get remoteAddress() {
      return double.remoteAddress;
    },
    get localAddress() {
      return double.localAddress;
    },
    get driver() {
      return double.driver;
    },
    get closed() {
      return double.closed;
    },
    get facts() {
      return plainFacts(double.remoteAddress);
    },
    recvTo(target: StreamRecvTarget): void {
      double.recv().then(
        (chunk) => target.onRecv(chunk, undefined),
        (error: unknown) => target.onRecv(null, error as never),
      );
    },
    writeTo(data: Uint8Array | readonly Uint8Array[], target: StreamWriteTarget): void {
      (data instanceof Uint8Array ? double.writeAll(data) : double.writev(data)).then(
        () => target.onWritten(undefined),
        (error: unknown) => target.onWritten(error as never),
      );
    },
    shutdown: () => double.shutdown(),
    close: () => double.close(),
    setNoDelay: (enabled: boolean) => double.setNoDelay(enabled),
  };
}
