/**
 * Byte-level interop with npm `thrift`: the same struct written by npm thrift's
 * TBinaryProtocol/TCompactProtocol and by ours gives identical bytes, and each reads the other's.
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import {
  createReader,
  createWriter,
  MessageType,
  type ProtocolName,
  readStruct,
  TType,
} from '../src/index.js';

const require = createRequire(import.meta.url);
// biome-ignore lint/suspicious/noExplicitAny: npm thrift's transport internals are untyped.
const thrift: any = require('thrift');

/** Writes the sample message with npm thrift and returns its bytes. */
function npmEncode(protocol: ProtocolName): Uint8Array {
  let out: Buffer | undefined;
  const transport = new thrift.TBufferedTransport(undefined, (buf: Buffer) => {
    out = buf;
  });
  const P = protocol === 'binary' ? thrift.TBinaryProtocol : thrift.TCompactProtocol;
  const p = new P(transport);
  p.writeMessageBegin('getUser', thrift.Thrift.MessageType.CALL, 77);
  p.writeStructBegin('args');
  p.writeFieldBegin('id', thrift.Thrift.Type.I64, 1);
  p.writeI64(new thrift.Int64(-5));
  p.writeFieldEnd();
  p.writeFieldBegin('name', thrift.Thrift.Type.STRING, 2);
  p.writeString('åsa');
  p.writeFieldEnd();
  p.writeFieldBegin('ok', thrift.Thrift.Type.BOOL, 3);
  p.writeBool(true);
  p.writeFieldEnd();
  p.writeFieldBegin('tags', thrift.Thrift.Type.LIST, 20);
  p.writeListBegin(thrift.Thrift.Type.I32, 16);
  for (let i = 0; i < 16; i++) p.writeI32(i * 1000 - 3);
  p.writeListEnd();
  p.writeFieldEnd();
  p.writeFieldBegin('m', thrift.Thrift.Type.MAP, 4);
  p.writeMapBegin(thrift.Thrift.Type.STRING, thrift.Thrift.Type.DOUBLE, 1);
  p.writeString('pi');
  p.writeDouble(2.5);
  p.writeMapEnd();
  p.writeFieldEnd();
  p.writeFieldBegin('small', thrift.Thrift.Type.I16, 5);
  p.writeI16(-300);
  p.writeFieldEnd();
  p.writeFieldStop();
  p.writeStructEnd();
  p.writeMessageEnd();
  transport.flush();
  return new Uint8Array(out!);
}

function ourEncode(protocol: ProtocolName): Uint8Array {
  const w = createWriter(protocol);
  w.writeMessageBegin('getUser', MessageType.CALL, 77);
  w.writeStructBegin();
  w.writeFieldBegin(TType.I64, 1);
  w.writeI64(-5n);
  w.writeFieldBegin(TType.STRING, 2);
  w.writeString('åsa');
  w.writeFieldBegin(TType.BOOL, 3);
  w.writeBool(true);
  w.writeFieldBegin(TType.LIST, 20);
  w.writeListBegin(TType.I32, 16);
  for (let i = 0; i < 16; i++) w.writeI32(i * 1000 - 3);
  w.writeFieldBegin(TType.MAP, 4);
  w.writeMapBegin(TType.STRING, TType.DOUBLE, 1);
  w.writeString('pi');
  w.writeDouble(2.5);
  w.writeFieldBegin(TType.I16, 5);
  w.writeI16(-300);
  w.writeFieldStop();
  w.writeStructEnd();
  return w.finishCopy();
}

describe.each(['binary', 'compact'] as const)('%s bytes match npm thrift', (protocol) => {
  it('encodes the same bytes', () => {
    expect(ourEncode(protocol)).toEqual(npmEncode(protocol));
  });

  it('decodes npm thrift output', () => {
    const r = createReader(protocol).reset(npmEncode(protocol));
    expect(r.readMessageBegin()).toEqual({ name: 'getUser', type: MessageType.CALL, seqId: 77 });
    const s = readStruct(r);
    expect(s.fields.map((f) => f.value)).toEqual([
      -5n,
      'åsa',
      true,
      { kind: 'list', elemType: TType.I32, items: Array.from({ length: 16 }, (_, i) => i * 1000 - 3) },
      { kind: 'map', keyType: TType.STRING, valueType: TType.DOUBLE, entries: [['pi', 2.5]] },
      -300,
    ]);
  });
});
