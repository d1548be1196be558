/**
 * runtime-memory: memory of @loch/uring-runtime per driver. (1) 10,000 idle connections, each
 * parked in a pending recv(): process memory per connection. (2) Many connect/echo/close cycles:
 * memory after each round, where a leak shows as steady growth. Writes
 * runtime-memory/results/runtime-memory.md and .json. Not a throughput benchmark (see echo/, l4-forward/).
 *
 * Usage (from bench/): pnpm exec tsx --conditions=@loch/source runtime-memory/run.ts
 *   [--idle 10000] [--rounds 20] [--per-round 2000] [--drivers uring,legacy]
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { createInterface, type Interface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const results = fileURLToPath(new URL('./results/', import.meta.url));

function flag(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? (process.argv[index + 1] ?? fallback) : fallback;
}
const idleCount = Number(flag('idle', '10000'));
const rounds = Number(flag('rounds', '20'));
const perRound = Number(flag('per-round', '2000'));
const drivers = flag('drivers', 'uring,legacy').split(',');

interface Memory {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  open: number;
}

/** A child process with line-oriented stdout. */
class Child {
  readonly process: ChildProcessByStdio<Writable, Readable, null>;
  readonly #lines: Interface;
  readonly #waiting: ((line: string) => void)[] = [];
  readonly #buffered: string[] = [];

  constructor(args: string[]) {
    this.process = spawn(process.execPath, args, { cwd: here, stdio: ['pipe', 'pipe', 'inherit'] });
    this.#lines = createInterface({ input: this.process.stdout });
    this.#lines.on('line', (line) => {
      const waiter = this.#waiting.shift();
      if (waiter) waiter(line);
      else this.#buffered.push(line);
    });
  }

  line(): Promise<string> {
    const ready = this.#buffered.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  async stop(): Promise<void> {
    this.process.stdin.end();
    if (this.process.exitCode === null) await new Promise((resolve) => this.process.once('exit', resolve));
  }
}

const tsx = ['--import', 'tsx', '--conditions=@loch/source'];

async function memory(server: Child): Promise<Memory> {
  server.process.stdin.write('mem\n');
  return JSON.parse(await server.line()) as Memory;
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 500));

interface DriverResult {
  driver: string;
  idle: {
    connections: number;
    baseline: Memory;
    loaded: Memory;
    rssPerConnection: number;
    jsPerConnection: number;
  };
  cycles: { round: number; connections: number; seconds: number; memory: Memory }[];
}

async function measure(driver: string): Promise<DriverResult> {
  const server = new Child(['--expose-gc', ...tsx, 'server.ts', driver]);
  const [, portText, actual] = (await server.line()).split(' ');
  if (actual !== driver) throw new Error(`asked for ${driver}, the server runs ${actual}`);
  const port = portText!;
  // Warm up: JIT, first connections, lazily created pools.
  const warm = new Child([...tsx, 'clients.ts', 'cycle', port, '1000']);
  await warm.line();
  await settle();
  const baseline = await memory(server);
  const idle = new Child([...tsx, 'clients.ts', 'idle', port, String(idleCount)]);
  const connections = Number((await idle.line()).split(' ')[1]);
  await settle();
  const loaded = await memory(server);
  await idle.stop();
  const js = (m: Memory) => m.heapUsed + m.external;
  const result: DriverResult = {
    driver,
    idle: {
      connections,
      baseline,
      loaded,
      rssPerConnection: (loaded.rss - baseline.rss) / connections,
      jsPerConnection: (js(loaded) - js(baseline)) / connections,
    },
    cycles: [],
  };
  for (let round = 1; round <= rounds; round++) {
    const began = performance.now();
    const cycle = new Child([...tsx, 'clients.ts', 'cycle', port, String(perRound)]);
    const done = Number((await cycle.line()).split(' ')[1]);
    const seconds = (performance.now() - began) / 1000;
    await settle();
    result.cycles.push({ round, connections: done, seconds, memory: await memory(server) });
  }
  await server.stop();
  return result;
}

const kib = (bytes: number) => (bytes / 1024).toFixed(0);
const load = () =>
  loadavg()
    .map((v) => v.toFixed(2))
    .join(' ');
const loadBefore = load();
const all: DriverResult[] = [];
for (const driver of drivers) {
  console.log(`measuring ${driver}...`);
  all.push(await measure(driver));
}
const loadAfter = load();
/** Rounds shown in the checkpoint table: the first, about ten spread evenly, and the last. */
const step = Math.max(1, Math.round(rounds / 10));
const shown = (round: number) => round === 1 || round % step === 0 || round === rounds;

const lines = [
  '# Runtime memory',
  '',
  `Generated by \`bench/runtime-memory/run.ts\` on ${new Date().toISOString()} (Node ${process.versions.node}).`,
  'Server: an echo server on @loch/uring-runtime, every connection parked in a pending `recv()`;',
  'client: plain node:net in a separate process. Memory is read in the server after two forced GCs.',
  'Kernel socket buffers are not part of the process and not counted.',
  '',
  `## ${idleCount.toLocaleString('en')} idle connections`,
  '',
  '| driver | connections | RSS before (KiB) | RSS idle (KiB) | RSS / connection (B) | JS heap+external / connection (B) |',
  '|---|---:|---:|---:|---:|---:|',
  ...all.map(
    (r) =>
      `| ${r.driver} | ${r.idle.connections} | ${kib(r.idle.baseline.rss)} | ${kib(r.idle.loaded.rss)} | ${r.idle.rssPerConnection.toFixed(0)} | ${r.idle.jsPerConnection.toFixed(0)} |`,
  ),
  '',
  `## ${rounds} rounds of ${perRound.toLocaleString('en')} connect/echo/close cycles`,
  '',
  '| driver | RSS after round 1 (KiB) | RSS after last (KiB) | heap after round 1 (KiB) | heap after last (KiB) | open streams after last |',
  '|---|---:|---:|---:|---:|---:|',
  ...all.map((r) => {
    const first = r.cycles[0]!.memory;
    const last = r.cycles[r.cycles.length - 1]!.memory;
    return `| ${r.driver} | ${kib(first.rss)} | ${kib(last.rss)} | ${kib(first.heapUsed)} | ${kib(last.heapUsed)} | ${last.open} |`;
  }),
  '',
  '### Checkpoints',
  '',
  '| driver | round | cycles so far | cycles/s (round) | RSS (KiB) | heap used (KiB) | external (KiB) | open streams |',
  '|---|---:|---:|---:|---:|---:|---:|---:|',
  ...all.flatMap((r) => {
    let total = 0;
    return r.cycles.flatMap((c) => {
      total += c.connections;
      if (!shown(c.round)) return [];
      return [
        `| ${r.driver} | ${c.round} | ${total.toLocaleString('en')} | ${(c.connections / c.seconds).toFixed(0)} | ${kib(c.memory.rss)} | ${kib(c.memory.heapUsed)} | ${kib(c.memory.external)} | ${c.memory.open} |`,
      ];
    });
  }),
  '',
  `Load average (1/5/15 min) before: ${loadBefore}; after: ${loadAfter}.`,
  '',
];
mkdirSync(results, { recursive: true });
writeFileSync(`${results}runtime-memory.md`, lines.join('\n'));
writeFileSync(`${results}runtime-memory.json`, `${JSON.stringify(all, null, 2)}\n`);
console.log(lines.join('\n'));
