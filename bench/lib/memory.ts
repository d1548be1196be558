/**
 * Memory measurements of a running peer: resident memory per idle keep-alive connection (many
 * connections held open by a separate client process, idle-clients.ts) and resident memory
 * before and after a sustained run (a leak shows up as growth). RSS is the peer's whole process
 * tree (rssKiB). Not for heap profiling: this sees what the OS sees.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type Peer, rssKiB, runWrk, type WrkResult } from './measure.js';

const here = fileURLToPath(new URL('.', import.meta.url));

/** Memory with many idle connections. */
export interface IdleMemory {
  readonly peer: string;
  /** Connections the client held open when RSS was read. */
  readonly connections: number;
  readonly failed: number;
  readonly baselineKiB: number;
  readonly idleKiB: number;
  /** (idle - baseline) / connections, in bytes. */
  readonly bytesPerConnection: number;
}

/**
 * Opens `count` keep-alive connections to 127.0.0.1:`port` from a client pinned to `clientCpu`,
 * each after one GET of `path`, and reads the peer's RSS before and while they sit idle.
 */
export async function idleConnectionMemory(
  peer: Peer,
  port: number,
  options: { count: number; path: string; clientCpu?: string; settleMs?: number },
): Promise<IdleMemory> {
  // Both readings are taken after the same quiet period, so a peer that trims memory when idle
  // (Loch's idle trim) is read in the same state with and without the connections.
  const settleMs = options.settleMs ?? 2000;
  const baselineKiB = await settledRssKiB(peer.pid, settleMs);
  const script = ['idle-clients.ts', String(port), String(options.count), options.path];
  const argv = [process.execPath, '--import', 'tsx', ...script];
  const full = options.clientCpu === undefined ? argv : ['taskset', '-c', options.clientCpu, ...argv];
  const client = spawn(full[0]!, full.slice(1), { cwd: here, stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let text = '';
      client.stdout.on('data', (d: Buffer) => {
        text += d.toString();
        const i = text.indexOf('\n');
        if (i >= 0) resolve(text.slice(0, i));
      });
      client.once('exit', (code) => reject(new Error(`idle client exited with ${code}: ${text}`)));
    });
    const m = /ready (\d+) failed (\d+)/.exec(line);
    const connections = Number(m?.[1] ?? 0);
    const idleKiB = await settledRssKiB(peer.pid, settleMs);
    return {
      peer: peer.name,
      connections,
      failed: Number(m?.[2] ?? 0),
      baselineKiB,
      idleKiB,
      bytesPerConnection: ((idleKiB - baselineKiB) * 1024) / Math.max(1, connections),
    };
  } finally {
    const exited = new Promise((r) => client.once('exit', r));
    client.kill('SIGTERM');
    await exited;
  }
}

/** How long settledRssKiB waits at most for the RSS to stop moving, and how it samples. */
const SETTLE_MAX_MS = 30_000;
const SETTLE_SAMPLE_MS = 500;
/** Samples (SETTLE_SAMPLE_MS apart) that must agree within SETTLE_TOLERANCE_KIB. */
const SETTLE_SAMPLES = 5;
const SETTLE_TOLERANCE_KIB = 256;

/**
 * The peer's RSS once it has stopped moving: at least `minMs` of quiet, then until the last
 * SETTLE_SAMPLES readings (2 s) agree within SETTLE_TOLERANCE_KIB, at most SETTLE_MAX_MS. A fixed
 * wait is not enough for a peer that trims when idle: Loch's trim runs after 1 s, and V8 gives
 * freed pages back to the OS seconds later still, so a baseline read after a fixed 5 s could sit
 * above the reading with 10,000 connections open (a negative "bytes per connection").
 */
export async function settledRssKiB(pid: number, minMs: number): Promise<number> {
  await new Promise((r) => setTimeout(r, minMs));
  const samples = [rssKiB(pid)];
  const deadline = Date.now() + SETTLE_MAX_MS;
  for (;;) {
    const last = samples.slice(-SETTLE_SAMPLES);
    if (last.length === SETTLE_SAMPLES && Math.max(...last) - Math.min(...last) <= SETTLE_TOLERANCE_KIB)
      return last[last.length - 1]!;
    if (Date.now() >= deadline) return samples[samples.length - 1]!;
    await new Promise((r) => setTimeout(r, SETTLE_SAMPLE_MS));
    samples.push(rssKiB(pid));
  }
}

/** RSS through a sustained run. */
export interface SoakMemory {
  readonly peer: string;
  readonly seconds: number;
  readonly beforeKiB: number;
  readonly afterKiB: number;
  readonly maxKiB: number;
  /** RSS samples taken every `sampleSeconds` during the run. */
  readonly samplesKiB: readonly number[];
  readonly load: WrkResult;
}

/**
 * Runs wrk against `url` for `seconds` (after a warm-up, so pools and JIT have settled before the
 * first reading) and samples the peer's RSS throughout.
 */
export async function soakMemory(
  peer: Peer,
  url: string,
  options: {
    seconds: number;
    warmupSeconds: number;
    connections: number;
    cpu?: string;
    sampleSeconds?: number;
  },
): Promise<SoakMemory> {
  const wrk = {
    connections: options.connections,
    ...(options.cpu === undefined ? {} : { cpu: options.cpu }),
  };
  await runWrk(url, { ...wrk, seconds: options.warmupSeconds });
  const beforeKiB = rssKiB(peer.pid);
  const samplesKiB: number[] = [];
  const timer = setInterval(() => samplesKiB.push(rssKiB(peer.pid)), (options.sampleSeconds ?? 5) * 1000);
  let load: WrkResult;
  try {
    load = await runWrk(url, { ...wrk, seconds: options.seconds });
  } finally {
    clearInterval(timer);
  }
  const afterKiB = rssKiB(peer.pid);
  return {
    peer: peer.name,
    seconds: options.seconds,
    beforeKiB,
    afterKiB,
    maxKiB: Math.max(beforeKiB, afterKiB, ...samplesKiB),
    samplesKiB,
    load,
  };
}

/** Idle keep-alive connections held open by a separate client process (idle-clients.ts). */
export interface IdleClients {
  /** Pid of the client process (for diagnostics; release() ends it). */
  readonly pid: number;
  /** Connections open and idle (each has had one full response). */
  readonly connections: number;
  /** Connections that failed to open or to get their response. */
  readonly failed: number;
  /** Closes every connection and resolves once the client process has exited. */
  release(): Promise<void>;
}

/**
 * Opens `count` idle keep-alive connections to 127.0.0.1:`port` (one GET of `path` each) from a
 * client process pinned to `clientCpu`, and resolves once all are idle; they stay open until
 * release(). For measurements that read RSS their own way while the connections are held (the
 * A/B bench reads several samples, and under load). The client is killed when this process
 * exits, so it never outlives an interrupted run.
 */
export async function openIdleClients(
  port: number,
  options: { count: number; path: string; clientCpu?: string },
): Promise<IdleClients> {
  const script = ['idle-clients.ts', String(port), String(options.count), options.path];
  const argv = [process.execPath, '--import', 'tsx', ...script];
  const full = options.clientCpu === undefined ? argv : ['taskset', '-c', options.clientCpu, ...argv];
  const client = spawn(full[0]!, full.slice(1), { cwd: here, stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => {
    client.once('exit', () => resolve());
    client.once('error', () => resolve()); // could not start: there is nothing to wait for
  });
  // Even while it is still opening connections, the client ends with this process (a signal,
  // an error, or process.exit from stopPeersOnSignal).
  const killOnExit = () => client.kill('SIGTERM');
  process.once('exit', killOnExit);
  const release = async () => {
    process.off('exit', killOnExit);
    if (client.exitCode === null && client.signalCode === null) client.kill('SIGTERM');
    await exited;
  };
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let text = '';
      client.stdout.on('data', (d: Buffer) => {
        text += d.toString();
        const i = text.indexOf('\n');
        if (i >= 0) resolve(text.slice(0, i));
      });
      client.once('exit', (code) => reject(new Error(`idle client exited with ${code}: ${text}`)));
      client.once('error', reject);
    });
    const m = /ready (\d+) failed (\d+)/.exec(line);
    if (!m || client.pid === undefined) throw new Error(`idle client: unexpected output: ${line}`);
    return { pid: client.pid, connections: Number(m[1]), failed: Number(m[2]), release };
  } catch (err) {
    await release();
    throw err;
  }
}
