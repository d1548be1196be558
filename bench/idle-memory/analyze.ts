/**
 * Heap snapshot attribution: counts and self sizes by node type and name, for finding what
 * each idle connection holds (divide by the connection count). Not a retainer analysis.
 * Usage: node --import tsx analyze.ts <file.heapsnapshot> <connections> [top=30]
 */
import { readFileSync } from 'node:fs';

const [file, connText, topText] = process.argv.slice(2);
const conns = Number(connText ?? 1);
const snap = JSON.parse(readFileSync(file!, 'utf8')) as {
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
const agg = new Map<string, { n: number; size: number }>();
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
const rows = [...agg].filter(([, a]) => a.n >= conns * 0.9).sort((x, y) => y[1].size - x[1].size);
let total = 0;
for (const [k, a] of rows.slice(0, Number(topText ?? 30))) {
  total += a.size;
  console.log(
    `${(a.size / conns).toFixed(0).padStart(6)} B  ${(a.n / conns).toFixed(2).padStart(6)}/conn  ${k}`,
  );
}
console.log(`top rows: ${(total / conns).toFixed(0)} B/conn`);
