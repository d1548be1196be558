/**
 * The parse benchmark measured in CPU time (process.cpuUsage, best of 8 rounds) rather than wall
 * time, for shared machines where vitest bench's hz swings with the neighbours' load. Same
 * messages as parse.bench.ts. Run: tsx --conditions=@loch/source bench/parse-cpu.ts
 */
import { DecodeEvent, RequestDecoder } from '../src/h1/decoder.js';
import { llparser } from '../test/llhttp.js';
import { GET, POST } from './messages.js';

function ours(input: Buffer): () => void {
  const d = new RequestDecoder();
  let sink = 0;
  return () => {
    d.feed(input);
    for (;;) {
      const ev = d.poll();
      if (ev === DecodeEvent.NeedMore) break;
      if (ev === DecodeEvent.Head) {
        const m = d.message!;
        sink += m.method.length + m.target.length + (m.headers.get('host') ?? '').length;
      } else if (ev === DecodeEvent.Data) sink += d.data.length;
    }
    if (sink < 0) throw new Error('unreachable');
  };
}

for (const [label, msg] of [
  ['typical GET (~500 B, 11 fields)', GET],
  ['small POST (27 B body)', POST],
] as const) {
  const cases: [string, () => void][] = [
    ['loch RequestDecoder', ours(msg)],
    [
      'llhttp',
      (
        (p) => () =>
          p.execute(msg)
      )(llparser('request')),
    ],
  ];
  const best = new Map<string, number>();
  for (let round = 0; round < 8; round++) {
    for (const [name, fn] of cases) {
      const n = 200_000;
      const before = process.cpuUsage();
      for (let i = 0; i < n; i++) fn();
      const used = process.cpuUsage(before);
      best.set(
        name,
        Math.min(best.get(name) ?? Number.POSITIVE_INFINITY, ((used.user + used.system) * 1000) / n),
      );
    }
  }
  console.log(`${label}: ${[...best].map(([k, v]) => `${k} ${v.toFixed(0)} ns`).join(', ')}`);
}
