/**
 * Test-only: gives a scripted ThriftStream double (recv/writev) the promise-free pair a server
 * connection uses (recvTo/writeTo), delivered as @loch/uring-runtime delivers them: after the
 * call returns, exactly once each.
 */
import type { ThriftRecvTarget, ThriftServerStream, ThriftStream, ThriftWriteTarget } from '../src/index.js';

export function withTargetForms<S extends ThriftStream>(stream: S): S & ThriftServerStream {
  return Object.assign(stream, {
    recvTo(target: ThriftRecvTarget): void {
      stream.recv().then(
        (chunk) => target.onRecv(chunk, undefined),
        (error: unknown) => target.onRecv(null, error),
      );
    },
    writeTo(one: Uint8Array | readonly Uint8Array[], target: ThriftWriteTarget): void {
      const data = one instanceof Uint8Array ? [one] : one;
      stream.writev(data).then(
        () => target.onWritten(undefined),
        (error: unknown) => target.onWritten(error),
      );
    },
  });
}
