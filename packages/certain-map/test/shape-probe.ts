// Run by runtime.test.ts under `node --allow-natives-syntax`: prints whether contexts of one schema
// keep one V8 hidden class (map) through set/remove/take/fork and key writers, and whether their
// properties stay in fast mode. Not a test by itself.
import { defineContext } from '@loch/certain-map';

const haveSameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;
const hasFastProperties = new Function('a', 'return %HasFastProperties(a)') as (a: object) => boolean;

const implementation = process.argv[2] === 'record' ? 'record' : 'compiled';
const Ctx = defineContext<{ peer: string; requestId: number; user: object | undefined }>()(
  ['peer', 'requestId', 'user'],
  { implementation },
);
const empty = Ctx.empty();
const full = Ctx.empty().set('peer', 'p').set('requestId', 1).set('user', undefined);
const removed = Ctx.empty().set('requestId', 2).remove('requestId');
const [, taken] = Ctx.empty().set('peer', 'x').take('peer');
const forked = full.fork().set('user', {});
const fromOf = Ctx.of({ requestId: 3 });
// A subset context's fork is a whole context: the same map as the definition's own.
const fromSubset = Ctx.subset(['peer']).empty().set('peer', 'c').fork().set('requestId', 4);
// A key writer (Ctx.writer) stores the same field the method does.
const written = Ctx.writer('requestId').set(Ctx.writer('peer').set(Ctx.empty(), 'w'), 5);
const all = [full, removed, taken, forked, fromOf, fromSubset, written];
// The compiled implementation stores the slots on the context itself, so its map is the one that
// matters. (The record implementation keeps them in a private record not reachable from here.)
console.log(
  JSON.stringify({
    implementation: Ctx.implementation,
    sameMap: all.every((ctx) => haveSameMap(empty, ctx)),
    fast: [empty, ...all].every((ctx) => hasFastProperties(ctx)),
    // control: the intrinsic does tell different shapes apart
    control: haveSameMap({ a: 1 }, { b: 1 }),
  }),
);
