/**
 * The HTTPS benchmark's client processes and what they measure on the proxy: server CPU per TLS
 * handshake (handshake-client.ts, full or resumed) and resident memory per idle TLS keep-alive
 * connection (idle-tls-clients.ts), each client a separate Node process pinned to its own CPU so
 * its work is never charged to the proxy. Every client is killed when this process exits. Not
 * for request load (wrk, lib/measure.ts).
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cpuRunSeconds, cpuSplitSeconds, type Peer, rssKiB } from '../lib/measure.js';
import type { IdleMemory } from '../lib/memory.js';
import {
  roleCosts,
  runningPlaces,
  type ThreadRoleCost,
  type ThreadSnapshot,
  threadSnapshot,
} from './threads.js';

const here = fileURLToPath(new URL('.', import.meta.url));

/** Starts `script` (in this directory) under Node, pinned to `cpu`, killed when this process exits. */
function spawnClient(
  script: string,
  args: readonly string[],
  cpu: string | undefined,
): ChildProcessWithoutNullStreams {
  const argv = [process.execPath, '--import', 'tsx', script, ...args];
  const full = cpu === undefined ? argv : ['taskset', '-c', cpu, ...argv];
  const child = spawn(full[0]!, full.slice(1), { cwd: here, stdio: ['pipe', 'pipe', 'pipe'] });
  const kill = () => child.kill('SIGTERM');
  process.once('exit', kill);
  child.once('exit', () => process.off('exit', kill));
  return child;
}

/** Calls `onLine` for each stdout line of `child`; rejects if it exits first, with its stderr. */
function lines(child: ChildProcessWithoutNullStreams, onLine: (line: string) => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-2000);
    });
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      for (let i = out.indexOf('\n'); i >= 0; i = out.indexOf('\n')) {
        const line = out.slice(0, i);
        out = out.slice(i + 1);
        if (onLine(line)) resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`client exited with ${code}: ${err.trim()}`)));
    child.once('error', reject);
  });
}

async function ended(child: ChildProcessWithoutNullStreams): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** Server CPU per handshake over one measured window. */
export interface HandshakeCost {
  readonly handshakes: number;
  /** Handshakes the server resumed (the client offered a ticket and it was accepted). */
  readonly resumed: number;
  readonly failed: number;
  /** Handshakes closed without the server's session ticket (the client waited 200 ms). */
  readonly noTicket: number;
  /** Whether the server sent a new ticket on resumed handshakes (false: it reuses the offered one). */
  readonly ticketOnResume: boolean;
  readonly lastError: string;
  readonly seconds: number;
  readonly handshakesPerSecond: number;
  /** CPU time of the proxy's threads in the window (schedstat) / handshakes, in microseconds. */
  readonly cpuUsPerHandshake: number;
  readonly sysUsPerHandshake: number;
  /** The same window per thread role of the proxy (threads.ts), per handshake. */
  readonly threads: readonly ThreadRoleCost[];
  /** The client process's own threads in the window (it is pinned to the load CPU), per handshake. */
  readonly client: readonly ThreadRoleCost[];
}

/** How often the window samples which threads run on which CPU (threads.ts runningPlaces). */
const PLACEMENT_SAMPLE_MS = 100;

/**
 * Runs handshake-client.ts against `port` (new TLS connections, `full` or `resumed`) from
 * `clientCpu` and charges the CPU time of `peer` during the measured window to the handshakes.
 */
export async function handshakeCost(
  peer: Peer,
  port: number,
  options: {
    mode: 'full' | 'resumed';
    seconds: number;
    warmupSeconds: number;
    clientCpu?: string;
    concurrency?: number;
    /** thread-roles.cjs's directory for this peer (Loch with it preloaded), for the thread roles. */
    rolesDir?: string;
    /** Called as the measured window starts and as it ends (e.g. to run perf stat over it). */
    window?: { start(): void; done(): void };
  },
): Promise<HandshakeCost> {
  const child = spawnClient(
    'handshake-client.ts',
    [
      String(port),
      options.mode,
      String(options.seconds),
      String(options.warmupSeconds),
      String(options.concurrency ?? 8),
    ],
    options.clientCpu,
  );
  try {
    // Total CPU from schedstat (nanoseconds: a 2 s window of 300 handshakes is only ~10 ticks),
    // the system share from /proc/<pid>/stat ticks.
    let before = { run: 0, sys: 0 };
    let after = { run: 0, sys: 0 };
    const read = () => ({ run: cpuRunSeconds(peer.pid), sys: cpuSplitSeconds(peer.pid)[1] });
    const snap = () => ({
      peer: threadSnapshot(peer.pid, options.rolesDir),
      client: child.pid === undefined ? new Map() : threadSnapshot(child.pid),
    });
    let threadsBefore: { peer: ThreadSnapshot; client: ThreadSnapshot } = {
      peer: new Map(),
      client: new Map(),
    };
    let threadsAfter = threadsBefore;
    const places: { role: string; cpu: number }[] = [];
    let sampler: NodeJS.Timeout | undefined;
    let report = '';
    try {
      await lines(child, (line) => {
        if (line === 'start') {
          options.window?.start();
          threadsBefore = snap();
          before = read();
          sampler = setInterval(
            () => places.push(...runningPlaces(peer.pid, options.rolesDir)),
            PLACEMENT_SAMPLE_MS,
          );
        } else if (line.startsWith('done ')) {
          after = read();
          threadsAfter = snap();
          options.window?.done();
          clearInterval(sampler);
          report = line.slice(5);
          return true;
        }
        return false;
      });
    } finally {
      clearInterval(sampler);
    }
    const r = JSON.parse(report) as Omit<
      HandshakeCost,
      'handshakesPerSecond' | 'cpuUsPerHandshake' | 'sysUsPerHandshake' | 'threads' | 'client'
    >;
    const per = (s: number) => (r.handshakes > 0 ? (s * 1e6) / r.handshakes : Number.NaN);
    return {
      ...r,
      handshakesPerSecond: r.handshakes / r.seconds,
      cpuUsPerHandshake: per(after.run - before.run),
      sysUsPerHandshake: per(after.sys - before.sys),
      threads: roleCosts(threadsBefore.peer, threadsAfter.peer, r.handshakes, places),
      client: roleCosts(threadsBefore.client, threadsAfter.client, r.handshakes),
    };
  } finally {
    await ended(child);
  }
}

/**
 * Opens `count` idle TLS keep-alive connections to 127.0.0.1:`port` (full handshake and one GET
 * of `path` each) from a client pinned to `clientCpu`, and reads the RSS of `peer` before and
 * while they sit idle, both after `settleMs` of quiet (as lib/memory.ts's idleConnectionMemory
 * does for plain connections).
 */
export async function idleTlsConnectionMemory(
  peer: Peer,
  port: number,
  options: { count: number; path: string; clientCpu?: string; settleMs: number },
): Promise<IdleMemory> {
  await new Promise((r) => setTimeout(r, options.settleMs));
  const baselineKiB = rssKiB(peer.pid);
  const child = spawnClient(
    'idle-tls-clients.ts',
    [String(port), String(options.count), options.path],
    options.clientCpu,
  );
  try {
    let ready = '';
    await lines(child, (line) => {
      ready = line;
      return true;
    });
    const m = /ready (\d+) failed (\d+)/.exec(ready);
    if (!m) throw new Error(`idle TLS client: unexpected output: ${ready}`);
    const connections = Number(m[1]);
    await new Promise((r) => setTimeout(r, options.settleMs));
    const idleKiB = rssKiB(peer.pid);
    return {
      peer: peer.name,
      connections,
      failed: Number(m[2]),
      baselineKiB,
      idleKiB,
      bytesPerConnection: ((idleKiB - baselineKiB) * 1024) / Math.max(1, connections),
    };
  } finally {
    await ended(child);
  }
}
