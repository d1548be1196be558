/**
 * The Hertz/Kitex shape of an answer: when a function returns a struct whose fields carry
 * `api.header` (the field becomes a response header), `api.http_code` (the field is the HTTP
 * status) or `api.body` (the field's JSON key), the reply is split into HTTP parts while it is
 * read; the remaining fields are the JSON body. Header values are the field's text (strings as
 * they are, numbers and bools as JSON writes them); a status outside 200-599 is ignored.
 * Not for structs without such annotations (thrift-to-json.ts reads those as they are).
 */
import { type ProtocolReader, TType } from '@loch/thrift';
import type { StructDef } from '../idl/model.js';
import { ttypeOf } from './json-to-thrift.js';
import type { JsonReader, ThriftToJsonCompiler } from './thrift-to-json.js';

/** What an annotated answer adds to the HTTP response. */
export interface ResponseParts {
  status: number;
  headers: [string, string][];
}

/** Reads an annotated response struct into its JSON body, filling `parts`. */
export type ResponseReader = (r: ProtocolReader, parts: ResponseParts) => string;

const ANNOTATIONS = ['api.header', 'api.http_code', 'api.body'];

interface FieldPlan {
  readonly type: TType;
  readonly read: JsonReader;
  /** `"key":` for body fields; undefined for header and status fields. */
  readonly prefix: string | undefined;
  readonly header: string | undefined;
  readonly status: boolean;
}

/** The reader of an annotated response struct, or undefined when no field is annotated. */
export function compileResponseStruct(
  compiler: ThriftToJsonCompiler,
  def: StructDef,
): ResponseReader | undefined {
  if (!def.fields.some((f) => ANNOTATIONS.some((a) => f.annotations.has(a)))) return undefined;
  const byId = new Map<number, FieldPlan>();
  for (const f of def.fields) {
    const header = f.annotations.get('api.header');
    const status = f.annotations.has('api.http_code');
    const key = f.annotations.get('api.body') || f.name;
    byId.set(f.id, {
      type: ttypeOf(f.type),
      read: compiler.value(f.type, f.annotations.has('api.js_conv') || header !== undefined),
      prefix: header === undefined && !status ? `${JSON.stringify(key)}:` : undefined,
      header: header === undefined ? undefined : (header || f.name).toLowerCase(),
      status,
    });
  }
  return (r, parts) => {
    r.readStructBegin();
    let out = '';
    for (;;) {
      const type = r.readFieldBegin();
      if (type === TType.STOP) break;
      const f = byId.get(r.fieldId);
      if (f === undefined || f.type !== type) {
        r.skip(type);
        continue;
      }
      const text = f.read(r);
      if (f.prefix !== undefined) out += out === '' ? f.prefix + text : `,${f.prefix}${text}`;
      else if (f.status) {
        const n = Number(text);
        if (Number.isInteger(n) && n >= 200 && n <= 599) parts.status = n;
      } else {
        const value = text.charCodeAt(0) === 0x22 ? (JSON.parse(text) as string) : text;
        parts.headers.push([f.header as string, value]);
      }
    }
    r.readStructEnd();
    return `{${out}}`;
  };
}
