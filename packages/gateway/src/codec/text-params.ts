/**
 * Path, query and header parameters are text; this turns one into the JSON value the JSON ->
 * Thrift writer takes for the field's IDL type: `42` for an i32, `true` for a bool, the text
 * itself for strings, i64 (kept exact), enums (by name or number), base64 binaries, and repeated
 * parameters (`?tag=a&tag=b`) for lists and sets of those. A struct, map or nested container is
 * taken as JSON text (`?filter={"age":3}`). Not for JSON bodies (they are JSON already).
 */
import { GatewayRequestError } from '../errors.js';
import type { IdlType } from '../idl/model.js';

function bad(reason: string): never {
  throw new GatewayRequestError('ERR_GATEWAY_BAD_VALUE', reason);
}

/** The JSON value of the text parameter `texts` (one or more occurrences) for type `t`. */
export function textParamValue(t: IdlType, texts: readonly string[]): unknown {
  if (t.kind === 'list' || t.kind === 'set') {
    if (texts.length === 1 && (texts[0] as string).startsWith('[')) return jsonText(texts[0] as string);
    return texts.map((s) => scalar(t.elem, s));
  }
  return scalar(t, texts[texts.length - 1] as string);
}

function jsonText(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return bad(`${JSON.stringify(s)} is not JSON`);
  }
}

function scalar(t: IdlType, s: string): unknown {
  switch (t.kind) {
    case 'bool':
      if (s === 'true' || s === '1') return true;
      if (s === 'false' || s === '0') return false;
      return bad(`${JSON.stringify(s)} is not a bool`);
    case 'byte':
    case 'i16':
    case 'i32':
    case 'i64':
    case 'string':
    case 'binary':
      // The writers accept integer text and check it; strings and base64 are the text itself.
      return s;
    case 'double':
      return s === 'NaN' || s === 'Infinity' || s === '-Infinity'
        ? s
        : s.trim() === ''
          ? bad('empty double')
          : Number.isNaN(Number(s))
            ? bad(`${JSON.stringify(s)} is not a double`)
            : Number(s);
    case 'enum': {
      if (t.def.byName.has(s)) return s;
      const n = Number(s);
      return s !== '' && Number.isInteger(n) ? n : s;
    }
    default:
      return jsonText(s);
  }
}
