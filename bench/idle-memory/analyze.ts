/**
 * Heap snapshot attribution: count and self size by node type and constructor name, per
 * connection (rows of about one object per connection or more, and any row of at least 1 B per
 * connection). With a baseline snapshot (same process, no idle connections) it reports the
 * difference, which is what the connections hold. Not a retainer analysis (retainers.cjs).
 * Usage: node --import tsx analyze.ts <file.heapsnapshot> <connections> [top=30] [baseline.heapsnapshot]
 */
import { readFileSync } from 'node:fs';

const [file, connText, topText, baseFile] = process.argv.slice(2);
const conns = Number(connText ?? 1);

type Agg = Map<string, { n: number; size: number }>;
function aggregate(path: string): Agg {
  const snap = JSON.parse(readFileSync(path, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const f = snap.snapshot.meta.node_fields;
  const w = f.length;
  const iType = f.indexOf('type');
  const iName = f.indexOf('name');
  const iSize = f.indexOf('self_size');
  const types = snap.snapshot.meta.node_types[0];
  const agg: Agg = new Map();
  for (let i = 0; i < snap.nodes.length; i += w) {
    const t = types[snap.nodes[i + iType]!]!;
    let name = snap.strings[snap.nodes[i + iName]!]!;
    if (t === 'string' || t === 'concatenated string' || t === 'sliced string') name = '';
    if (name.length > 60) name = name.slice(0, 60);
    const key = `${t}:${name}`;
    const a = agg.get(key) ?? { n: 0, size: 0 };
    a.n++;
    a.size += snap.nodes[i + iSize]!;
    agg.set(key, a);
  }
  return agg;
}

const agg = aggregate(file!);
if (baseFile !== undefined) {
  for (const [k, b] of aggregate(baseFile)) {
    const a = agg.get(k) ?? { n: 0, size: 0 };
    agg.set(k, { n: a.n - b.n, size: a.size - b.size });
  }
}
// Rows of about one object per connection or more, and the few large ones that grow with them
// (arrays by index: the ring's per-slot arrays, the descriptor registry) from 1 B/conn.
const rows = [...agg]
  .filter(([, a]) => a.n >= conns * 0.9 || a.size >= conns)
  .sort((x, y) => y[1].size - x[1].size);
let total = 0;
for (const [, a] of agg) if (a.size > 0) total += a.size;
for (const [k, a] of rows.slice(0, Number(topText ?? 30))) {
  console.log(
    `${(a.size / conns).toFixed(0).padStart(6)} B  ${(a.n / conns).toFixed(2).padStart(6)}/conn  ${k}`,
  );
}
console.log(`all growth: ${(total / conns).toFixed(0)} B/conn`);
