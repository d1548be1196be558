/**
 * What a process-wide retry budget costs on the request path: each request of a route with
 * `retries` counts itself in flight and out again (apps/proxy/src/health/retry-budget.ts). Per
 * worker that was a plain field's ++ and --; shared by the workers it is an `Atomics.add` and an
 * `Atomics.sub` on a SharedArrayBuffer word that every worker writes, so the cache line moves
 * between cores when two workers count at once. Fixed iteration counts, in-process, worker
 * threads on the machine's cores; prints ns per request (one in + one out) for:
 *   plain         one thread, a plain object field (the per-worker budget)
 *   atomic        one thread, Atomics on a shared word (no other writer)
 *   atomic x2     two threads on the same word at once (the worst case: every request of both
 *                 workers contends; real requests are microseconds apart)
 *   atomic x2 sep two threads, each its own word on its own cache line (no sharing)
 *   mirror x2     two threads, each keeping its count in a field and storing it (a plain store)
 *                 to its own word of a shared buffer, 2 KiB apart: what loch does (each worker
 *                 writes only its own block; a retry decision sums the workers' words)
 *
 * Usage: tsx bench/retry-budget/atomics.ts [--iterations 20000000] [--rounds 5]
 */
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';

interface Job {
  readonly kind: 'plain' | 'atomic' | 'mirror';
  readonly buffer: SharedArrayBuffer;
  readonly word: number;
  readonly iterations: number;
  /** Start line: every thread spins until it reads 1, so they run together. */
  readonly gate: SharedArrayBuffer;
}

/**
 * The thread's loop, as plain JavaScript (a worker started from a .ts file under tsx would not
 * get tsx's loader): spins until the gate reads 1 so the threads run together, then counts
 * `iterations` requests in and out and posts its nanoseconds.
 */
const THREAD = `
const { parentPort, workerData: job } = require('node:worker_threads');
function plain(counter, n) {
  for (let i = 0; i < n; i++) {
    counter.active++;
    if (counter.active < 0) throw new Error('unreachable');
    counter.active--;
  }
}
function mirror(words, at, counter, n) {
  for (let i = 0; i < n; i++) {
    words[at] = ++counter.active;
    if (counter.active < 0) throw new Error('unreachable');
    words[at] = --counter.active;
  }
}
function atomic(words, at, n) {
  for (let i = 0; i < n; i++) {
    if (Atomics.add(words, at, 1) < 0) throw new Error('unreachable');
    Atomics.sub(words, at, 1);
  }
}
const words = new Int32Array(job.buffer);
const gate = new Int32Array(job.gate);
const counter = { active: 0 };
// Warm both loops up (optimized before the clock runs), then wait at the gate.
plain(counter, 100000);
atomic(new Int32Array(new SharedArrayBuffer(64)), 0, 100000);
mirror(new Int32Array(new SharedArrayBuffer(64)), 0, { active: 0 }, 100000);
while (Atomics.load(gate, 0) === 0);
const start = process.hrtime.bigint();
if (job.kind === 'plain') plain(counter, job.iterations);
else if (job.kind === 'mirror') mirror(words, job.word, counter, job.iterations);
else atomic(words, job.word, job.iterations);
parentPort.postMessage(Number(process.hrtime.bigint() - start));
`;

{
  const { values } = parseArgs({
    options: {
      iterations: { type: 'string', default: '20000000' },
      rounds: { type: 'string', default: '5' },
    },
  });
  const iterations = Number(values.iterations);
  const rounds = Number(values.rounds);
  const inThread = (job: Job): Promise<number> =>
    new Promise((resolve, reject) => {
      const w = new Worker(THREAD, { eval: true, workerData: job });
      w.once('message', resolve);
      w.once('error', reject);
    });
  /** ns per iteration of each of `threads` jobs run together (the slowest thread's). */
  const together = async (kind: Job['kind'], words: readonly number[]): Promise<number> => {
    const buffer = new SharedArrayBuffer(4096);
    const gate = new SharedArrayBuffer(4);
    const runs = words.map((word) => inThread({ kind, buffer, word, iterations, gate }));
    // Let the threads load and spin at the gate before opening it.
    await new Promise((r) => setTimeout(r, 500));
    Atomics.store(new Int32Array(gate), 0, 1);
    const ns = await Promise.all(runs);
    if (new Int32Array(buffer).some((v) => v !== 0)) throw new Error('counts did not come back to 0');
    return Math.max(...ns) / iterations;
  };
  const cases: [string, () => Promise<number>][] = [
    ['plain', () => together('plain', [0])],
    ['atomic', () => together('atomic', [0])],
    ['atomic x2', () => together('atomic', [0, 0])],
    ['atomic x2 sep', () => together('atomic', [0, 32])],
    ['mirror x2', () => together('mirror', [0, 512])],
  ];
  console.log(
    `${iterations} requests per thread, ${rounds} rounds; ns per request (in + out), median [min, max]`,
  );
  for (const [name, measure] of cases) {
    const ns: number[] = [];
    for (let r = 0; r < rounds; r++) ns.push(await measure());
    ns.sort((a, b) => a - b);
    console.log(
      `${name.padEnd(14)} ${ns[rounds >> 1]!.toFixed(2)} [${ns[0]!.toFixed(2)}, ${ns[rounds - 1]!.toFixed(2)}]`,
    );
  }
}
