/**
 * Where each argument of a Thrift call comes from in an HTTP request, decided once per route
 * from the IDL. Two shapes:
 * - By name (no CloudWeGo annotations): the method's arguments are filled by name from path
 *   parameters, then query parameters, then the top-level keys of a JSON object body
 *   (`GET /users/42` -> `getUser(id = 42)`, `{"user": {...}}` -> `user`).
 * - Request struct (Hertz/Kitex style): the method takes one struct whose fields carry
 *   `api.path`, `api.query`, `api.header` or `api.body` annotations (or the method carries
 *   `api.get`/`api.post`/...): the JSON body is that struct (keys renamed by `api.body`), and
 *   annotated fields come from the path, query or headers; unannotated ones from the body, else
 *   a path or query parameter of the same name.
 * Unknown JSON keys are 400s (the writer names them); unknown query parameters are ignored, as
 * web frameworks do (cache busters, tracking tags). Not for writing Thrift (codec/).
 */
import type { HttpHeaders } from '@loch/http';
import { textParamValue } from '../codec/text-params.js';
import { GatewayConfigError, GatewayRequestError } from '../errors.js';
import type { FieldDef, FunctionDef, IdlType } from '../idl/model.js';

/** What a request brings: path parameters, query, headers and the parsed JSON body. */
export interface BindingInput {
  readonly params: ReadonlyMap<string, string>;
  readonly query: URLSearchParams | undefined;
  readonly headers: HttpHeaders;
  /** The parsed body; undefined when there is none. */
  readonly body: unknown;
}

interface TextSource {
  readonly field: string;
  readonly type: IdlType;
  readonly from: 'path' | 'query' | 'header';
  readonly key: string;
}

const HTTP_METHOD_ANNOTATIONS = [
  'api.get',
  'api.post',
  'api.put',
  'api.delete',
  'api.patch',
  'api.head',
  'api.options',
];
const FIELD_ANNOTATIONS = ['api.path', 'api.query', 'api.header', 'api.body'];

/** The HTTP method and path an `api.<method>` annotation gives a function, if any. */
export function annotatedRoute(fn: FunctionDef): { method: string; path: string } | undefined {
  for (const a of HTTP_METHOD_ANNOTATIONS) {
    const path = fn.annotations.get(a);
    if (path !== undefined) return { method: a.slice(4).toUpperCase(), path };
  }
  return undefined;
}

/** Builds the JSON value of a function's args struct from a request. */
export class RequestBinding {
  /** The one request-struct argument (Hertz style), or undefined for by-name binding. */
  private readonly wrapper: FieldDef | undefined;
  private readonly sources: TextSource[] = [];
  /** Body key -> field name, where `api.body` renames (request-struct mode). */
  private readonly renames = new Map<string, string>();

  constructor(fn: FunctionDef, pathParams: readonly string[]) {
    const only = fn.args.fields.length === 1 ? fn.args.fields[0] : undefined;
    const annotated =
      only !== undefined &&
      only.type.kind === 'struct' &&
      (annotatedRoute(fn) !== undefined ||
        only.type.def.fields.some((f) => FIELD_ANNOTATIONS.some((a) => f.annotations.has(a))));
    this.wrapper = annotated ? only : undefined;
    const fields =
      this.wrapper !== undefined && this.wrapper.type.kind === 'struct'
        ? this.wrapper.type.def.fields
        : fn.args.fields;
    const taken = new Set<string>();
    for (const f of fields) {
      const path = f.annotations.get('api.path');
      const query = f.annotations.get('api.query');
      const header = f.annotations.get('api.header');
      const body = f.annotations.get('api.body');
      if (path !== undefined) {
        this.sources.push({ field: f.name, type: f.type, from: 'path', key: path || f.name });
        taken.add(path || f.name);
      } else if (query !== undefined)
        this.sources.push({ field: f.name, type: f.type, from: 'query', key: query || f.name });
      else if (header !== undefined)
        this.sources.push({
          field: f.name,
          type: f.type,
          from: 'header',
          key: (header || f.name).toLowerCase(),
        });
      else {
        if (body !== undefined && body !== '' && body !== f.name) this.renames.set(body, f.name);
        if (pathParams.includes(f.name)) {
          this.sources.push({ field: f.name, type: f.type, from: 'path', key: f.name });
          taken.add(f.name);
        } else this.sources.push({ field: f.name, type: f.type, from: 'query', key: f.name });
      }
    }
    for (const p of pathParams) {
      if (!taken.has(p)) {
        throw new GatewayConfigError(`path parameter {${p}} is not an argument of ${fn.service}.${fn.name}`);
      }
    }
  }

  /** The args struct's JSON value. Throws GatewayRequestError on a body that is not an object. */
  bind(input: BindingInput): Record<string, unknown> {
    const b = input.body;
    if (b !== undefined && (b === null || typeof b !== 'object' || Array.isArray(b))) {
      throw new GatewayRequestError('ERR_GATEWAY_BAD_JSON', 'the body must be a JSON object');
    }
    let target: Record<string, unknown>;
    if (b === undefined) target = {};
    else if (this.renames.size === 0) target = b as Record<string, unknown>;
    else {
      target = {};
      for (const k in b as Record<string, unknown>) {
        target[this.renames.get(k) ?? k] = (b as Record<string, unknown>)[k];
      }
    }
    for (const s of this.sources) {
      let texts: string[] | undefined;
      if (s.from === 'path') {
        const v = input.params.get(s.key);
        if (v !== undefined) texts = [v];
      } else if (s.from === 'query') {
        if (input.query?.has(s.key)) texts = input.query.getAll(s.key);
      } else {
        const v = input.headers.getAll(s.key);
        if (v.length > 0) texts = v;
      }
      if (texts === undefined) continue;
      try {
        target[s.field] = textParamValue(s.type, texts);
      } catch (e) {
        if (e instanceof GatewayRequestError) e.segments.push(s.field);
        throw e;
      }
    }
    if (this.wrapper === undefined) return target;
    return { [this.wrapper.name]: target };
  }

  /**
   * True when bind() of this request would return its JSON body object itself: by-name binding
   * with no path, query or header value for any argument (then the body's bytes can be written
   * as the args struct directly).
   */
  bodyAlone(
    params: ReadonlyMap<string, string>,
    query: URLSearchParams | undefined,
    headers: HttpHeaders,
  ): boolean {
    if (this.wrapper !== undefined || this.renames.size !== 0) return false;
    for (const s of this.sources) {
      if (
        s.from === 'path'
          ? params.has(s.key)
          : s.from === 'query'
            ? query?.has(s.key) === true
            : headers.has(s.key)
      )
        return false;
    }
    return true;
  }

  /** The name of the request-struct argument whose path segment errors should not show. */
  get wrapperName(): string | undefined {
    return this.wrapper?.name;
  }
}
