// What one read of a typed array's `length`, `byteLength`, `byteOffset` or `buffer` costs in
// optimized code on this node (issue 15, readings-2026-12-06.md): a warmed loop reads PROP of 64
// Uint8Array views of one ArrayBuffer, through a function of its own so the site sees only that
// property. MIX=buffer makes every other view a Node Buffer, MIX=empty every fourth an empty
// Uint8Array (on-heap): receivers of other maps at the same site. Not a test: a timing to read.
//
// Usage: node bench/thrift/typed-array-getters.cjs [PROP=byteLength] [MIX=none|buffer|empty]
const prop = process.argv[2] ?? 'byteLength';
const mix = process.argv[3] ?? 'none';
const ab = new ArrayBuffer(1 << 20);
const views = [];
for (let i = 0; i < 64; i++) views.push(new Uint8Array(ab, i * 1024, 1000));
if (mix === 'buffer') for (let i = 0; i < 64; i += 2) views[i] = Buffer.from(ab, i * 1024, 1000);
if (mix === 'empty') for (let i = 0; i < 64; i += 4) views[i] = new Uint8Array(0);
const read = new Function('a', `return a.${prop} === undefined ? 0 : 1;`);
function loop(n) {
  let s = 0;
  for (let k = 0; k < n; k++) s += read(views[k & 63]);
  return s;
}
loop(1e6);
loop(1e6);
const n = 2e7;
const t = process.hrtime.bigint();
loop(n);
console.log(`${prop} (${mix}): ${(Number(process.hrtime.bigint() - t) / n).toFixed(2)} ns per read`);
