/**
 * The error of a failed upstream call of the thrift proxy and its kinds: what the caller is
 * told (service.ts) and what the log and status column say. Shared by the exclusive pool
 * (upstream.ts) and the multiplexed connections (mux.ts).
 */

/** Why an upstream call failed: what the caller is told, and what the log says. */
export type ThriftUpstreamFailure =
  | 'refused'
  | 'connect_failed'
  | 'connect_timeout'
  | 'reset'
  | 'timeout'
  | 'protocol'
  /** The caller went away while the call ran (its connection ended): loch cancelled the call. */
  | 'abandoned';

/** A failed upstream call. */
export class ThriftUpstreamError extends Error {
  override readonly name = 'ThriftUpstreamError';
  readonly code: string;
  constructor(
    readonly failure: ThriftUpstreamFailure,
    readonly upstream: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.code = `ERR_LOCH_THRIFT_UPSTREAM_${failure.toUpperCase()}`;
  }
}

/** The failure an error of a connection's stream or frame reader stands for. */
export function failureOf(error: unknown): ThriftUpstreamFailure {
  const name = (error as { name?: string } | undefined)?.name;
  return name === 'ThriftProtocolError' || name === 'ThriftTransportError' ? 'protocol' : 'reset';
}
