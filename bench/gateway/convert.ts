/**
 * The conversion alone, in process, for the small and the 10 KiB Item: JSON text -> Thrift
 * binary by (a) JSON.parse + @loch/gateway's IDL-compiled writer and (b) the streaming decoder
 * (streaming-decoder.ts), and Thrift -> JSON text by (c) @loch/gateway's compiled reader and
 * (d) a schema-less @loch/thrift readStruct tree + JSON.stringify. Prints ns per conversion
 * (median of 7 rounds). `gatewayRead` is (c) as GatewayRoute.answer runs it: a SpanBinaryReader
 * (strings copied from where they lie, no view each), the JSON kept as bytes and copied out
 * (finishCopy), no string made; (c) itself reads with a plain BinaryReader and returns a string.
 * Run: pnpm --filter @loch/bench bench:gateway-convert
 */
import { fileURLToPath } from 'node:url';
import { JsonText, JsonToThriftCompiler, loadIdl, type StructDef, ThriftToJsonCompiler } from '@loch/gateway';
import { BinaryReader, BinaryWriter, readStruct } from '@loch/thrift';
import { NativeJsonEmitter, NativeJsonEncoder } from '../../packages/gateway/src/codec/native-json.js';
// Not exported by @loch/gateway (GatewayRoute makes its own): the same module as the package's.
import { SpanBinaryReader } from '../../packages/gateway/src/codec/span-reader.js';
import { PAYLOADS } from './payloads.js';
import { decodeStreaming, StreamingDecoderCompiler } from './streaming-decoder.js';

const idl = loadIdl(fileURLToPath(new URL('./bench.thrift', import.meta.url)));
const args = idl.services.get('Bench')?.functions.get('echo')?.args as StructDef;
const item = idl.structs.get('Item') as StructDef;
const writeArgs = new JsonToThriftCompiler().struct(args);
const streaming = new StreamingDecoderCompiler().struct(args);
const readers = new ThriftToJsonCompiler();
const readItem = readers.struct(item);
const emitItem = readers.structEmitter(item);

function nsPer(fn: () => void, minMs = 300): number {
  const rounds: number[] = [];
  for (let r = 0; r < 7; r++) {
    let n = 0;
    const t0 = process.hrtime.bigint();
    let t = t0;
    while (t - t0 < BigInt(minMs) * 1_000_000n) {
      for (let i = 0; i < 100; i++) fn();
      n += 100;
      t = process.hrtime.bigint();
    }
    rounds.push(Number(t - t0) / n);
  }
  rounds.sort((a, b) => a - b);
  return rounds[3] as number;
}

export interface ConvertRow {
  readonly payload: string;
  readonly jsonBytes: number;
  readonly parseAndWrite: number;
  readonly nativeEncode: number;
  readonly streaming: number;
  readonly compiledRead: number;
  readonly gatewayRead: number;
  readonly nativeRead: number;
  readonly treeAndStringify: number;
}

export function measureConversion(): ConvertRow[] {
  const rows: ConvertRow[] = [];
  for (const p of PAYLOADS) {
    const text = p.body;
    const bytes = Buffer.from(text);
    const w = new BinaryWriter();
    // Same bytes both ways (the check that the two encoders agree).
    writeArgs(w.reset(), JSON.parse(text));
    const a = Buffer.from(w.finish());
    decodeStreaming(streaming, bytes, w.reset());
    if (!a.equals(Buffer.from(w.finish()))) throw new Error(`${p.name}: the two encoders disagree`);
    const parseAndWrite = nsPer(() => {
      writeArgs(w.reset(), JSON.parse(bytes.toString()));
    });
    // JSON text -> Thrift through @loch/native's encoder, as GatewayRoute runs it when the
    // addon loads and the body alone makes the args (NaN when it does not load).
    const encoder = NativeJsonEncoder.create(args, 'binary');
    let nativeEncode = Number.NaN;
    if (encoder !== undefined) {
      const encoded = new JsonText();
      if (!encoder.encode(bytes, encoded) || !a.equals(encoded.buf.subarray(0, encoded.pos)))
        throw new Error(`${p.name}: the native encoder disagrees`);
      nativeEncode = nsPer(() => {
        encoder.encode(bytes, encoded.reset());
      });
    }
    const streamed = nsPer(() => {
      decodeStreaming(streaming, bytes, w.reset());
    });
    // The Item's own encoding (field 1 of the args) for the read side.
    writeArgs(w.reset(), JSON.parse(text));
    const itemBytes = w.finishCopy().subarray(3);
    const r = new BinaryReader();
    const compiledRead = nsPer(() => {
      readItem(r.reset(itemBytes));
    });
    const span = new SpanBinaryReader();
    const out = new JsonText();
    emitItem(span.reset(itemBytes), out.reset());
    if (Buffer.from(out.finishCopy()).toString() !== readItem(r.reset(itemBytes)))
      throw new Error(`${p.name}: the two readers disagree`);
    const gatewayRead = nsPer(() => {
      emitItem(span.reset(itemBytes), out.reset());
      out.finishCopy();
    });
    // gatewayRead through @loch/native's converter, as GatewayRoute.answer runs it when the addon
    // loads (NaN when it does not).
    const native = NativeJsonEmitter.create({ kind: 'struct', def: item }, { protocol: 'binary' });
    let nativeRead = Number.NaN;
    if (native !== undefined) {
      const nativeOut = new JsonText();
      if (
        !native.emit(span.reset(itemBytes), nativeOut) ||
        !nativeOut.buf.subarray(0, nativeOut.pos).equals(out.buf.subarray(0, out.pos))
      )
        throw new Error(`${p.name}: the native reader disagrees`);
      nativeRead = nsPer(() => {
        native.emit(span.reset(itemBytes), nativeOut.reset());
        nativeOut.finishCopy();
      });
    }
    const treeAndStringify = nsPer(() => {
      JSON.stringify(readStruct(r.reset(itemBytes)), (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
    });
    rows.push({
      payload: p.name,
      jsonBytes: bytes.byteLength,
      parseAndWrite,
      nativeEncode,
      streaming: streamed,
      compiledRead,
      gatewayRead,
      nativeRead,
      treeAndStringify,
    });
  }
  return rows;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const row of measureConversion()) console.log(JSON.stringify(row));
}
