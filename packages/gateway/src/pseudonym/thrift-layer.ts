/**
 * Pseudonymization as a Service layer of Thrift calls (@loch/thrift's ThriftRequest/ThriftReply,
 * the handler type of ThriftServer): the call's message is rewritten on its way to the inner
 * service and the reply on its way back, by a PseudonymRewriter (message-rewriter.ts). Calls the
 * plan does not name go through untouched (same request object, no copy). A value that cannot
 * be rewritten never passes: a bad token or a field of another wire type in a call is answered
 * with a TApplicationException PROTOCOL_ERROR naming the argument's path (`args.user.email`) and
 * the error code, without calling the inner service; a reply that cannot be rewritten becomes an
 * INTERNAL_ERROR (the upstream's bytes are at fault, and the caller must not get them as they
 * are). Messages never contain the values or tokens. Not for framing or routing.
 */
import { type FactoryLayer, type MakeService, makeFn, type Service } from '@loch/service-async';
import {
  createReader,
  type MessageHeader,
  type ProtocolReader,
  TApplicationException,
  TApplicationExceptionType,
  type ThriftAbortSignal,
  type ThriftFrame,
  type ThriftReply,
  type ThriftRequest,
  type ThriftStream,
} from '@loch/thrift';
import { type GatewayRefusalListener, replyRefusal, requestRefusal, tell } from '../refusal.js';
import { PseudonymError, segmentsPath } from './errors.js';
import type { PseudonymRewriter } from './message-rewriter.js';

/** A Thrift handler: what ThriftServer serves. */
type ThriftService = Service<ThriftRequest, ThriftReply | undefined>;

/** The call as rewritten: the same call with another payload. */
class RewrittenCall implements ThriftRequest {
  readonly frame: ThriftFrame;
  constructor(
    private readonly original: ThriftRequest,
    payload: Uint8Array,
  ) {
    this.frame = { ...original.frame, payload, wireLength: payload.byteLength };
  }
  get header(): MessageHeader {
    return this.original.header;
  }
  /** The message header is copied unchanged, so the body starts where it did. */
  get bodyOffset(): number {
    return this.original.bodyOffset;
  }
  get signal(): ThriftAbortSignal {
    return this.original.signal;
  }
  get stream(): ThriftStream {
    return this.original.stream;
  }
  reader(): ProtocolReader {
    return createReader(this.frame.protocol).reset(this.frame.payload, this.bodyOffset);
  }
  /** The rewritten payload is this call's own copy: the original was released when it was made. */
  release(): void {}
}

/** `side.path: reason (CODE)`, for a TApplicationException message. */
function describe(error: unknown, side: 'args' | 'result'): string {
  if (error instanceof PseudonymError) {
    const path = segmentsPath(error.segments);
    return `${path === '' ? side : `${side}.${path}`}: ${error.message} (${error.code})`;
  }
  const code = (error as { code?: unknown } | null)?.code;
  return `${(error as Error)?.message ?? String(error)}${typeof code === 'string' ? ` (${code})` : ''}`;
}

/** Pseudonymizes (or reveals) the planned fields of calls and replies around `inner`. */
export class ThriftPseudonymService<S extends ThriftService = ThriftService> implements ThriftService {
  constructor(
    readonly inner: S,
    readonly rewriter: PseudonymRewriter,
    /** Told of each call or reply refused (reason, code, field path; never the value). */
    readonly onRefused?: GatewayRefusalListener,
  ) {}

  call(request: ThriftRequest): Promise<ThriftReply | undefined> | ThriftReply | undefined {
    // The server parsed the header already: an unplanned call costs one map lookup.
    if (!this.rewriter.plans(request.header.name)) return this.inner.call(request);
    const frame = request.frame;
    let payload: Uint8Array;
    try {
      payload = this.rewriter.call(frame.protocol, frame.payload);
    } catch (error) {
      request.release?.();
      tell(this.onRefused, requestRefusal(error));
      return Promise.reject(
        new TApplicationException(
          TApplicationExceptionType.PROTOCOL_ERROR,
          `loch: pseudonymization refused the call: ${describe(error, 'args')}`,
        ),
      );
    }
    let forwarded = request;
    if (payload !== frame.payload) {
      // The call travels on as a copy: the server may reuse the received bytes' memory.
      forwarded = new RewrittenCall(request, payload);
      request.release?.();
    }
    return Promise.resolve(this.inner.call(forwarded)).then((reply) => this.#reply(reply, frame));
  }

  #reply(reply: ThriftReply | undefined, frame: ThriftFrame): ThriftReply | undefined {
    if (reply === undefined) return undefined;
    let payload: Uint8Array;
    try {
      payload = this.rewriter.reply(frame.protocol, reply.payload);
    } catch (error) {
      reply.release?.();
      tell(this.onRefused, replyRefusal(error));
      throw new TApplicationException(
        TApplicationExceptionType.INTERNAL_ERROR,
        `loch: the upstream's reply could not be pseudonymized: ${describe(error, 'result')}`,
      );
    }
    if (payload === reply.payload) return reply; // released by the server once written
    // The caller gets a copy: the reply's own bytes (an upstream reader's memory) are free now.
    reply.release?.();
    const out: {
      payload: Uint8Array;
      headers?: ReadonlyMap<string, string>;
      intHeaders?: ReadonlyMap<number, string>;
    } = {
      payload,
    };
    if (reply.headers !== undefined) out.headers = reply.headers;
    if (reply.intHeaders !== undefined) out.intHeaders = reply.intHeaders;
    return out;
  }
}

/**
 * A FactoryLayer: `rewriter(config)` (undefined: no layer, the inner service as it is) around
 * the inner Thrift service. Built when the stack is built and on reload; `make(old)` hands the
 * old inner service to the inner factory.
 */
export function thriftPseudonymLayer<C, S extends ThriftService>(
  rewriter: (config: C) => PseudonymRewriter,
): FactoryLayer<C, MakeService<S>, MakeService<ThriftPseudonymService<S>>> {
  return {
    layer: (config, inner) => {
      const built = rewriter(config);
      return makeFn(
        (old?: ThriftPseudonymService<S>) => new ThriftPseudonymService(inner.make(old?.inner), built),
      );
    },
  };
}
