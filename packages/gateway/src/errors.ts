/**
 * Typed errors of @loch/gateway, each with a stable `code`. IdlError is a configuration error
 * (a bad or inconsistent .thrift file, named with file and line); GatewayRequestError is bad
 * input from an HTTP client (answered 400 with the JSON path of the offending value);
 * GatewayUpstreamError is a Thrift upstream that failed, refused or was too slow (502/504).
 * Not for declared Thrift exceptions: those are answers, not errors.
 */

/** Codes of IDL (configuration) errors. */
export type IdlErrorCode =
  /** The file could not be read. */
  | 'ERR_GATEWAY_IDL_READ'
  /** The parser rejected the file. */
  | 'ERR_GATEWAY_IDL_SYNTAX'
  /** A name does not resolve (unknown type, include, service, method) or is defined twice. */
  | 'ERR_GATEWAY_IDL_RESOLVE'
  /** A constant does not fit its type, or a construct the gateway cannot map. */
  | 'ERR_GATEWAY_IDL_INVALID';

/** A bad IDL: names the file and line (1-based; 0 when the error has no line). */
export class IdlError extends Error {
  override readonly name = 'IdlError';
  constructor(
    readonly code: IdlErrorCode,
    readonly file: string,
    readonly line: number,
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(line > 0 ? `${file}:${line}: ${detail}` : `${file}: ${detail}`, options);
  }
}

/** Codes of errors in an HTTP client's input. */
export type GatewayRequestErrorCode =
  /** The body is not JSON, or not a JSON object where one is needed. */
  | 'ERR_GATEWAY_BAD_JSON'
  /** A value does not fit the IDL (type, range, unknown field, missing required field...). */
  | 'ERR_GATEWAY_BAD_VALUE'
  /** The body is larger than the gateway accepts. */
  | 'ERR_GATEWAY_BODY_TOO_LARGE'
  /** The HTTP method is not the one the route maps. */
  | 'ERR_GATEWAY_METHOD'
  /** A pseudonymized field holds a token that does not open (another key, field, or changed). */
  | 'ERR_GATEWAY_PSEUDONYM';

/** The reason of an ERR_GATEWAY_BAD_VALUE that names a JSON field the IDL does not have. */
export const UNKNOWN_FIELD = 'unknown field';

/**
 * Bad client input. `path` is the JSON path of the value (`user.emial`, `ids[3]`, `tags{"k"}`),
 * empty for the request as a whole. The message reads `user.emial: unknown field`.
 */
export class GatewayRequestError extends Error {
  override readonly name = 'GatewayRequestError';
  /** Path segments, innermost last (filled as the error unwinds through nested values). */
  readonly segments: string[] = [];
  constructor(
    readonly code: GatewayRequestErrorCode,
    readonly reason: string,
    readonly status = 400,
    options?: { cause?: unknown },
  ) {
    // No message argument: `message` is the getter below, so the path added while the error
    // unwinds shows in it.
    super(undefined, options);
  }

  /** The JSON path of the offending value. */
  get path(): string {
    let out = '';
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const s = this.segments[i] as string;
      out += s.charCodeAt(0) === 0x5b || out === '' ? s : `.${s}`;
    }
    return out;
  }

  override get message(): string {
    const p = this.path;
    return p === '' ? this.reason : `${p}: ${this.reason}`;
  }
  override set message(_: string) {}
}

/** A route that does not fit its IDL (unknown service or method, a path parameter no field takes). */
export class GatewayConfigError extends Error {
  override readonly name = 'GatewayConfigError';
  readonly code = 'ERR_GATEWAY_CONFIG';
}

/** Why an upstream call failed. */
export type GatewayUpstreamFailure = 'unavailable' | 'timeout' | 'application' | 'protocol';

/** A Thrift upstream failure, answered 502 (504 for a timeout) with a JSON error. */
export class GatewayUpstreamError extends Error {
  override readonly name = 'GatewayUpstreamError';
  readonly code: string;
  constructor(
    readonly failure: GatewayUpstreamFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.code = `ERR_GATEWAY_UPSTREAM_${failure.toUpperCase()}`;
  }

  /** The HTTP status this failure is answered with. */
  get status(): number {
    return this.failure === 'timeout' ? 504 : 502;
  }
}
