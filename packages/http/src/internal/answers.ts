/**
 * Answers a server makes itself, whatever the protocol: a short text response for a status and
 * code, and the release of a body that will not be sent.
 */
import { FixedBody, type HttpBody } from '../body.js';
import { HttpHeaders } from '../headers.js';
import type { HttpResponse } from '../message.js';

/** Lets go of a body that will not be sent (HEAD, 204, 304). */
export async function closeBody(body: HttpBody): Promise<void> {
  try {
    await body[Symbol.asyncIterator]().return?.();
  } catch {
    // Already iterated, or its source failed: nothing to release.
  }
}

/** A short text answer the server makes itself: the status and its `ERR_HTTP_*` code as the body. */
export function plainResponse(status: number, code: string): HttpResponse {
  return {
    status,
    reason: '',
    version: '1.1',
    headers: new HttpHeaders([['content-type', 'text/plain']]),
    body: new FixedBody(`${code}\n`),
  };
}
