// Who points to nodes matching type:name? Usage: node retainers.js file type name [minCount]
const s = JSON.parse(require('node:fs').readFileSync(process.argv[2], 'utf8'));
const [, , , wantT, wantN, minText] = process.argv;
const min = Number(minText ?? 1000);
const M = s.snapshot.meta,
  nf = M.node_fields,
  w = nf.length,
  ef = M.edge_fields,
  ew = ef.length,
  T = M.node_types[0],
  ET = M.edge_types[0];
const N = s.nodes,
  E = s.edges,
  S = s.strings;
const m = new Map();
let e = 0;
const toIdx = ef.indexOf('to_node'),
  nameIdx = ef.indexOf('name_or_index'),
  typeIdx = ef.indexOf('type'),
  ecIdx = nf.indexOf('edge_count');
const label = (i) => `${T[N[i]]}:${S[N[i + 1]].slice(0, 40)}`;
for (let i = 0; i < N.length; i += w) {
  const ec = N[i + ecIdx];
  for (let k = 0; k < ec; k++, e += ew) {
    const to = E[e + toIdx];
    if (T[N[to]] !== wantT) continue;
    if (wantN !== '*' && S[N[to + 1]] !== wantN) continue;
    const et = ET[E[e + typeIdx]];
    const en = et === 'element' || et === 'hidden' ? '#' : S[E[e + nameIdx]];
    if (et === 'weak') continue;
    const key = `${label(i)} --${et}:${en}--> ${label(to)}`;
    m.set(key, (m.get(key) || 0) + 1);
  }
}
console.log(
  [...m]
    .filter((x) => x[1] >= min)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 30)
    .map((x) => `${x[1]} ${x[0]}`)
    .join('\n'),
);
