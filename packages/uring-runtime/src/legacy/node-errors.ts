/**
 * Maps node:net errors (system errors with `code`/`errno`/`syscall`, and Node's own ERR_STREAM_*
 * errors) to the runtime's RuntimeError, so the legacy driver fails with the same codes as the
 * io_uring driver. Not for creating runtime-level errors: build RuntimeError directly for those.
 */
import { constants } from 'node:os';
import { RuntimeError } from '../errors.js';
import type { SocketAddress } from '../stream.js';

const errnoByName = constants.errno as Readonly<Record<string, number>>;

interface NodeSystemError {
  code?: unknown;
  errno?: unknown;
}

/** Node stream-state errors and the errno a socket syscall would have returned instead. */
const streamStateCodes: Readonly<Record<string, string>> = {
  ERR_STREAM_DESTROYED: 'EBADF',
  ERR_STREAM_WRITE_AFTER_END: 'EPIPE',
  ERR_SOCKET_CLOSED: 'EBADF',
  ERR_SOCKET_CONNECTION_TIMEOUT: 'ETIMEDOUT',
};

/**
 * Converts an error raised by node:net into a RuntimeError for `syscall` (the runtime's
 * operation name, e.g. 'read'), keeping the lent `buffer` so its owner gets it back.
 */
export function toRuntimeError(
  error: unknown,
  syscall: string,
  address?: SocketAddress,
  buffer?: Uint8Array,
): RuntimeError {
  if (error instanceof RuntimeError) {
    return error.syscall === syscall && error.buffer === buffer
      ? error
      : new RuntimeError(error.code, syscall, {
          errno: error.errno,
          address: error.address ?? address,
          buffer,
          cause: error.cause,
        });
  }
  const raw = (typeof error === 'object' && error !== null ? error : {}) as NodeSystemError;
  let code = typeof raw.code === 'string' ? raw.code : 'EIO';
  code = streamStateCodes[code] ?? code;
  const errno =
    typeof raw.errno === 'number' && raw.errno !== 0 ? Math.abs(raw.errno) : (errnoByName[code] ?? 0);
  return new RuntimeError(code, syscall, { errno, address, buffer, cause: error });
}

/** ECANCELED for an operation stopped by an AbortSignal or close(); returns the lent buffer. */
export function cancelled(syscall: string, address?: SocketAddress, buffer?: Uint8Array): RuntimeError {
  return new RuntimeError('ECANCELED', syscall, { errno: errnoByName.ECANCELED ?? 125, address, buffer });
}

/** An operation on a stream or listener after close(): EBADF, like a syscall on a closed fd. */
export function closedError(syscall: string, address?: SocketAddress, buffer?: Uint8Array): RuntimeError {
  return new RuntimeError('EBADF', syscall, { errno: errnoByName.EBADF ?? 9, address, buffer });
}

/** Builds a RuntimeError for an errno name with its numeric value. */
export function errnoError(code: string, syscall: string, address?: SocketAddress, buffer?: Uint8Array) {
  return new RuntimeError(code, syscall, { errno: errnoByName[code] ?? 0, address, buffer });
}
