// What the runtime's per-slot arrays leave for the GC while a thread fills up to N connections
// (issue 18): the real Ring (op slots, over a fake binding: no kernel) and FdRegistry
// (descriptors 0..N-1), each filled to N held at once, as N idle connections' armed receives do.
// Prints external and heap bytes per slot before a full GC (what a busy worker that runs none
// carries) and after it (what the arrays hold); the held targets are made before the first
// reading, so neither counts them. grow-garbage.cjs replays the step growth rule of before; this
// one measures whatever the tree's ring.ts and fd-registry.ts do (run it in another tree to
// compare).
// Usage (from bench/): node --expose-gc --conditions=@loch/source --import tsx idle-memory/grow-garbage-runtime.ts [N=19300]
import { FdRegistry } from '../../packages/uring-runtime/src/uring/fd-registry.js';
import { Ring } from '../../packages/uring-runtime/src/uring/ring.js';

const N = Number(process.argv[2] ?? 19300);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
const binding = {
  init: () => ({ features: 0, flags: 0, bufferRing: false }),
  submit: () => 0,
  destroy: () => {},
} as unknown as ConstructorParameters<typeof Ring>[0];
const ring = new Ring(binding, {
  entries: 64,
  bufferCount: 4,
  bufferSize: 64,
  sqpoll: false,
  flushMode: 'microtask',
  plainCount: 0,
});
const registry = new FdRegistry<{ fd: number; onCompletion(): void }>();
const targets = Array.from({ length: N }, (_, fd) => ({ fd, onCompletion() {} }));
/** Full GCs with a pause after each, so the ArrayBuffer sweeper's frees are counted too. */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc!();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
await settle();
const m0 = process.memoryUsage();
for (let i = 0; i < N; i++) {
  const t = targets[i]!;
  ring.alloc(t);
  registry.add(t);
}
const m1 = process.memoryUsage();
await settle();
const m2 = process.memoryUsage();
const per = (a: number, b: number): string => ((b - a) / N).toFixed(1);
console.log(
  `N ${N}: before GC: external ${per(m0.external, m1.external)} heapUsed ${per(m0.heapUsed, m1.heapUsed)} B/slot; ` +
    `after GC: external ${per(m0.external, m2.external)} heapUsed ${per(m0.heapUsed, m2.heapUsed)} B/slot ` +
    `(ring op slots and registry, held targets left out; registry ${registry.size})`,
);
