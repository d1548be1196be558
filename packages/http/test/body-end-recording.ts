/**
 * Test support: server options whose onBodyEnd records each told body end (the request's target,
 * the answer's status, the bytes taken, the failure's message or null), in order.
 */
import type { HttpConnectionContext } from '../src/context.js';
import type { HttpServerOptions } from '../src/server.js';

export interface Ended {
  target: string;
  status: number;
  bytes: number;
  error: string | null;
}

export function recording(): { ended: Ended[]; options: HttpServerOptions<HttpConnectionContext> } {
  const ended: Ended[] = [];
  return {
    ended,
    options: {
      onBodyEnd: (req, res, n, error) =>
        ended.push({
          target: req.target,
          status: res.status,
          bytes: n,
          error: error === null ? null : ((error as Error).message ?? String(error)),
        }),
    },
  };
}
