/**
 * One HTTP -> Thrift route: an HTTP method and path template mapped to a service function of
 * an IDL, compiled once (args writer, result readers, request binding). `call` turns a matched
 * request into a Thrift call over the route's upstream and the reply into an HTTP answer:
 * 200 with the return value's JSON, 204 for void (and for oneway, once the call is written),
 * a declared exception as `exceptionStatus` (422) with `{"exception":"Name",...fields}`, a
 * TApplicationException as 502, a refused or failing upstream as 502 and a slow one as 504,
 * all with a JSON error body. Bad input is a 400 naming the JSON path. Not the dispatcher
 * over many routes (gateway-service.ts) and not a connection pool (the upstream is).
 */
import {
  consumeBody,
  createResponse,
  fixedBody,
  type HttpBody,
  HttpBodyError,
  type HttpHeaders,
  type HttpResponse,
} from '@loch/http';
import {
  createReader,
  createWriter,
  MessageType,
  type ProtocolName,
  type ProtocolReader,
  type ProtocolWriter,
  TApplicationException,
  type ThriftFrame,
  TType,
} from '@loch/thrift';
import { JsonText, utf8Bytes } from '../codec/json-text.js';
import { JsonToThriftCompiler, ttypeOf, type ValueWriter } from '../codec/json-to-thrift.js';
import { NativeJsonEmitter, NativeJsonEncoder } from '../codec/native-json.js';
import { compileResponseStruct, type ResponseParts, type ResponseReader } from '../codec/response-struct.js';
import { slabCopy } from '../codec/slab-copy.js';
import { SpanBinaryReader } from '../codec/span-reader.js';
import { type JsonEmitter, type JsonFieldsEmitter, ThriftToJsonCompiler } from '../codec/thrift-to-json.js';
import { GatewayConfigError, GatewayRequestError, GatewayUpstreamError } from '../errors.js';
import type { FunctionDef, IdlDocument } from '../idl/model.js';
import { PseudonymError, segmentsPath } from '../pseudonym/errors.js';
import type { PseudonymRewriter } from '../pseudonym/message-rewriter.js';
import type { FunctionPlan } from '../pseudonym/plan.js';
import { type GatewayRefusalListener, replyRefusal, requestRefusal, tell } from '../refusal.js';
import { PathTemplate } from './path-template.js';
import { annotatedRoute, RequestBinding } from './request-binding.js';

/**
 * Sends one encoded Thrift message (header and body in the route's protocol; the seq id is the
 * sender's to set) and resolves the reply frame, or undefined for a oneway call once written.
 * @loch/thrift's ThriftClient is one; loch's pooled upstreams are another. A failure whose
 * `code` contains `TIMEOUT` is answered 504, any other 502.
 */
export interface ThriftExchange {
  send(
    message: Uint8Array,
    options: { readonly oneway?: boolean; readonly headers?: ReadonlyMap<string, string> },
  ): Promise<ThriftFrame | undefined>;
  /**
   * Optional: the reply's bytes are no longer read (its answer was made from them, copied out),
   * so an exchange whose replies view a pooled connection's receive memory may reuse it.
   */
  release?(reply: ThriftFrame): void;
}

/** A route's settings. */
export interface GatewayRouteOptions {
  /** The loaded IDL. */
  readonly idl: IdlDocument;
  /** Service name as the IDL's root file spells it (`UserService`, `shared.Base`). */
  readonly service: string;
  /** The function to call (inherited ones too). */
  readonly function: string;
  /** Path template (`/users/{id}`); default: the function's `api.<method>` annotation. */
  readonly path?: string;
  /** The HTTP method it answers (default: the annotation's, else any). */
  readonly httpMethod?: string;
  /** Where calls go. */
  readonly upstream: ThriftExchange;
  /** Protocol of the messages (must be what the upstream speaks; default 'binary'). */
  readonly protocol?: ProtocolName;
  /** Status of a declared exception (default 422). */
  readonly exceptionStatus?: number;
  /** i64 as JSON numbers in answers (default false: strings). */
  readonly i64AsNumber?: boolean;
  /** HTTP request headers sent as THeader/TTHeader info keys (same names, lower case), and info keys of the reply returned as response headers. */
  readonly forwardHeaders?: readonly string[];
  /** Largest request body accepted (default 1 MiB); past it the answer is 413. */
  readonly maxBodySize?: number;
  /**
   * Pseudonymization of this function's planned fields: applied to the call message after the
   * JSON is written (a token that does not open is a 400 naming its JSON path) and to the reply
   * before it is read (one that cannot be rewritten is a 502).
   */
  readonly pseudonyms?: PseudonymRewriter;
  /**
   * Told of each request this route refuses (a 4xx for bad JSON, an unknown field, a bad value,
   * a body too large, a token that does not open) and each reply pseudonymization refuses (a
   * 502): reason, code and path, never the value. For metrics and logs.
   */
  readonly onRefused?: GatewayRefusalListener;
}

const JSON_HEADERS: [string, string][] = [['content-type', 'application/json']];

/** A JSON answer (text, or its UTF-8 bytes). */
export function jsonResponse(
  status: number,
  text: string | Uint8Array,
  extra?: Iterable<[string, string]>,
): HttpResponse {
  const res = createResponse(status, { headers: JSON_HEADERS, body: fixedBody(text) });
  if (extra !== undefined) for (const [k, v] of extra) res.headers.append(k, v);
  return res;
}

/** The JSON error answer of a failed request. */
export function errorResponse(error: unknown): HttpResponse {
  if (error instanceof GatewayRequestError) {
    const path = error.path;
    return jsonResponse(
      error.status,
      JSON.stringify({ error: error.code, message: error.message, ...(path === '' ? {} : { path }) }),
    );
  }
  if (error instanceof GatewayUpstreamError) {
    return jsonResponse(error.status, JSON.stringify({ error: error.code, message: error.message }));
  }
  return jsonResponse(500, JSON.stringify({ error: 'ERR_GATEWAY_INTERNAL', message: 'internal error' }));
}

function upstreamFailure(error: unknown): GatewayUpstreamError {
  if (error instanceof GatewayUpstreamError) return error;
  const code = String((error as { code?: unknown } | null)?.code ?? '');
  const message = error instanceof Error ? error.message : String(error);
  return new GatewayUpstreamError(
    code.includes('TIMEOUT') ? 'timeout' : 'unavailable',
    `upstream failed: ${message}`,
    {
      cause: error,
    },
  );
}

/** A pseudonym error's message without its leading field name (the path says where). */
function pseudonymReason(e: PseudonymError): string {
  const colon = e.message.indexOf(': ');
  return colon < 0 ? e.message : e.message.slice(colon + 2);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The body's text; bytes that are not UTF-8 cannot be JSON, so they are a 400 like bad JSON. */
function jsonText(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch (e) {
    throw new GatewayRequestError('ERR_GATEWAY_BAD_JSON', `the body is not JSON: ${(e as Error).message}`);
  }
}

function bodyTooLarge(max: number): GatewayRequestError {
  return new GatewayRequestError('ERR_GATEWAY_BODY_TOO_LARGE', `the body exceeds ${max} bytes`, 413);
}

/** A body read's failure as the gateway answers it: past the route's limit, a 413. */
function tooLargeAs413(e: unknown, max: number): unknown {
  return e instanceof HttpBodyError && e.code === 'ERR_HTTP_BODY_TOO_LARGE' ? bodyTooLarge(max) : e;
}

/** The body's JSON value; undefined for an empty body. */
function parseJson(bytes: Uint8Array): unknown {
  const text = jsonText(bytes);
  if (text.length === 0) return undefined;
  // The content type is not checked: `curl -d` and fetch with a string body label JSON as
  // form or text data; a body that does not parse is a 400 anyway.
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new GatewayRequestError('ERR_GATEWAY_BAD_JSON', `the body is not JSON: ${(e as Error).message}`);
  }
}
/** RFC 9110 field-value characters: visible ASCII, obs-text, space and tab. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

interface ExceptionReader {
  /** `{"exception":"Name"` */
  readonly prefix: Uint8Array;
  readonly type: TType;
  readonly fields: JsonFieldsEmitter;
  /** The exception struct read in @loch/native (undefined: the addon does not load). */
  readonly native: NativeJsonEmitter | undefined;
}

/** The JSON of answers is written here, then copied out (answering is synchronous). */
const answerText = new JsonText();
/** Calls encoded natively are written here, then copied out (encoding is synchronous). */
const callText = new JsonText();

/** A call message encoded natively from the body's bytes (what readJson hands send() then). */
class EncodedCall {
  constructor(readonly message: Uint8Array) {}
}

/** A compiled route. */
export class GatewayRoute {
  readonly fn: FunctionDef;
  readonly template: PathTemplate;
  readonly httpMethod: string | undefined;
  private readonly binding: RequestBinding;
  private readonly writeArgs: ValueWriter;
  private readonly success: JsonEmitter | undefined;
  /** The same reader in @loch/native (a struct or container result, the addon loaded). */
  private readonly successNative: NativeJsonEmitter | undefined;
  /** The body's JSON written natively as the args (no pseudonyms, the addon loaded). */
  private readonly argsNative: NativeJsonEncoder | undefined;
  /** The call's message header (seq id 0), for natively encoded calls. */
  private readonly callHeader: Uint8Array;
  /** readJson's decoder when the body alone makes the args: native first, else JSON.parse. */
  private readonly decodeCall = (bytes: Uint8Array): unknown => {
    const out = callText.reset();
    out.raw(this.callHeader);
    if (this.argsNative?.encode(bytes, out)) return new EncodedCall(out.finishCopy());
    return parseJson(bytes);
  };
  /** The reader of a Hertz-style response struct (api.header / api.http_code / api.body). */
  private readonly successParts: ResponseReader | undefined;
  private readonly successType: TType;
  private readonly exceptions = new Map<number, ExceptionReader>();
  private readonly writer: ProtocolWriter;
  private readonly reader: ProtocolReader;
  private readonly protocol: ProtocolName;
  private readonly exceptionStatus: number;
  private readonly forward: readonly string[];
  private readonly maxBodySize: number;
  private readonly upstream: ThriftExchange;
  private readonly messageType: number;
  private readonly pseudonyms: PseudonymRewriter | undefined;
  /** This function's pseudonymization plan; undefined: nothing to rewrite. */
  private readonly pseudonymPlan: FunctionPlan | undefined;
  private readonly onRefused: GatewayRefusalListener | undefined;

  constructor(options: GatewayRouteOptions) {
    const service = options.idl.services.get(options.service);
    if (service === undefined)
      throw new GatewayConfigError(`${options.idl.file} has no service ${options.service}`);
    const fn = service.functions.get(options.function);
    if (fn === undefined)
      throw new GatewayConfigError(`service ${options.service} has no function ${options.function}`);
    this.fn = fn;
    const annotated = annotatedRoute(fn);
    const path = options.path ?? annotated?.path;
    if (path === undefined) {
      throw new GatewayConfigError(
        `${options.service}.${options.function} has no path (no route path and no api.<method> annotation)`,
      );
    }
    try {
      this.template = new PathTemplate(path);
    } catch (e) {
      throw new GatewayConfigError((e as Error).message);
    }
    this.httpMethod = options.httpMethod?.toUpperCase() ?? annotated?.method;
    this.binding = new RequestBinding(fn, this.template.params);
    const writers = new JsonToThriftCompiler();
    const readers = new ThriftToJsonCompiler({ i64AsNumber: options.i64AsNumber ?? false });
    this.writeArgs = writers.struct(fn.args);
    this.success = fn.returns === undefined ? undefined : readers.emitter(fn.returns);
    this.successParts =
      fn.returns?.kind === 'struct' ? compileResponseStruct(readers, fn.returns.def) : undefined;
    this.successType = fn.returns === undefined ? TType.VOID : ttypeOf(fn.returns);
    for (const f of fn.result.fields) {
      if (f.id === 0 || f.type.kind !== 'struct') continue;
      this.exceptions.set(f.id, {
        prefix: utf8Bytes(`{"exception":${JSON.stringify(f.type.def.name)}`),
        type: TType.STRUCT,
        fields: readers.fieldsEmitter(f.type.def),
        native: NativeJsonEmitter.create(f.type, {
          i64AsNumber: options.i64AsNumber ?? false,
          protocol: options.protocol ?? 'binary',
        }),
      });
    }
    this.protocol = options.protocol ?? 'binary';
    this.successNative =
      fn.returns === undefined || this.successParts !== undefined
        ? undefined
        : NativeJsonEmitter.create(fn.returns, {
            i64AsNumber: options.i64AsNumber ?? false,
            protocol: this.protocol,
          });
    this.writer = createWriter(this.protocol);
    this.reader = this.protocol === 'binary' ? new SpanBinaryReader() : createReader(this.protocol);
    this.exceptionStatus = options.exceptionStatus ?? 422;
    this.forward = (options.forwardHeaders ?? []).map((h) => h.toLowerCase());
    this.maxBodySize = options.maxBodySize ?? 1024 * 1024;
    this.upstream = options.upstream;
    this.messageType = fn.oneway ? MessageType.ONEWAY : MessageType.CALL;
    this.writer.reset().writeMessageBegin(this.fn.name, this.messageType as MessageType, 0);
    this.callHeader = this.writer.finishCopy();
    this.pseudonymPlan = options.pseudonyms?.plan.forFunction(options.service, options.function);
    this.pseudonyms = this.pseudonymPlan === undefined ? undefined : options.pseudonyms;
    this.argsNative =
      this.pseudonyms === undefined ? NativeJsonEncoder.create(fn.args, this.protocol) : undefined;
    this.onRefused = options.onRefused;
  }

  /**
   * Serves a request whose path matched this route with `params`. Never rejects. Not async: a
   * body at hand is read and encoded at once, and the reply is turned into the answer by one
   * `then` on the exchange's promise (handlers made once per route), the call's only promise.
   */
  call(
    request: { readonly headers: HttpHeaders; readonly body: HttpBody },
    params: ReadonlyMap<string, string>,
    query: URLSearchParams | undefined,
  ): Promise<HttpResponse> {
    let body: unknown;
    try {
      // The body's bytes become the call natively when they alone make the args.
      body =
        this.argsNative !== undefined && this.binding.bodyAlone(params, query, request.headers)
          ? this.readJson(request, this.decodeCall)
          : this.readJson(request, parseJson);
    } catch (e) {
      return Promise.resolve(this.refused(e));
    }
    if (body instanceof Promise) {
      return body.then(
        (json: unknown) => this.send(request, params, query, json),
        (e: unknown) => this.refused(e),
      );
    }
    return this.send(request, params, query, body);
  }

  /** The answer to a request refused before anything was sent (told to onRefused). */
  private refused(e: unknown): HttpResponse {
    tell(this.onRefused, requestRefusal(e));
    return errorResponse(e);
  }

  /** Encodes the call of the request's arguments and sends it; its answer. */
  private send(
    request: { readonly headers: HttpHeaders },
    params: ReadonlyMap<string, string>,
    query: URLSearchParams | undefined,
    body: unknown,
  ): Promise<HttpResponse> {
    let message: Uint8Array;
    try {
      message =
        body instanceof EncodedCall
          ? body.message
          : this.encode(this.binding.bind({ params, query, headers: request.headers, body }));
    } catch (e) {
      return Promise.resolve(this.refused(e));
    }
    let headers: Map<string, string> | undefined;
    for (const name of this.forward) {
      const v = request.headers.get(name);
      if (v !== undefined) (headers ??= new Map()).set(name, v);
    }
    let sent: Promise<ThriftFrame | undefined>;
    try {
      sent = this.upstream.send(
        message,
        headers === undefined ? { oneway: this.fn.oneway } : { oneway: this.fn.oneway, headers },
      );
    } catch (e) {
      return Promise.resolve(errorResponse(upstreamFailure(e)));
    }
    return sent.then(this.replied, this.notSent);
  }

  /** The answer to a reply frame (204 for a oneway call once written); the frame is released. */
  private readonly replied = (frame: ThriftFrame | undefined): HttpResponse => {
    if (frame === undefined) return createResponse(204);
    try {
      return this.answer(frame);
    } catch (e) {
      return errorResponse(
        e instanceof GatewayUpstreamError
          ? e
          : new GatewayUpstreamError('protocol', `unreadable reply: ${(e as Error).message}`, { cause: e }),
      );
    } finally {
      // The answer holds copies (JSON bytes, header strings): nothing reads the frame again.
      this.upstream.release?.(frame);
    }
  };

  /** The answer to an exchange that failed. */
  private readonly notSent = (e: unknown): HttpResponse => errorResponse(upstreamFailure(e));

  /** The request's JSON (undefined for no body): at once when the body is at hand, else a promise. */
  private readJson(
    request: { readonly headers: HttpHeaders; readonly body: HttpBody },
    decode: (bytes: Uint8Array) => unknown,
  ): unknown {
    const body = request.body;
    if (body.kind === 'empty') return undefined;
    const max = this.maxBodySize;
    // A fixed body is handed over whole, a Content-Length one announced: both checked up front.
    if (body.length > max) throw bodyTooLarge(max);
    // consumeBody decodes a body that came as one chunk where it lies (no copy), and reads one
    // whose bytes are all at hand without a promise.
    let json: unknown;
    try {
      json = consumeBody(body, decode, max);
    } catch (e) {
      throw tooLargeAs413(e, max);
    }
    return json instanceof Promise ? json.catch((e: unknown) => Promise.reject(tooLargeAs413(e, max))) : json;
  }

  /** The call message for an args value (a copy: the writer is reused). */
  encode(args: Record<string, unknown>): Uint8Array {
    const w = this.writer.reset();
    w.writeMessageBegin(this.fn.name, this.messageType as MessageType, 0);
    try {
      this.writeArgs(w, args);
    } catch (e) {
      // In request-struct mode the argument's own name is not part of what the client sent.
      if (e instanceof GatewayRequestError && e.segments[e.segments.length - 1] === this.binding.wrapperName)
        e.segments.pop();
      throw e;
    }
    w.writeMessageEnd();
    if (this.pseudonyms === undefined) return slabCopy(w.finish());
    try {
      return this.pseudonyms.call(this.protocol, w.finish(), this.pseudonymPlan);
    } catch (e) {
      if (!(e instanceof PseudonymError)) throw e;
      // In request-struct mode the argument's own name is not part of what the client sent.
      const segments = e.segments;
      if (segments[segments.length - 1] === this.binding.wrapperName) segments.pop();
      const bad = new GatewayRequestError('ERR_GATEWAY_PSEUDONYM', `${pseudonymReason(e)} (${e.code})`, 400, {
        cause: e,
      });
      bad.segments.push(...segments);
      throw bad;
    }
  }

  /** The HTTP answer of a reply frame. */
  answer(frame: ThriftFrame): HttpResponse {
    let payload = frame.payload;
    if (this.pseudonyms !== undefined) {
      try {
        payload = this.pseudonyms.reply(this.protocol, payload, this.pseudonymPlan);
      } catch (e) {
        if (!(e instanceof PseudonymError)) throw e;
        tell(this.onRefused, replyRefusal(e));
        const at = segmentsPath(e.segments);
        throw new GatewayUpstreamError(
          'protocol',
          `the reply could not be pseudonymized: ${at === '' ? '' : `${at}: `}${pseudonymReason(e)} (${e.code})`,
          { cause: e },
        );
      }
    }
    const r = this.reader.reset(payload);
    const header = r.readMessageBegin();
    if (header.type === MessageType.EXCEPTION) {
      const x = TApplicationException.read(r);
      return jsonResponse(
        502,
        JSON.stringify({ error: 'ERR_GATEWAY_UPSTREAM_APPLICATION', message: x.message, type: x.type }),
      );
    }
    if (header.type !== MessageType.REPLY || header.name !== this.fn.name) {
      throw new GatewayUpstreamError(
        'protocol',
        `expected a reply to ${this.fn.name}, got type ${header.type} ${header.name}`,
      );
    }
    const back = this.replyHeaders(frame);
    r.readStructBegin();
    let answer: HttpResponse | undefined;
    for (;;) {
      const type = r.readFieldBegin();
      if (type === TType.STOP) break;
      if (
        answer === undefined &&
        r.fieldId === 0 &&
        type === this.successType &&
        this.success !== undefined
      ) {
        if (this.successParts === undefined) {
          const out = answerText.reset();
          // Native when it loads; a reply it refuses is read again in JavaScript (the typed error).
          if (this.successNative === undefined || !this.successNative.emit(r, out)) this.success(r, out);
          answer = jsonResponse(200, out.finishCopy(), back);
        } else answer = this.withParts(r, back);
        continue;
      }
      const x = answer === undefined ? this.exceptions.get(r.fieldId) : undefined;
      if (x !== undefined && type === x.type) {
        const out = answerText.reset();
        out.raw(x.prefix);
        const start = out.pos;
        if (x.native?.emit(r, out)) {
          // `{...}` after the prefix: its fields go on after a comma (`{` -> `,`, the `}` is
          // written below); an empty one leaves nothing.
          out.pos--;
          if (out.pos - start === 1) out.pos = start;
          else out.buf[start] = 0x2c;
        } else x.fields(r, out, true);
        out.byte(0x7d);
        answer = jsonResponse(this.exceptionStatus, out.finishCopy(), back);
        continue;
      }
      r.skip(type);
    }
    if (answer !== undefined) return answer;
    if (this.fn.returns === undefined) {
      const res = createResponse(204);
      if (back !== undefined) for (const [k, v] of back) res.headers.append(k, v);
      return res;
    }
    throw new GatewayUpstreamError('protocol', `${this.fn.name} returned no result`);
  }

  /** A Hertz-style answer: the struct's annotated fields as status and headers. */
  private withParts(r: ProtocolReader, back: [string, string][] | undefined): HttpResponse {
    const parts: ResponseParts = { status: 200, headers: back === undefined ? [] : [...back] };
    const body = (this.successParts as ResponseReader)(r, parts);
    const headers = parts.headers.filter(([, v]) => FIELD_VALUE.test(v));
    return jsonResponse(parts.status, body, headers);
  }

  private replyHeaders(frame: ThriftFrame): [string, string][] | undefined {
    if (this.forward.length === 0 || frame.headers.size === 0) return undefined;
    let out: [string, string][] | undefined;
    for (const name of this.forward) {
      const v = frame.headers.get(name);
      // An info value is any string: only a valid field value (no CR, LF, NUL) becomes a header.
      if (v !== undefined && FIELD_VALUE.test(v)) (out ??= []).push([name, v]);
    }
    return out;
  }
}
