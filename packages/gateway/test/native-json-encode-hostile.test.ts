/**
 * Hostile request bodies against the native request encoder (gateway_json.cc): work that grows
 * faster than the body must not be possible, because the encoder runs on the worker's event loop.
 * A struct whose keys come out of IDL order is written again in two passes, a map with an
 * array-index key again in key order; nested, those restarts multiplied (a 242-byte body nested
 * 20 deep took 243 ms, each level doubling). Sets checked each element against every earlier one
 * (100,000 elements: 18 s). Each case here must come out as JavaScript's path says (bytes or
 * refusal); before the fix the first two never finished within the test timeout.
 */
import { createWriter, type ProtocolName } from '@loch/thrift';
import { describe, expect, it } from 'vitest';
import { JsonText } from '../src/codec/json-text.js';
import { NativeJsonEncoder } from '../src/codec/native-json.js';
import { GatewayRequestError, JsonToThriftCompiler, loadIdl, type StructDef } from '../src/index.js';

const idl = loadIdl('/h/h.thrift', {
  readFile: () =>
    [
      'struct N { 1: optional i32 x, 2: optional N a }',
      'struct M { 1: optional map<string, M> m }',
      'struct S { 1: optional set<i32> s }',
    ].join('\n'),
});
const struct = (name: string) => idl.structs.get(name) as StructDef;

/** The JavaScript path's outcome: its bytes, or that it refuses. */
function viaJs(def: StructDef, text: string, protocol: ProtocolName): string {
  try {
    const w = createWriter(protocol);
    new JsonToThriftCompiler().struct(def)(w, JSON.parse(text));
    return Buffer.from(w.finish()).toString('hex');
  } catch (e) {
    if (e instanceof GatewayRequestError) return 'refused';
    throw e;
  }
}

/** The native outcome: its bytes, or 'refused' (the route then runs the JavaScript path). */
function viaNative(def: StructDef, text: string, protocol: ProtocolName): string {
  const enc = NativeJsonEncoder.create(def, protocol);
  if (enc === undefined) throw new Error('no native encoder');
  const out = new JsonText();
  return enc.encode(Buffer.from(text), out) ? out.buf.toString('hex', 0, out.pos) : 'refused';
}

/** Native agrees with JavaScript: the same bytes, or a refusal (JavaScript then decides). */
function agrees(def: StructDef, text: string, protocol: ProtocolName): void {
  const js = viaJs(def, text, protocol);
  const native = viaNative(def, text, protocol);
  if (native !== 'refused') expect(native).toBe(js);
}

describe.each(['binary', 'compact'] as ProtocolName[])(
  'native request encoder, hostile bodies (%s)',
  (protocol) => {
    it('a struct nested 40 deep with every level out of IDL order', () => {
      let body = '{"x":1}';
      for (let d = 0; d < 40; d++) body = `{"a":${body},"x":${d}}`;
      agrees(struct('N'), body, protocol);
    });

    it('maps nested 40 deep, each with an array-index key after another key', () => {
      let body = '{}';
      for (let d = 0; d < 40; d++) body = `{"m":{"k":${body},"0":{}}}`;
      agrees(struct('M'), body, protocol);
    });

    it('a set of 100,000 distinct elements, and the same with one duplicate at its end', () => {
      const values = Array.from({ length: 100_000 }, (_, i) => i * 7);
      agrees(struct('S'), `{"s":[${values.join(',')}]}`, protocol);
      const dup = `{"s":[${values.join(',')},${values[12_345]}]}`;
      expect(viaJs(struct('S'), dup, protocol)).toBe('refused');
      expect(viaNative(struct('S'), dup, protocol)).toBe('refused');
    });

    it('small sets still write natively, duplicates still refused', () => {
      expect(viaNative(struct('S'), '{"s":[3,1,2]}', protocol)).toBe(
        viaJs(struct('S'), '{"s":[3,1,2]}', protocol),
      );
      expect(viaNative(struct('S'), '{"s":[3,1,3]}', protocol)).toBe('refused');
    });
  },
);
