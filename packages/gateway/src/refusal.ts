/**
 * What a gateway layer tells its user about each message it refused (a 4xx it answered for bad
 * client input, or a message pseudonymization would not pass), so an application can count and
 * log refusals without parsing answers: a closed `reason` fit for a metric label, the precise
 * error code and where in the message. Never the value: neither field carries client data (the
 * error messages of bad values quote them, so they are not passed). Not for upstream failures.
 */
import { GatewayRequestError, UNKNOWN_FIELD } from './errors.js';
import { PseudonymError, segmentsPath } from './pseudonym/errors.js';

/** Why a message was refused (a small closed set: a metric label). */
export type GatewayRefusalReason =
  /** The body is not JSON, or not a JSON object where one is needed. */
  | 'bad_json'
  /** A JSON field the IDL does not have. */
  | 'unknown_field'
  /** A value that does not fit the IDL (type, range, missing required field...). */
  | 'bad_value'
  /** A body over the size limit (413). */
  | 'body_too_large'
  /** Pseudonymization refused a value of the client's request (a bad, moved or unknown-key token). */
  | 'pseudonym_request'
  /** Pseudonymization refused a value of the upstream's reply. */
  | 'pseudonym_reply';

export interface GatewayRefusal {
  readonly reason: GatewayRefusalReason;
  /** The error code (GatewayRequestErrorCode, or the PseudonymErrorCode for pseudonym reasons). */
  readonly code: string;
  /** Where: the JSON path (`user.emial`) or the message field path (`others.street`); '' for the whole. */
  readonly path: string;
}

/** Told of each refusal; must not throw (a throw is ignored). */
export type GatewayRefusalListener = (refusal: GatewayRefusal) => void;

/** The refusal of a client-input error, or undefined for other errors. */
export function requestRefusal(error: unknown): GatewayRefusal | undefined {
  if (error instanceof GatewayRequestError) {
    const path = error.path;
    switch (error.code) {
      case 'ERR_GATEWAY_BAD_JSON':
        return { reason: 'bad_json', code: error.code, path };
      case 'ERR_GATEWAY_BODY_TOO_LARGE':
        return { reason: 'body_too_large', code: error.code, path };
      case 'ERR_GATEWAY_PSEUDONYM': {
        const cause = error.cause;
        const code = cause instanceof PseudonymError ? cause.code : error.code;
        return { reason: 'pseudonym_request', code, path };
      }
      default:
        return {
          reason: error.reason === UNKNOWN_FIELD ? 'unknown_field' : 'bad_value',
          code: error.code,
          path,
        };
    }
  }
  if (error instanceof PseudonymError)
    return { reason: 'pseudonym_request', code: error.code, path: segmentsPath(error.segments) };
  return undefined;
}

/** The refusal of a reply (or response message) pseudonymization would not pass. */
export function replyRefusal(error: unknown): GatewayRefusal | undefined {
  if (!(error instanceof PseudonymError)) return undefined;
  return { reason: 'pseudonym_reply', code: error.code, path: segmentsPath(error.segments) };
}

/** Tells `listener` of `refusal` (a listener's throw must not change the answer). */
export function tell(
  listener: GatewayRefusalListener | undefined,
  refusal: GatewayRefusal | undefined,
): void {
  if (listener === undefined || refusal === undefined) return;
  try {
    listener(refusal);
  } catch {}
}
