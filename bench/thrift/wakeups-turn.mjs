// What one loop turn of the ring costs apart from the work it carries (issues 15 and 18): the
// addon's ring alone, one NOP in flight; its completion callback submits the next NOP and returns.
// Each turn is then libuv's poll (the ring fd is readable: the NOP completed in its submit), the
// addon's OnPoll and its call into JavaScript (node's callback scope), the submit, and node's
// per-iteration check (CheckImmediate): the machinery a wakeup turn of the relay pays, without
// the sleep. Run it under callgrind twice (bench/thrift/wakeups-turn.sh) and the difference over
// the difference of turns is instructions per turn, JIT warm-up and startup cancelled out.
// Not a timing (the turns never sleep) and not the runtime's JavaScript (ring.ts).
//
// Usage: node bench/thrift/wakeups-turn.mjs <native/index.js path> <turns> [warm-up turns]
import { pathToFileURL } from 'node:url';

const [indexPath, turnsArg, warmArg] = process.argv.slice(2);
const { loadNative, Op } = await import(pathToFileURL(indexPath).href);
const { binding, error } = loadNative();
if (binding === undefined) throw new Error(`no addon: ${error}`);
const total = Number(warmArg ?? 20000) + Number(turnsArg);
const sq = new Int32Array(8 * 16);
const cq = new Int32Array(3 * 16);
// submitShared's arguments (as ring.ts passes them where the addon has it): [n, drain, bufs kind].
const submitArgs = new Int32Array(3);
let shared = false;
let turns = 0;
let callbacks = 0;
let done;
const finished = new Promise((resolve) => {
  done = resolve;
});
const submitNop = () => {
  sq[0] = Op.NOP;
  sq[1] = -1;
  sq[2] = 1;
  sq[3] = 1;
  sq[4] = 0;
  sq[5] = -1;
  sq[6] = 0;
  sq[7] = 0;
  if (shared) {
    submitArgs[0] = 1;
    submitArgs[1] = 0;
    submitArgs[2] = 0;
    binding.submitShared(undefined);
  } else {
    binding.submit(1, undefined, false);
  }
};
const info = binding.init(
  sq,
  cq,
  (n) => {
    callbacks++;
    turns += n;
    if (turns < total) submitNop();
    else done();
  },
  { entries: 16, submitArgs },
);
shared = info.submitArgs === true && typeof binding.submitShared === 'function';
submitNop();
await finished;
binding.destroy();
console.log(JSON.stringify({ turns, callbacks, submitShared: shared }));
