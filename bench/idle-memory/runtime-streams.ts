/**
 * Live V8 heap per idle keep-alive connection of the runtime's own stream objects, in process
 * (issue 18): a TcpListener of the thread's runtime (io_uring, or legacy with LOCH_DRIVER=legacy)
 * accepts N connections from bench/lib/idle-clients.ts (another process: one GET each, then
 * silent); each stream is served as loch's server serves one: its facts and local address read
 * once (the connection context reads them), one 128-byte answer per request, then parked in one
 * recvTo for the next request. Heap used after full GCs with the connections and without (the
 * same process after a warm-up batch), divided by N. What is counted: the driver's stream, the
 * public TcpStream wrapper, the runtime's and the ring's registries, the facts and addresses, the
 * parked receive; plus this harness's own holder per connection (a Parked object and its array
 * slot: 40 B, subtracted in the "less holder" figure). Not the HTTP server or loch's context
 * (in-process.ts has those). For a cut in the runtime: run before and after, the difference is
 * the cut; with --snapshot-dir, heap snapshots without and with for analyze.ts.
 *
 * Run (from bench/): node --expose-gc --conditions=@loch/source --import tsx
 *   idle-memory/runtime-streams.ts [--connections 5000] [--rounds 3] [--snapshot-dir DIR]
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeHeapSnapshot } from 'node:v8';
import {
  acceptLoop,
  type RecvChunk,
  type RecvTarget,
  TcpListener,
  type TcpStream,
} from '@loch/uring-runtime';

const { values: args } = parseArgs({
  options: {
    connections: { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '3' },
    'snapshot-dir': { type: 'string' },
  },
});
const N = Number(args.connections);
const rounds = Number(args.rounds);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
const here = fileURLToPath(new URL('.', import.meta.url));

const ANSWER = new Uint8Array(
  Buffer.concat([
    Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 128\r\nConnection: keep-alive\r\n\r\n', 'latin1'),
    Buffer.alloc(128, 0x61),
  ]),
);
const written = { onWritten: () => {} };

/** One served connection: answers each request chunk and parks in recvTo again. */
class Parked implements RecvTarget {
  constructor(readonly stream: TcpStream) {}
  onRecv(chunk: RecvChunk | null, error: unknown): void {
    if (chunk === null || error !== undefined) {
      void this.stream.close().catch(() => {});
      return;
    }
    chunk.release();
    this.stream.writeTo(ANSWER, written);
    this.stream.recvTo(this);
  }
}

const held: (Parked | undefined)[] = [];
const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0 });
const port = (listener.localAddress as { port: number }).port;
void acceptLoop(listener, (stream) => {
  // What loch's connection context reads once per connection.
  void stream.facts.clientAddress;
  void stream.localAddress;
  const parked = new Parked(stream);
  held.push(parked);
  stream.recvTo(parked);
});

/** Holds `n` idle clients open while `fn` runs (../lib/idle-clients.ts in another process). */
async function withClients(n: number, fn: () => Promise<void>): Promise<void> {
  const client = spawn(
    process.execPath,
    ['--import', 'tsx', '../lib/idle-clients.ts', String(port), String(n), '/', '100'],
    { cwd: here, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const rl = createInterface({ input: client.stdout! });
  const ready = await new Promise<string>((resolve) => rl.once('line', resolve));
  if (!ready.startsWith(`ready ${n}`)) throw new Error(ready);
  await fn();
  const exited = new Promise((r) => client.once('exit', r));
  client.kill('SIGTERM');
  await exited;
}

async function settledHeap(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 100));
    gc!();
  }
  return process.memoryUsage().heapUsed;
}

/** Waits until every stream of the last batch saw its end and closed. */
async function dropClosed(): Promise<void> {
  await new Promise((r) => setTimeout(r, 500));
  held.length = 0;
}

await withClients(200, async () => {});
await dropClosed();
const results: number[] = [];
for (let round = 0; round < rounds; round++) {
  const dir = args['snapshot-dir'];
  const base = await settledHeap();
  if (dir !== undefined && round === 0) writeHeapSnapshot(join(dir, 'streams-0.heapsnapshot'));
  await withClients(N, async () => {
    const withThem = await settledHeap();
    const per = (withThem - base) / N;
    results.push(per);
    console.log(
      `round ${round + 1}: ${N} idle, ${held.length} held: ${per.toFixed(0)} B/conn (less holder ${(per - 40).toFixed(0)})`,
    );
    if (dir !== undefined && round === 0) writeHeapSnapshot(join(dir, `streams-${N}.heapsnapshot`));
  });
  await dropClosed();
}
results.sort((a, b) => a - b);
console.log(
  `runtime streams (${held.length === 0 ? 'all closed' : `${held.length} left`}): median ${results[results.length >> 1]!.toFixed(0)} B/conn over ${rounds} rounds [${results.map((r) => r.toFixed(0)).join(', ')}]`,
);
await listener.close();
process.exit(0);
