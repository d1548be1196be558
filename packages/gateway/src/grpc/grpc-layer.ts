/**
 * gRPC pseudonymization as a Service layer over @loch/http requests and responses (HTTP/2 gRPC
 * calls, unary and streaming): a call whose content-type is application/grpc and whose :path has
 * a plan gets its request body and its response body rewritten message by message
 * (GrpcMessageStream), trailers passed through; every other request reaches the inner service
 * untouched. A request message that cannot be rewritten aborts the request body (the inner
 * service sees a failed body, so nothing unrewritten goes upstream); a response message that
 * cannot be rewritten ends the response there with trailers grpc-status 13 (INTERNAL) naming the
 * field, never the value. Not for routing or HTTP/2 itself.
 */
import { type HttpBody, HttpHeaders, type HttpRequest, type HttpResponse } from '@loch/http';
import type { Service } from '@loch/service-async';
import { PseudonymError, segmentsPath } from '../pseudonym/errors.js';
import { type GatewayRefusalListener, replyRefusal, requestRefusal, tell } from '../refusal.js';
import type { ProtoMethodPlan } from './proto-plan.js';
import { GrpcMessageStream, type GrpcPseudonymRewriter } from './proto-rewriter.js';

/** gRPC status INTERNAL. */
const INTERNAL = '13';

/** What a failed rewrite says (path and code only: never the value or the token). */
function describe(error: unknown, side: 'request' | 'response'): string {
  if (error instanceof PseudonymError) {
    const path = segmentsPath(error.segments);
    return `loch: pseudonymization refused the ${side}${path === '' ? '' : ` at ${path}`} (${error.code})`;
  }
  return `loch: pseudonymization failed on the ${side}`;
}

/** A body whose gRPC messages are rewritten as they pass. */
class RewrittenGrpcBody implements HttpBody {
  readonly kind = 'stream' as const;
  readonly length = -1;
  #failure: HttpHeaders | null = null;

  constructor(
    private readonly inner: HttpBody,
    private readonly stream: GrpcMessageStream,
    /** Response side: a failure ends the body with these trailers instead of throwing. */
    private readonly failTrailers: ((error: unknown) => HttpHeaders) | undefined,
    private readonly onRefused: GatewayRefusalListener | undefined,
  ) {}

  get trailers(): HttpHeaders | null {
    return this.#failure ?? this.inner.trailers;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    const it = this.inner[Symbol.asyncIterator]();
    try {
      for (;;) {
        const step = await it.next();
        let out: Uint8Array[];
        try {
          if (step.done) {
            this.stream.end();
            return;
          }
          out = this.stream.push(step.value);
        } catch (error) {
          tell(this.onRefused, this.failTrailers === undefined ? requestRefusal(error) : replyRefusal(error));
          if (this.failTrailers === undefined) throw error;
          this.#failure = this.failTrailers(error);
          return;
        }
        for (const message of out) yield message;
      }
    } finally {
      await it.return?.();
    }
  }
}

/** Pseudonymizes (or reveals) the chosen fields of gRPC calls around `inner`. */
export class GrpcPseudonymService<Req extends HttpRequest = HttpRequest>
  implements Service<Req, HttpResponse>
{
  constructor(
    readonly inner: Service<Req, HttpResponse>,
    readonly rewriter: GrpcPseudonymRewriter,
    /** Largest gRPC message rewritten (default 4 MiB, gRPC's default receive limit). */
    readonly maxMessageSize = 4 * 1024 * 1024,
    /** Told of each request or response message refused (reason, code, field path; never the value). */
    readonly onRefused?: GatewayRefusalListener,
  ) {}

  call(request: Req): Promise<HttpResponse> | HttpResponse {
    const type = request.headers.get('content-type');
    if (type === undefined || !type.startsWith('application/grpc')) return this.inner.call(request);
    const q = request.target.indexOf('?');
    const method = this.rewriter.forPath(q < 0 ? request.target : request.target.slice(0, q));
    if (method === undefined) return this.inner.call(request);
    if (method.request !== undefined) {
      // The body changes length: its framing is derived from the new body.
      request.headers.delete('content-length');
      request.body = new RewrittenGrpcBody(
        request.body,
        new GrpcMessageStream((m) => this.rewriter.request(method, m), this.maxMessageSize),
        undefined,
        this.onRefused,
      );
    }
    return Promise.resolve(this.inner.call(request)).then((response) => this.#response(method, response));
  }

  #response(method: ProtoMethodPlan, response: HttpResponse): HttpResponse {
    if (method.response === undefined || response.body.kind === 'empty') return response;
    response.headers.delete('content-length');
    response.body = new RewrittenGrpcBody(
      response.body,
      new GrpcMessageStream((m) => this.rewriter.response(method, m), this.maxMessageSize),
      (error) =>
        new HttpHeaders([
          ['grpc-status', INTERNAL],
          ['grpc-message', encodeURIComponent(describe(error, 'response'))],
        ]),
      this.onRefused,
    );
    return response;
  }
}
