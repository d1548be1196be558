/**
 * Before/after of @loch/thrift's hot paths in one process: DIR holds another @loch/thrift
 * source tree (DIR/src/index.ts; inside the checkout so its imports resolve, e.g. `git archive
 * <rev> packages/thrift/src | tar -x --strip-components=2 -C packages/thrift/.ab-base`); its
 * code (A) and this checkout's (B) run the same fixed-count loops in alternating rounds, and
 * the median of the per-round B/A CPU ratios is printed, which a loaded machine moves much less
 * than two separate runs. The loops are what generated code and the proxy do per call:
 * write a small struct and a ~10 KiB one with direct writer calls (binary and compact), read
 * them back field by field (strings decoded; `fresh`: each call from a different view into
 * one ArrayBuffer, as a server reads calls out of its receive buffers), and rewrite a message's
 * seq id.
 *
 * Run: pnpm --filter @loch/thrift exec tsx --conditions=@loch/source bench/ab.ts DIR
 *        [--rounds 7] [--scale 1]
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as current from '../src/index.js';

type Thrift = typeof current;
type Writer = current.ProtocolWriter;
type Reader = current.ProtocolReader;

const { values: flags, positionals } = parseArgs({
  options: { rounds: { type: 'string', default: '7' }, scale: { type: 'string', default: '1' } },
  allowPositionals: true,
});
if (positionals[0] === undefined) throw new Error('usage: ab.ts DIR [--rounds R] [--scale S]');
const base: Thrift = await import(pathToFileURL(resolve(positionals[0], 'src/index.ts')).href);
const ROUNDS = Number(flags.rounds);
const SCALE = Number(flags.scale);
const { TType, MessageType } = current;

interface Item {
  id: number;
  name: string;
  ts: bigint;
  score: number;
  tags: string[];
}

const items: Item[] = Array.from({ length: 128 }, (_, i) => ({
  id: i,
  name: `item-${i}-name`,
  ts: 1_700_000_000_000n + BigInt(i),
  score: i / 7,
  tags: ['alpha', 'beta', `t${i}`],
}));

function writeItem(w: Writer, it: Item): void {
  w.writeFieldBegin(TType.I32, 1);
  w.writeI32(it.id);
  w.writeFieldBegin(TType.STRING, 2);
  w.writeString(it.name);
  w.writeFieldBegin(TType.I64, 3);
  w.writeI64(it.ts);
  w.writeFieldBegin(TType.DOUBLE, 4);
  w.writeDouble(it.score);
  w.writeFieldBegin(TType.LIST, 5);
  w.writeListBegin(TType.STRING, it.tags.length);
  for (const t of it.tags) w.writeString(t);
  w.writeFieldStop();
}

function writeCall(w: Writer, list: readonly Item[], seqId: number): void {
  w.reset();
  w.writeMessageBegin('echo', MessageType.CALL, seqId);
  w.writeFieldBegin(TType.LIST, 1);
  w.writeListBegin(TType.STRUCT, list.length);
  for (const it of list) writeItem(w, it);
  w.writeFieldStop();
}

function readCall(r: Reader): number {
  r.readMessageBegin();
  let sum = 0;
  for (;;) {
    const t = r.readFieldBegin();
    if (t === TType.STOP) break;
    const n = r.readListBegin();
    for (let i = 0; i < n; i++) {
      for (;;) {
        const ft = r.readFieldBegin();
        if (ft === TType.STOP) break;
        switch (r.fieldId) {
          case 1:
            sum += r.readI32();
            break;
          case 2:
            sum += r.readString().length;
            break;
          case 3:
            r.readI64Split();
            break;
          case 4:
            sum += r.readDouble();
            break;
          case 5: {
            const m = r.readListBegin();
            for (let j = 0; j < m; j++) sum += r.readString().length;
            r.readListEnd();
            break;
          }
          default:
            r.skip(ft);
        }
      }
    }
    r.readListEnd();
  }
  return sum;
}

interface Case {
  name: string;
  iterations: number;
  run(t: Thrift, n: number): number;
}

function writeCase(protocol: current.ProtocolName, list: readonly Item[], iterations: number): Case {
  return {
    name: `write ${protocol} ${list.length === 1 ? 'small' : 'large'}`,
    iterations,
    run(t, n) {
      const w = t.createWriter(protocol);
      let bytes = 0;
      for (let i = 0; i < n; i++) {
        writeCall(w, list, i);
        bytes += w.pos;
      }
      return bytes;
    },
  };
}

/** Reads one call, or (`fresh`) a different buffer each time, as a server or proxy does. */
function readCase(
  protocol: current.ProtocolName,
  list: readonly Item[],
  iterations: number,
  fresh = false,
): Case {
  const w = current.createWriter(protocol);
  writeCall(w, list, 1);
  // Fresh: 64 copies side by side in one ArrayBuffer, as calls lie in a runtime's receive buffers.
  const one = w.finishCopy();
  const all = new Uint8Array(one.byteLength * 64);
  const copies = Array.from({ length: fresh ? 64 : 1 }, (_, i) => {
    all.set(one, i * one.byteLength);
    return fresh ? all.subarray(i * one.byteLength, (i + 1) * one.byteLength) : one;
  });
  return {
    name: `read ${protocol} ${list.length === 1 ? 'small' : 'large'}${fresh ? ' fresh' : ''}`,
    iterations,
    run(t, n) {
      const r = t.createReader(protocol);
      let sum = 0;
      for (let i = 0; i < n; i++) {
        r.reset(copies[i & (copies.length - 1)]!);
        sum += readCall(r);
      }
      return sum;
    },
  };
}

function seqIdCase(protocol: current.ProtocolName, iterations: number): Case {
  const w = current.createWriter(protocol);
  writeCall(w, items.slice(0, 1), 1);
  const bytes = w.finishCopy();
  return {
    name: `rewriteSeqId ${protocol}`,
    iterations,
    run(t, n) {
      let sum = 0;
      // Ids below 64 keep compact's varint one byte long: rewritten in place, as a proxy's
      // remapped ids mostly are.
      for (let i = 0; i < n; i++) sum += t.rewriteSeqId(protocol, bytes, i & 63).byteLength;
      return sum;
    },
  };
}

const small = items.slice(0, 1);
const cases: Case[] = [
  writeCase('binary', small, 400_000),
  writeCase('binary', items, 8_000),
  writeCase('compact', small, 400_000),
  writeCase('compact', items, 8_000),
  readCase('binary', small, 400_000),
  readCase('binary', items, 8_000),
  readCase('compact', small, 400_000),
  readCase('compact', items, 8_000),
  readCase('binary', small, 400_000, true),
  readCase('compact', small, 400_000, true),
  readCase('binary', items, 8_000, true),
  readCase('compact', items, 8_000, true),
  seqIdCase('binary', 4_000_000),
  seqIdCase('compact', 4_000_000),
];

function cpuNs(t: Thrift, c: Case, n: number): number {
  const start = process.cpuUsage();
  c.run(t, n);
  const used = process.cpuUsage(start);
  return ((used.user + used.system) * 1000) / n;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const w = current.createWriter('binary');
writeCall(w, items, 1);
console.log(`large call: ${w.pos} B binary; ${ROUNDS} rounds, A = ${positionals[0]}, B = this checkout`);
for (const c of cases) {
  const n = Math.max(1, Math.round(c.iterations * SCALE));
  c.run(base, n);
  c.run(current, n);
  const a: number[] = [];
  const b: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const first = r % 2 === 0;
    const x = first ? cpuNs(base, c, n) : 0;
    const y = cpuNs(current, c, n);
    const x2 = first ? x : cpuNs(base, c, n);
    a.push(x2);
    b.push(y);
    ratios.push(y / x2);
  }
  const f = (xs: number[]) => `${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)}`;
  console.log(
    `${c.name.padEnd(22)} A ${f(a).padStart(13)} ns  B ${f(b).padStart(13)} ns  B/A median ${median(ratios).toFixed(3)}`,
  );
}
