/**
 * SpanBinaryReader: the Thrift -> JSON emitters copy strings from where they lie in the reader's
 * buffer and give the JSON a plain BinaryReader gives (ASCII, escapes, non-ASCII, empty, as map
 * keys and list elements), with the reader's checks (a negative or truncated length refused).
 */
import { BinaryReader, BinaryWriter } from '@loch/thrift';
import { describe, expect, it } from 'vitest';
import { loadIdl } from '../idl/load.js';
import { JsonToThriftCompiler } from './json-to-thrift.js';
import { SpanBinaryReader } from './span-reader.js';
import { ThriftToJsonCompiler } from './thrift-to-json.js';

const idl = loadIdl('/virtual/strings.thrift', {
  readFile: () =>
    'struct S {\n  1: string a\n  2: list<string> b\n  3: map<string, string> c\n  4: binary d\n}\n',
});
const def = idl.structs.get('S')!;

function encoded(value: unknown): Uint8Array {
  const w = new BinaryWriter();
  new JsonToThriftCompiler().struct(def)(w, value);
  return w.finishCopy();
}

describe('SpanBinaryReader', () => {
  const read = new ThriftToJsonCompiler().struct(def);
  it.each([
    { a: 'plain ascii' },
    { a: '' },
    { a: 'quote " backslash \\ newline \n tab \t' },
    { a: 'grüße € 𝄞', b: ['x', 'ü', '"'], c: { 'k"ey': 'välue', '': '' } },
    { d: 'AAEC/w==' },
  ])('reads %j as a BinaryReader does', (value) => {
    const bytes = encoded(value);
    const span = read(new SpanBinaryReader().reset(bytes));
    expect(span).toBe(read(new BinaryReader().reset(bytes)));
    expect(JSON.parse(span)).toEqual(value);
  });

  it('refuses a string longer than the bytes left, and a negative length', () => {
    const bytes = encoded({ a: 'abcdef' });
    // Field header (3 bytes), then the length: cut the message inside the string.
    expect(() => read(new SpanBinaryReader().reset(bytes, 0, bytes.byteLength - 3))).toThrow(
      expect.objectContaining({ code: 'ERR_THRIFT_TRUNCATED' }),
    );
    const negative = bytes.slice();
    new DataView(negative.buffer).setInt32(3, -1);
    expect(() => read(new SpanBinaryReader().reset(negative))).toThrow(
      expect.objectContaining({ code: 'ERR_THRIFT_NEGATIVE_SIZE' }),
    );
    // At the string's length (after the 3-byte field header): 6 bytes, over a limit of 3.
    expect(() => new SpanBinaryReader({ maxStringLength: 3 }).reset(bytes, 3).readBinarySpan()).toThrow(
      expect.objectContaining({ code: 'ERR_THRIFT_SIZE_LIMIT' }),
    );
  });
});
