/**
 * Memory per idle keep-alive connection of one running proxy, read from outside (RSS of its
 * process tree) in two states: quiet (nothing else happens, so Loch's idle trim has run before
 * both readings) and busy (wrk keeps the proxy serving the whole time, so no idle trim runs and
 * pools stay in use). Each reading is the median of several RSS samples. Not the cross-peer
 * table of bench/http-proxy (lib/memory.ts idleConnectionMemory, one sample each).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { type Peer, parseWrk, rssKiB, runWrk, startPeer, type WrkResult } from '../lib/measure.js';
import { openIdleClients } from '../lib/memory.js';
import { median } from './summary.js';

/** How to load the proxy and where the idle clients and wrk run. */
export interface MemoryOptions {
  /** Idle connections to open. */
  readonly count: number;
  /** Path each idle connection GETs once (and the busy load requests). */
  readonly path: string;
  /** taskset CPU for the idle client process and wrk. */
  readonly clientCpu: string;
  /** Quiet time before each reading. */
  readonly settleMs: number;
  /** RSS samples per reading (their median is the reading). */
  readonly samples: number;
  /** Time between samples. */
  readonly sampleIntervalMs: number;
}

/** One memory-per-connection reading. */
export interface ConnectionMemory {
  readonly connections: number;
  readonly failed: number;
  readonly baselineKiB: number;
  readonly withConnectionsKiB: number;
  /** (withConnections - baseline) / connections, in bytes. */
  readonly bytesPerConnection: number;
  /** The samples behind the two readings. */
  readonly baselineSamplesKiB: readonly number[];
  readonly withConnectionsSamplesKiB: readonly number[];
  /** Busy only: what wrk did over the whole window (its requests/s shows the load held). */
  readonly load?: WrkResult;
}

/** `n` RSS samples of `peer`, `intervalMs` apart. */
async function rssSamples(peer: Peer, n: number, intervalMs: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    if (i > 0) await delay(intervalMs);
    out.push(rssKiB(peer.pid));
  }
  return out;
}

/**
 * Baseline RSS after `firstWaitMs`, then `count` idle connections, then RSS again after
 * `settleMs`. The caller decides what else runs meanwhile (nothing, or a wrk load).
 */
async function measureWithIdleClients(peer: Peer, port: number, o: MemoryOptions, firstWaitMs: number) {
  await delay(firstWaitMs);
  const baselineSamplesKiB = await rssSamples(peer, o.samples, o.sampleIntervalMs);
  const clients = await openIdleClients(port, { count: o.count, path: o.path, clientCpu: o.clientCpu });
  try {
    await delay(o.settleMs);
    const withConnectionsSamplesKiB = await rssSamples(peer, o.samples, o.sampleIntervalMs);
    const baselineKiB = median(baselineSamplesKiB);
    const withConnectionsKiB = median(withConnectionsSamplesKiB);
    return {
      connections: clients.connections,
      failed: clients.failed,
      baselineKiB,
      withConnectionsKiB,
      bytesPerConnection: ((withConnectionsKiB - baselineKiB) * 1024) / Math.max(1, clients.connections),
      baselineSamplesKiB,
      withConnectionsSamplesKiB,
    };
  } finally {
    await clients.release();
  }
}

/**
 * Quiet: a 1 s wrk load first (so pools and JIT are warm, as in bench/http-proxy), then the
 * idle-connection reading with nothing else running.
 */
export async function quietConnectionMemory(
  peer: Peer,
  port: number,
  o: MemoryOptions,
): Promise<ConnectionMemory> {
  await runWrk(`http://127.0.0.1:${port}${o.path}`, { connections: 64, seconds: 1, cpu: o.clientCpu });
  return measureWithIdleClients(peer, port, o, o.settleMs);
}

/** How long wrk runs before the busy baseline is read. */
const BUSY_WARM_MS = 2000;

/**
 * Busy: wrk with `connections` connections runs for the whole reading (from 2 s before the
 * baseline until after the last sample), so the proxy never goes idle. Throws if wrk stopped early or
 * served nothing, because the reading would then be a quiet one.
 */
export async function busyConnectionMemory(
  peer: Peer,
  port: number,
  o: MemoryOptions & { readonly connections: number },
): Promise<ConnectionMemory> {
  // A long -d; stopped with SIGINT below, on which wrk prints its summary. startPeer registers
  // it, so stopPeersOnSignal and the harness's exit hook kill it too.
  const wrk = startPeer(
    'wrk (busy)',
    'wrk',
    ['-t1', `-c${o.connections}`, '-d3600s', `http://127.0.0.1:${port}${o.path}`],
    { cpu: o.clientCpu },
  );
  try {
    const reading = await measureWithIdleClients(peer, port, o, BUSY_WARM_MS);
    if (wrk.child.exitCode !== null || wrk.child.signalCode !== null)
      throw new Error(`busy memory: wrk ended before the last reading:\n${wrk.output()}`);
    wrk.child.kill('SIGINT');
    await wrk.exited;
    const load = parseWrk(wrk.output());
    if (load.requests === 0) throw new Error(`busy memory: wrk served no requests:\n${wrk.output()}`);
    return { ...reading, load };
  } finally {
    await wrk.stop();
  }
}
