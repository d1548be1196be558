// Should `Service.call` be allowed to answer synchronously (`Res | Promise<Res>`) or always
// return a Promise? Measures a chain of 4 layers over a service that answers at once, both ways,
// including what the consumer pays to handle both (an `instanceof Promise` check before awaiting).
// Two layer shapes: pass-through (a layer returns its inner answer as is, like Either or a slot)
// and post-processing (a layer maps the response, like an access log or a header rewrite).
// Prints ns per call and bytes allocated per call (heap growth between forced GCs, with a young
// generation large enough that no scavenge runs inside a batch).
// Run: pnpm --filter @loch/service-async bench:sync
import { performance } from 'node:perf_hooks';

interface Res {
  status: number;
}
const RES: Res = { status: 200 };

type PromiseCall = (req: number) => Promise<Res>;
type MaybeCall = (req: number) => Res | Promise<Res>;

// --- always a Promise -------------------------------------------------------------------------
class PromiseLeaf {
  call: PromiseCall = () => Promise.resolve(RES);
}
class PromisePass {
  constructor(readonly inner: { call: PromiseCall }) {}
  call: PromiseCall = (req) => this.inner.call(req);
}
function mapRes(res: Res): Res {
  res.status |= 0;
  return res;
}
class PromiseMap {
  constructor(readonly inner: { call: PromiseCall }) {}
  call: PromiseCall = (req) => this.inner.call(req).then(mapRes);
}

// --- value or Promise -------------------------------------------------------------------------
class MaybeLeaf {
  call: MaybeCall = () => RES;
}
class MaybePass {
  constructor(readonly inner: { call: MaybeCall }) {}
  call: MaybeCall = (req) => this.inner.call(req);
}
class MaybeMap {
  constructor(readonly inner: { call: MaybeCall }) {}
  call: MaybeCall = (req) => {
    const out = this.inner.call(req);
    return out instanceof Promise ? out.then(mapRes) : mapRes(out);
  };
}

const promisePass = new PromisePass(new PromisePass(new PromisePass(new PromisePass(new PromiseLeaf()))));
const promiseMap = new PromiseMap(new PromiseMap(new PromiseMap(new PromiseMap(new PromiseLeaf()))));
const maybePass = new MaybePass(new MaybePass(new MaybePass(new MaybePass(new MaybeLeaf()))));
const maybeMap = new MaybeMap(new MaybeMap(new MaybeMap(new MaybeMap(new MaybeLeaf()))));

let sink = 0;

/** The consumer of an always-Promise chain: awaits every answer (as a server loop does). */
async function runPromise(s: { call: PromiseCall }, n: number): Promise<void> {
  for (let i = 0; i < n; i++) sink += (await s.call(i)).status;
}

/** The consumer of a maybe chain: awaits only when the answer is a Promise. */
async function runMaybe(s: { call: MaybeCall }, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const out = s.call(i);
    sink += (out instanceof Promise ? await out : out).status;
  }
}

/** The same maybe chain when the leaf answers later (a forwarded request): the union's slow path. */
class MaybeAsyncLeaf {
  call: MaybeCall = () => Promise.resolve(RES);
}
const maybeMapAsync = new MaybeMap(new MaybeMap(new MaybeMap(new MaybeMap(new MaybeAsyncLeaf()))));
const maybePassAsync = new MaybePass(new MaybePass(new MaybePass(new MaybePass(new MaybeAsyncLeaf()))));

const cases: [string, (n: number) => Promise<void>][] = [
  ['pass x4, always Promise', (n) => runPromise(promisePass, n)],
  ['pass x4, T or Promise (sync leaf)', (n) => runMaybe(maybePass, n)],
  ['pass x4, T or Promise (async leaf)', (n) => runMaybe(maybePassAsync, n)],
  ['map x4, always Promise', (n) => runPromise(promiseMap, n)],
  ['map x4, T or Promise (sync leaf)', (n) => runMaybe(maybeMap, n)],
  ['map x4, T or Promise (async leaf)', (n) => runMaybe(maybeMapAsync, n)],
];

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc (see package.json bench:sync)');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

const TIME_N = 1_000_000;
const ALLOC_N = 10_000;
const ROUNDS = 7;

for (const [, run] of cases) await run(TIME_N); // warm every shape before measuring any
console.log(`| case | ns/call (median of ${ROUNDS}) | min-max | bytes/call |`);
console.log('| --- | ---: | --- | ---: |');
for (const [name, run] of cases) {
  const ns: number[] = [];
  const bytes: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    await run(TIME_N);
    ns.push(((performance.now() - t0) * 1e6) / TIME_N);
    gc();
    const h0 = process.memoryUsage().heapUsed;
    await run(ALLOC_N);
    bytes.push((process.memoryUsage().heapUsed - h0) / ALLOC_N);
  }
  console.log(
    `| ${name} | ${median(ns).toFixed(1)} | ${Math.min(...ns).toFixed(1)}-${Math.max(...ns).toFixed(1)} | ${Math.max(0, Math.round(median(bytes)))} |`,
  );
}
if (sink === 0) console.log('');
