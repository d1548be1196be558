/**
 * Per-thread CPU of a peer during a handshake window (issue 13: where the 2-worker handshake CPU
 * goes): every thread of the peer's process tree, read from /proc/<pid>/task/<tid>/ (schedstat:
 * time on CPU and time waiting for one, in nanoseconds, and timeslices; status: voluntary and
 * involuntary context switches), each thread given a role: Loch's `main`, `worker N`, `platform`
 * (V8's background threads: compilers, concurrent GC; Node's delayed-task thread) when the peer
 * ran with thread-roles.cjs preloaded, `io_uring` (the kernel's iou-* workers), `other` (libuv's
 * threadpool and anything else); nginx's `master` and `worker N` (its processes). Threads of one
 * role are summed. Sampled placement (`onCpu0`/`onCpu1`: samples that found a thread of the role
 * running on that CPU) says who shared CPU 0 with the client. Not the total that the page charges
 * (lib/measure.ts cpuRunSeconds: the same schedstat figures summed over every thread).
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Runs `start` (which starts a Loch peer through peers.ts's lochSpec, reading
 * LOCH_BENCH_NODE_ARGS at start) with thread-roles.cjs preloaded into a fresh roles directory,
 * and returns what it returned with that directory (for threadSnapshot/handshakeCost).
 */
export async function withThreadRoles<T>(start: () => Promise<T>): Promise<{ value: T; rolesDir: string }> {
  const rolesDir = mkdtempSync(join(tmpdir(), 'loch-bench-roles-'));
  const before = { args: process.env.LOCH_BENCH_NODE_ARGS, roles: process.env.LOCH_BENCH_THREAD_ROLES };
  const preload = fileURLToPath(new URL('./thread-roles.cjs', import.meta.url));
  process.env.LOCH_BENCH_THREAD_ROLES = rolesDir;
  process.env.LOCH_BENCH_NODE_ARGS = `${before.args ?? ''} --require ${preload}`.trim();
  try {
    return { value: await start(), rolesDir };
  } finally {
    if (before.args === undefined) delete process.env.LOCH_BENCH_NODE_ARGS;
    else process.env.LOCH_BENCH_NODE_ARGS = before.args;
    if (before.roles === undefined) delete process.env.LOCH_BENCH_THREAD_ROLES;
    else process.env.LOCH_BENCH_THREAD_ROLES = before.roles;
  }
}

/** One thread's counters at one moment. */
interface ThreadCounters {
  readonly role: string;
  readonly runNs: number;
  readonly delayNs: number;
  readonly slices: number;
  readonly voluntary: number;
  readonly involuntary: number;
  /** /proc's utime and stime (stat fields 14 and 15), in clock ticks (10 ms). */
  readonly userTicks: number;
  readonly systemTicks: number;
}

/** The counters of every thread of a process tree, by `<pid>/<tid>`. */
export type ThreadSnapshot = ReadonlyMap<string, ThreadCounters>;

/** What the threads of one role did in a window, per handshake (CPU and waits in microseconds). */
export interface ThreadRoleCost {
  readonly role: string;
  readonly threads: number;
  readonly cpuUs: number;
  /** Time runnable but waiting for a CPU (schedstat run_delay). */
  readonly delayUs: number;
  readonly slices: number;
  readonly voluntary: number;
  readonly involuntary: number;
  /** User time's share of the role's CPU in the window, from /proc's ticks (NaN with none). */
  readonly userShare: number;
  /** Placement samples that found a thread of this role running on CPU 0 / CPU 1 (counts, not per handshake). */
  readonly onCpu0: number;
  readonly onCpu1: number;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined; // the thread or process ended
  }
}

/** `root` and every process below it. */
function tree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = read(`/proc/${entry}/stat`);
    if (stat === undefined) continue;
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(entry));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop()!;
    out.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** Roles written by thread-roles.cjs into `dir`, by tid. */
function preloadRoles(dir: string | undefined): Map<string, string> {
  const roles = new Map<string, string>();
  if (dir === undefined) return roles;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return roles;
  }
  for (const name of names) {
    const text = read(`${dir}/${name}`) ?? '';
    if (name === 'platform') {
      for (const tid of text.split('\n')) if (tid) roles.set(tid, 'platform');
    } else roles.set(name, text);
  }
  return roles;
}

/** Role of one thread: see the file's comment. */
function roleOf(
  root: number,
  pid: number,
  tid: string,
  roles: Map<string, string>,
  workerOf: Map<number, number>,
): string {
  const comm = (read(`/proc/${pid}/task/${tid}/comm`) ?? '').trim();
  if (comm.startsWith('iou-')) return 'io_uring';
  if (pid !== root) {
    // Another process: nginx's workers (HAProxy and Loch are one process).
    const n = workerOf.get(pid)!;
    return String(pid) === tid ? `worker ${n}` : `worker ${n} thread`;
  }
  const known = roles.get(tid);
  if (known !== undefined) return known;
  if (String(root) === tid) return 'main';
  return roles.size > 0 ? 'other' : 'thread';
}

/** The counters of every thread below `root` now; `rolesDir`: thread-roles.cjs's directory. */
export function threadSnapshot(root: number, rolesDir?: string): ThreadSnapshot {
  const roles = preloadRoles(rolesDir);
  const pids = tree(root);
  const workerOf = new Map(
    pids
      .filter((p) => p !== root)
      .sort((a, b) => a - b)
      .map((p, i) => [p, i] as const),
  );
  const out = new Map<string, ThreadCounters>();
  for (const pid of pids) {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      const sched = read(`/proc/${pid}/task/${tid}/schedstat`);
      const status = read(`/proc/${pid}/task/${tid}/status`);
      const stat = read(`/proc/${pid}/task/${tid}/stat`);
      if (sched === undefined || status === undefined || stat === undefined) continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields[0] is stat's field 3
      const [run, delay, slices] = sched.trim().split(' ').map(Number);
      const voluntary = Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0);
      const involuntary = Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0);
      out.set(`${pid}/${tid}`, {
        role: roleOf(root, pid, tid, roles, workerOf),
        runNs: run ?? 0,
        delayNs: delay ?? 0,
        slices: slices ?? 0,
        voluntary,
        involuntary,
        userTicks: Number(fields[11]),
        systemTicks: Number(fields[12]),
      });
    }
  }
  return out;
}

/**
 * Roles of the threads of `root` running right now and the CPU each is on (stat fields 3 and
 * 39), for the placement counts.
 */
export function runningPlaces(root: number, rolesDir?: string): { role: string; cpu: number }[] {
  const snapshot = threadSnapshot(root, rolesDir);
  const out: { role: string; cpu: number }[] = [];
  for (const [key, t] of snapshot) {
    const stat = read(`/proc/${key.replace('/', '/task/')}/stat`);
    if (stat === undefined) continue;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] !== 'R') continue;
    out.push({ role: t.role, cpu: Number(fields[36]) });
  }
  return out;
}

/**
 * Per role, what its threads did between `before` and `after`, divided by `count` handshakes;
 * threads that started in the window count from 0, threads that ended are lost (their time
 * too). `places`: runningPlaces() samples taken in the window.
 */
export function roleCosts(
  before: ThreadSnapshot,
  after: ThreadSnapshot,
  count: number,
  places: readonly { role: string; cpu: number }[] = [],
): ThreadRoleCost[] {
  const sums = new Map<
    string,
    {
      threads: number;
      run: number;
      delay: number;
      slices: number;
      vol: number;
      invol: number;
      user: number;
      system: number;
    }
  >();
  for (const [key, a] of after) {
    const b = before.get(key);
    const s = sums.get(a.role) ?? {
      threads: 0,
      run: 0,
      delay: 0,
      slices: 0,
      vol: 0,
      invol: 0,
      user: 0,
      system: 0,
    };
    s.threads++;
    s.run += a.runNs - (b?.runNs ?? 0);
    s.delay += a.delayNs - (b?.delayNs ?? 0);
    s.slices += a.slices - (b?.slices ?? 0);
    s.vol += a.voluntary - (b?.voluntary ?? 0);
    s.invol += a.involuntary - (b?.involuntary ?? 0);
    s.user += a.userTicks - (b?.userTicks ?? 0);
    s.system += a.systemTicks - (b?.systemTicks ?? 0);
    sums.set(a.role, s);
  }
  const per = (n: number) => (count > 0 ? n / count : Number.NaN);
  return [...sums]
    .map(([role, s]) => ({
      role,
      threads: s.threads,
      cpuUs: per(s.run / 1000),
      delayUs: per(s.delay / 1000),
      slices: per(s.slices),
      voluntary: per(s.vol),
      involuntary: per(s.invol),
      userShare: s.user + s.system > 0 ? s.user / (s.user + s.system) : Number.NaN,
      onCpu0: places.filter((p) => p.role === role && p.cpu === 0).length,
      onCpu1: places.filter((p) => p.role === role && p.cpu === 1).length,
    }))
    .sort((x, y) => y.cpuUs - x.cpuUs);
}

/** One line per role: `role (threads): cpu us (user's share), waited us, slices, vol/invol switches, samples on CPU 0/1`. */
export function formatRoleCosts(costs: readonly ThreadRoleCost[]): string {
  return costs
    .filter((c) => c.cpuUs >= 0.05 || c.onCpu0 + c.onCpu1 > 0)
    .map(
      (c) =>
        `  ${`${c.role} (${c.threads})`.padEnd(22)} cpu ${c.cpuUs.toFixed(1).padStart(6)} us (user ${
          Number.isNaN(c.userShare) ? '  -' : `${(c.userShare * 100).toFixed(0).padStart(2)}%`
        })  waited ${c.delayUs
          .toFixed(1)
          .padStart(6)} us  slices ${c.slices.toFixed(2).padStart(5)}  switches vol ${c.voluntary
          .toFixed(2)
          .padStart(
            5,
          )} invol ${c.involuntary.toFixed(2).padStart(5)}  running on cpu0/cpu1 ${c.onCpu0}/${c.onCpu1}`,
    )
    .join('\n');
}
