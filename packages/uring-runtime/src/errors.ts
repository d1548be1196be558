/**
 * Typed errors of the runtime. Every I/O failure is a RuntimeError whose `code` is the errno
 * name (ECONNREFUSED, ECONNRESET, EPIPE, ETIMEDOUT, EADDRINUSE, ECANCELED...), with the
 * operation and the address involved, so a caller can branch on `code` and a log line says what
 * to fix. Not for protocol errors: those belong to the protocol packages.
 */
import { constants } from 'node:os';
import type { SocketAddress } from './stream.js';

const errnoNames: Map<number, string> = new Map(
  Object.entries(constants.errno).map(([name, value]) => [value as number, name]),
);

/** Name of a positive errno value (e.g. 111 -> 'ECONNREFUSED'); 'EUNKNOWN' when not known. */
export function errnoName(errno: number): string {
  return errnoNames.get(Math.abs(errno)) ?? 'EUNKNOWN';
}

/** Formats an address for messages: `127.0.0.1:80`, `[::1]:80`, `unix:/path`. */
export function formatAddress(address: SocketAddress): string {
  if (address.family === 'unix') return `unix:${address.path}`;
  return address.family === 'ipv6'
    ? `[${address.address}]:${address.port}`
    : `${address.address}:${address.port}`;
}

/** An I/O failure: errno `code`, the operation (`syscall`) and the address when there is one. */
export class RuntimeError extends Error {
  override readonly name = 'RuntimeError';
  /** errno name, e.g. 'ECONNRESET', or 'ERR_LOCH_*' for runtime-level failures. */
  readonly code: string;
  /** Positive errno value, or 0 for runtime-level failures. */
  readonly errno: number;
  /** The operation that failed: 'connect', 'read', 'write', 'accept', 'bind', ... */
  readonly syscall: string;
  /** The address involved, when there is one. */
  readonly address: SocketAddress | undefined;
  /** The buffer lent to the failed operation, handed back to its owner. */
  readonly buffer: Uint8Array | undefined;

  constructor(
    code: string,
    syscall: string,
    options: {
      errno?: number;
      address?: SocketAddress | undefined;
      buffer?: Uint8Array | undefined;
      cause?: unknown;
      /** Human-readable explanation appended to the message (what to fix). */
      detail?: string | undefined;
    } = {},
  ) {
    const where = options.address ? ` ${formatAddress(options.address)}` : '';
    const detail = options.detail ? `: ${options.detail}` : '';
    super(
      `${syscall} ${code}${where}${detail}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.code = code;
    this.errno = options.errno ?? 0;
    this.syscall = syscall;
    this.address = options.address;
    this.buffer = options.buffer;
  }

  /** Builds the error for a negative errno result of a kernel operation. */
  static fromErrno(res: number, syscall: string, address?: SocketAddress, buffer?: Uint8Array): RuntimeError {
    const errno = Math.abs(res);
    return new RuntimeError(errnoName(errno), syscall, { errno, address, buffer });
  }
}
