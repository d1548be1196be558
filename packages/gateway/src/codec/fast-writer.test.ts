/**
 * FastBinaryWriter writes the bytes BinaryWriter writes, growing its buffer from the initial
 * 256 bytes as often as a 10 KiB struct needs, and across reuse (reset) of one writer.
 */
import { BinaryWriter } from '@loch/thrift';
import { describe, expect, it } from 'vitest';
import { loadIdl } from '../idl/load.js';
import { FastBinaryWriter } from './fast-writer.js';
import { JsonToThriftCompiler } from './json-to-thrift.js';

const idl = loadIdl('/virtual/big.thrift', {
  readFile: () =>
    'struct E {\n  1: i64 id\n  2: string name\n  3: double score\n  4: list<string> tags\n}\n' +
    'struct S {\n  1: list<E> entries\n  2: map<string, binary> blobs\n}\n',
});
const write = new JsonToThriftCompiler().struct(idl.structs.get('S')!);

function value(n: number) {
  return {
    entries: Array.from({ length: n }, (_, i) => ({
      id: String(1000 + i),
      name: `entry ${i} ${'é'.repeat(i % 7)}`,
      score: i / 7,
      tags: ['a', 'b'.repeat(i % 50)],
    })),
    blobs: { k: Buffer.alloc(3000, 7).toString('base64') },
  };
}

describe('FastBinaryWriter', () => {
  it('writes what BinaryWriter writes, growing as needed, across resets', () => {
    const fast = new FastBinaryWriter();
    for (const n of [0, 1, 80, 3, 400]) {
      const plain = new BinaryWriter();
      write(plain, value(n));
      write(fast.reset(), value(n));
      expect(fast.finishCopy()).toEqual(plain.finishCopy());
    }
  });
});
