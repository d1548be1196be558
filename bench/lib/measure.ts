/**
 * The measuring kit every Loch benchmark shares (DESIGN.md "Measuring"): start a peer pinned to
 * a CPU, wait until it listens, drive load with wrk, and read the CPU time the peer's whole
 * process tree spent (utime+stime from /proc, so nginx's worker processes count too). Results
 * are CPU microseconds per request beside requests/s and latency percentiles, written as
 * markdown tables. Not a load generator of its own, and never used from tests.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';

/** Clock ticks per second for /proc times (USER_HZ; 100 on every Linux we run on). */
const TICKS_PER_SECOND = 100;

/** A process started for a benchmark. */
export interface Peer {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** The last few KiB the peer wrote to stdout and stderr. */
  output(): string;
  /** Resolves with the exit code (or signal name) when the peer ends. */
  readonly exited: Promise<number | string>;
  stop(): Promise<void>;
}

/** Every peer process started and not yet exited, so a signal can stop them all. */
const livePeers = new Set<ChildProcess>();

/**
 * On SIGINT/SIGTERM, kills every peer this process started (nginx, HAProxy, proxies, wrk is
 * short-lived) and exits, so an interrupted benchmark leaves nothing listening. Call once per run.
 */
export function stopPeersOnSignal(): void {
  const stop = (signal: NodeJS.Signals) => {
    // SIGTERM, not SIGKILL: nginx and the node:cluster primary then take their workers down too.
    for (const child of livePeers) child.kill('SIGTERM');
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

/**
 * Sends SIGTERM to every peer still running, synchronously, so it can run in a process 'exit'
 * hook (where nothing asynchronous runs): a harness that ends by an error or a normal exit
 * leaves nothing listening either. stopPeersOnSignal covers SIGINT/SIGTERM.
 */
export function killLivePeers(): void {
  for (const child of livePeers) child.kill('SIGTERM');
}

/** Starts `command` pinned to `cpu` (taskset), with its output kept for errors. */
export function startPeer(
  name: string,
  command: string,
  args: readonly string[],
  options: { cpu?: string; env?: NodeJS.ProcessEnv; cwd?: string; nofile?: number } = {},
): Peer {
  let argv =
    options.cpu === undefined ? [command, ...args] : ['taskset', '-c', options.cpu, command, ...args];
  // prlimit execs the command, so the pid we keep is still the peer's own.
  if (options.nofile !== undefined)
    argv = ['prlimit', `--nofile=${options.nofile}:${options.nofile}`, ...argv];
  const child = spawn(argv[0]!, argv.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: options.env ?? process.env,
    cwd: options.cwd,
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output = (output + d.toString()).slice(-4000);
  });
  child.stderr?.on('data', (d: Buffer) => {
    output = (output + d.toString()).slice(-4000);
  });
  child.on('exit', (code, signal) => {
    if (code !== 0 && signal === null) process.stderr.write(`[${name}] exited with ${code}\n${output}\n`);
  });
  if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`);
  livePeers.add(child);
  child.once('exit', () => livePeers.delete(child));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  return {
    name,
    child,
    pid: child.pid,
    output: () => output,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const killed = await Promise.race([done.then(() => true), delay(3000).then(() => false)]);
      if (!killed) {
        child.kill('SIGKILL');
        await done;
      }
    },
  };
}

/** Resolves once a TCP connect to host:port succeeds (or throws after `timeoutMs`). */
export async function waitForPort(port: number, host = '127.0.0.1', timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await delay(50);
  }
}

/** A TCP port for a peer: above the ephemeral range, never a closed listen(0) one (free-port.ts). */
export { freePort } from './free-port.js';

/** Resolves once an HTTP GET of `path` on host:port answers with status 200 (or throws after `timeoutMs`). */
export async function waitForHttp(
  port: number,
  path = '/',
  host = '127.0.0.1',
  timeoutMs = 10_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const res = await fetch(`http://${host}:${port}${path}`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
      last = `status ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > until)
      throw new Error(`GET http://${host}:${port}${path} not 200 after ${timeoutMs} ms (${last})`);
    await delay(100);
  }
}

/** Every pid in the tree rooted at `root` (root included). */
export function processTree(root: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = parents.get(ppid) ?? [];
      list.push(Number(entry));
      parents.set(ppid, list);
    } catch {
      // the process ended while we looked
    }
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop()!;
    out.push(pid);
    stack.push(...(parents.get(pid) ?? []));
  }
  return out;
}

/** CPU seconds (user + system) spent so far by the process tree rooted at `pid`. */
export function cpuSeconds(pid: number): number {
  const [user, system] = cpuSplitSeconds(pid);
  return user + system;
}

/** CPU seconds spent so far by the process tree rooted at `pid`, as [user, system]. */
export function cpuSplitSeconds(pid: number): [number, number] {
  let user = 0;
  let system = 0;
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      user += Number(fields[11]);
      system += Number(fields[12]);
    } catch {
      // gone
    }
  }
  return [user / TICKS_PER_SECOND, system / TICKS_PER_SECOND];
}

/**
 * CPU seconds (user + system) spent so far by the threads alive in the process tree rooted at
 * `pid`, from each thread's /proc/<pid>/task/<tid>/schedstat: nanosecond resolution where
 * cpuSeconds counts 10 ms ticks, for short windows of small costs (a few hundred TLS handshakes).
 * Threads that exited are not counted: compare readings of long-lived threads only.
 */
export function cpuRunSeconds(pid: number): number {
  let ns = 0;
  for (const p of processTree(pid)) {
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      continue; // gone
    }
    for (const t of tasks) {
      try {
        ns += Number(readFileSync(`/proc/${p}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // gone
      }
    }
  }
  return ns / 1e9;
}

/** Resident set size in KiB of the process tree rooted at `pid`. */
export function rssKiB(pid: number): number {
  let kib = 0;
  for (const p of processTree(pid)) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) kib += Number(m[1]);
    } catch {
      // gone
    }
  }
  return kib;
}

/** What wrk reported. */
export interface WrkResult {
  readonly requests: number;
  readonly seconds: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
}

function toMs(value: string, unit: string): number {
  const n = Number(value);
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n;
}

/** Parses wrk's --latency output. */
export function parseWrk(text: string): WrkResult {
  const req = /(\d+) requests in ([\d.]+)(ms|s|m)/.exec(text);
  if (!req) throw new Error(`cannot read wrk output:\n${text}`);
  const seconds = toMs(req[2]!, req[3]!) / 1000;
  const pct = (p: string) => {
    const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(text);
    return m ? toMs(m[1]!, m[2]!) : Number.NaN;
  };
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  const errors =
    (errs ? Number(errs[1]) + Number(errs[2]) + Number(errs[3]) + Number(errs[4]) : 0) +
    (non2xx ? Number(non2xx[1]) : 0);
  const requests = Number(req[1]);
  return {
    requests,
    seconds,
    requestsPerSecond: requests / seconds,
    p50Ms: requests > 0 ? pct('50') : Number.NaN,
    p99Ms: requests > 0 ? pct('99') : Number.NaN,
    errors,
  };
}

/** Runs wrk (pinned to `cpu`) against `url`, with `headers` (`Name: value`) on every request. */
export async function runWrk(
  url: string,
  options: {
    connections: number;
    threads?: number;
    seconds: number;
    cpu?: string;
    headers?: readonly string[];
  },
): Promise<WrkResult> {
  const args = [
    `-t${options.threads ?? 1}`,
    `-c${options.connections}`,
    `-d${options.seconds}s`,
    '--latency',
    ...(options.headers ?? []).flatMap((h) => ['-H', h]),
    url,
  ];
  const argv = options.cpu === undefined ? ['wrk', ...args] : ['taskset', '-c', options.cpu, 'wrk', ...args];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`wrk exited with ${code}:\n${out}`);
  return parseWrk(out);
}

/** One measured run: load on a peer, and the CPU the peer spent for it. */
export interface Measurement extends WrkResult {
  readonly peer: string;
  /** CPU microseconds the peer's process tree spent per request. */
  readonly cpuUsPerRequest: number;
  /** The part of cpuUsPerRequest spent in the kernel (system time). */
  readonly sysUsPerRequest: number;
}

/** Drives `url` with wrk and charges the CPU time of `peer` to the requests served. */
export async function measure(
  peer: Peer,
  url: string,
  load: {
    connections: number;
    seconds: number;
    cpu?: string;
    warmupSeconds?: number;
    headers?: readonly string[];
  },
): Promise<Measurement> {
  if (load.warmupSeconds) await runWrk(url, { ...load, seconds: load.warmupSeconds });
  const [user0, sys0] = cpuSplitSeconds(peer.pid);
  const result = await runWrk(url, load);
  const [user1, sys1] = cpuSplitSeconds(peer.pid);
  const spent = user1 - user0 + (sys1 - sys0);
  // A run that served nothing (a stalled peer) has no per-request cost: NaN renders as n/a.
  const perRequest = (s: number) => (result.requests > 0 ? (s * 1e6) / result.requests : Number.NaN);
  return {
    ...result,
    peer: peer.name,
    cpuUsPerRequest: perRequest(spent),
    sysUsPerRequest: perRequest(sys1 - sys0),
  };
}

/** Renders rows as a markdown table. */
export function markdownTable(
  headers: readonly string[],
  rows: readonly (readonly (string | number)[])[],
): string {
  const cell = (v: string | number) => (typeof v === 'number' ? formatNumber(v) : v);
  return [
    `| ${headers.join(' | ')} |`,
    `|${headers.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ].join('\n');
}

function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** A short description of the machine for result headers. */
export function machineSummary(): string {
  const cpu = /model name\s+:\s+(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU';
  const kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  return `${cpu}, ${readdirSync('/sys/devices/system/cpu').filter((d) => /^cpu\d+$/.test(d)).length} CPUs, Linux ${kernel}, Node ${process.version}`;
}
