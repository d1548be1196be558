// Does ServiceSlot.service({ forward: ['dispatch'] }) allocate per forwarded call (the rest
// arguments of its `(...args) => get()[name](...args)`)? Counted without sampling or timing: the
// garbage collections during N forwarded dispatch() calls, after a warm-up that optimizes them.
// A per-call allocation scales with N (the `control` mode, one small object per call, shows how
// fast); none leaves a few collections whatever N (from the process, not the calls).
// Run: pnpm --filter @loch/service-async bench:forward [forward|hand|control] [N]
// (`hand`: the wrapper loch's thrift servers wrote by hand before, for comparison.)
import { PerformanceObserver } from 'node:perf_hooks';
import { ServiceSlot } from '../src/index.js';

class Svc {
  n = 0;
  call(r: number): number {
    return r;
  }
  dispatch(r: number, answer: { got: number }): void {
    answer.got = r + this.n++;
  }
}

const mode = process.argv[2] ?? 'forward';
const N = Number(process.argv[3] ?? 20_000_000);
const slot = new ServiceSlot<Svc>({ initial: new Svc() });
const forwarder = slot.service({ forward: ['dispatch'] });
const hand = { dispatch: (r: number, a: { got: number }) => slot.get().dispatch(r, a) };
let sink: unknown;
const answer = { got: 0 };
const run = (n: number): void => {
  if (mode === 'forward') for (let i = 0; i < n; i++) forwarder.dispatch(i, answer);
  else if (mode === 'hand') for (let i = 0; i < n; i++) hand.dispatch(i, answer);
  else for (let i = 0; i < n; i++) sink = { i };
};
run(200_000);
run(N); // warmed and optimized as it runs hot
let collections = 0;
const observer = new PerformanceObserver((list) => {
  collections += list.getEntries().length;
});
observer.observe({ entryTypes: ['gc'] });
run(N);
setTimeout(() => {
  observer.disconnect();
  console.log(`${mode}: ${N} calls, ${collections} garbage collections`, sink === undefined ? '' : '');
}, 100);
