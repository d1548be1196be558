// What the ring's and the descriptor registry's step growth leaves for the GC at N slots (issue 18).
// Usage: node --expose-gc bench/idle-memory/grow-garbage.cjs [N=19300]; replays ring.ts grow() and FdRegistry.add.
const N = Number(process.argv[2] ?? 19300);
const STEP = 1024;
let gens = new Uint32Array(STEP),
  states = new Uint8Array(STEP),
  free = new Int32Array(STEP);
const targets = [],
  pinned = [],
  fds = [];
targets.length = STEP;
pinned.length = STEP;
global.gc();
global.gc();
const m0 = process.memoryUsage();
const objs = [];
for (let i = 0; i < N; i++) {
  if (i >= gens.length) {
    const size = gens.length + Math.max(STEP, gens.length >> 3);
    const g = new Uint32Array(size);
    g.set(gens);
    gens = g;
    const s = new Uint8Array(size);
    s.set(states);
    states = s;
    const f = new Int32Array(size);
    free = f;
    targets.length = size;
    pinned.length = size;
  }
  if (i >= fds.length) fds.length = Math.max(i + 1, fds.length + Math.max(STEP, fds.length >> 3));
  const o = { i };
  objs.push(o);
  targets[i] = o;
  pinned[i] = o;
  fds[i] = o;
  gens[i] = i;
  free[i] = i;
  states[i] = 1;
}
const m1 = process.memoryUsage();
global.gc();
global.gc();
const m2 = process.memoryUsage();
const per = (a, b) => ((b - a) / N).toFixed(1);
console.log(
  `N ${N}: slots ${gens.length}; before GC: external ${per(m0.external, m1.external)} heapUsed ${per(m0.heapUsed, m1.heapUsed)} B/slot; after GC: external ${per(m0.external, m2.external)} heapUsed ${per(m0.heapUsed, m2.heapUsed)}; objs(16B+array) included`,
);
