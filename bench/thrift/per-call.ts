/**
 * What one relayed Thrift call costs loch's JavaScript, counted rather than timed (issue 15):
 * loch's thrift server as the worker runs it (servers.ts ThriftServers: its ThriftServer options
 * and handler) in this process, the Go thrift server upstream and the Go load generator
 * (bench:thrift's peers, framed binary, `bench(text)` with a `--size`-byte string) as processes
 * pinned to CPU 0. Only
 * loch runs in this process, so everything counted here is loch's, divided by the calls the load
 * generator made in the counted run.
 *
 * Counted per call:
 * - async resources created, by type (async_hooks init: PROMISE, Immediate, Timeout,
 *   TickObject, Microtask), and promise reaction jobs run (the hook's `before` of a PROMISE:
 *   each await resumption and then() callback is one microtask turn). With a hook enabled V8
 *   also makes a throwaway promise per `await` that it does not make without one: an await
 *   shows as one promise more here than it costs.
 * - JS <-> native crossings (the addon's own counters: submit() calls, completion callbacks).
 * - bytes allocated on V8's heap, by allocation site (the sampling heap profiler at `--interval`
 *   bytes, objects collected by minor and major GCs included; ArrayBuffer backing stores are
 *   not on the heap and not in it), each site named by its function and file:line and by the
 *   nearest frame of loch's own code on its stack.
 * - with `--phases cpu`: this process's CPU per call (user and system) in a run with nothing
 *   attached (a reading of the moment on a shared machine: compare checkouts interleaved).
 * Each in a run of its own (a hook or the profiler slows loch several times, which changes how
 * many calls one loop turn handles: per-turn costs, like crossings, read lower under load).
 *
 * Usage: tsx --conditions=@loch/source thrift/per-call.ts [--size 10240] [--seconds 3]
 *   [--connections 64] [--interval 64] [--top 25] [--mux] [--phases hooks,crossings,heap]
 *   (LOCH_DRIVER=uring|legacy)
 */
import { createHook } from 'node:async_hooks';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { Session } from 'node:inspector';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { acceptLoop, createRuntime } from '@loch/uring-runtime';
import { parseConfig } from '../../apps/proxy/src/config/load.js';
import { ProxyLog } from '../../apps/proxy/src/proxy/log.js';
import { ThriftServers } from '../../apps/proxy/src/thrift/servers.js';
import { loadNative } from '../../native/index.js';

const { values: args } = parseArgs({
  options: {
    size: { type: 'string', default: '10240' },
    seconds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '64' },
    interval: { type: 'string', default: '64' },
    top: { type: 'string', default: '25' },
    mux: { type: 'boolean', default: false },
    phases: { type: 'string', default: 'hooks,crossings,heap' },
  },
});
const phases = new Set(args.phases.split(','));
const PEER_CPU = '0';
const here = fileURLToPath(new URL('.', import.meta.url));
const repo = join(here, '..', '..');
const GO_SOURCE = join(repo, 'apps', 'proxy', 'test', 'thrift', 'go', 'thrift_peer.go');

const go = join(mkdtempSync(join(tmpdir(), 'loch-bench-go-')), 'thrift_peer');
execFileSync('/usr/bin/go', ['build', '-o', go, GO_SOURCE], {
  env: { ...process.env, GO111MODULE: 'off', GOPATH: '/usr/share/gocode', GOFLAGS: '', GOPROXY: 'off' },
  stdio: 'inherit',
});
const upstream: ChildProcess = spawn('taskset', ['-c', PEER_CPU, go, 'server', 'framed', 'binary', 'G'], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const upstreamPort = await new Promise<number>((resolve) => {
  let out = '';
  upstream.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    const m = /^(\d+)\n/.exec(out);
    if (m !== null) resolve(Number(m[1]));
  });
});

const runtime = await createRuntime({ log: () => undefined });
const config = parseConfig(`
[servers.probe]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:1" }
access_log = false
route = { upstreams = [{ endpoint = "127.0.0.1:${upstreamPort}"${args.mux ? ', multiplex = true' : ''} }] }
`);
// The worker's own thrift servers (servers.ts): the ThriftServer options and the handler it gives
// them (the slot's service behind withPseudonyms), so the path counted is the one loch runs.
// Until 2026-12-05 this built ThriftServer over ThriftProxyService itself, which dispatched while
// the worker's handler sent every call through call()'s promise: the counts here hid that.
const servers = new ThriftServers(new ProxyLog('warn', 'probe'), 0);
servers.precommit(config.thriftServers);
servers.commit(config.thriftServers);
const listener = await runtime.driver.listenTcp({ host: '127.0.0.1', port: 0 });
let stopping = false;
const accepting = acceptLoop(listener, (stream) => servers.serve('probe', stream), {
  stopping: () => stopping,
});
const port = (listener.localAddress as { port: number }).port;

/** One load run of `seconds`: the calls the load generator made. */
async function load(seconds: string): Promise<number> {
  const child = spawn(
    'taskset',
    ['-c', PEER_CPU, go, 'load', String(port), 'framed', 'binary', args.connections, seconds, args.size],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  await new Promise<void>((resolve, reject) =>
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`load exited ${code}`)))),
  );
  const r = JSON.parse(out.trim().split('\n').pop()!) as { calls: number; errors: number };
  if (r.errors > 0) throw new Error(`${r.errors} failed calls`);
  return r.calls;
}

const per = (n: number, calls: number): string => (n / calls).toFixed(3);
await load('2'); // warm: connections made, code optimized

// 0. CPU per call with nothing attached (this process's user + system; the peers' aside).
if (phases.has('cpu')) {
  const cpu0 = process.cpuUsage();
  const calls = await load(args.seconds);
  const cpu = process.cpuUsage(cpu0);
  console.log(
    `cpu (${calls} calls, nothing attached): ${((cpu.user + cpu.system) / calls).toFixed(1)} us per call, ` +
      `user ${(cpu.user / calls).toFixed(1)}`,
  );
}

// 1. Async resources and promise reaction jobs.
if (phases.has('hooks')) {
  const created = new Map<string, number>();
  const types = new Map<number, string>();
  let reactions = 0;
  const hook = createHook({
    init(id, type) {
      created.set(type, (created.get(type) ?? 0) + 1);
      if (type === 'PROMISE') types.set(id, type);
    },
    before(id) {
      if (types.has(id)) reactions++;
    },
    promiseResolve() {},
    destroy(id) {
      types.delete(id);
    },
  });
  hook.enable();
  const calls = await load(args.seconds);
  hook.disable();
  console.log(`async resources per call (${calls} calls, hook on):`);
  for (const [type, n] of [...created].sort((a, b) => b[1] - a[1]))
    console.log(`  ${type.padEnd(12)} ${per(n, calls)}`);
  console.log(`  promise reaction jobs run: ${per(reactions, calls)}`);
}

// 2. Crossings.
if (phases.has('crossings')) {
  const native = loadNative();
  if (!('error' in native) && typeof native.binding.crossings === 'function') {
    const c0 = native.binding.crossings();
    const calls = await load(args.seconds);
    const c1 = native.binding.crossings();
    console.log(
      `crossings per call (${calls} calls, nothing attached): submit() ${per(c1[0] - c0[0], calls)}, ` +
        `completion callbacks ${per(c1[1] - c0[1], calls)}`,
    );
  }
}

// 3. Bytes allocated on V8's heap, by site.
if (phases.has('heap')) {
  interface CallFrame {
    functionName: string;
    url: string;
    lineNumber: number;
  }
  interface ProfileNode {
    callFrame: CallFrame;
    selfSize: number;
    children: ProfileNode[];
  }
  const session = new Session();
  session.connect();
  const post = <T>(method: string, params?: object): Promise<T> =>
    new Promise((resolve, reject) =>
      session.post(method, params, (error, result) => (error ? reject(error) : resolve(result as T))),
    );
  await post('HeapProfiler.enable');
  await post('HeapProfiler.startSampling', {
    samplingInterval: Number(args.interval),
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  const calls = await load(args.seconds);
  const { profile } = await post<{ profile: { head: ProfileNode } }>('HeapProfiler.stopSampling');
  session.disconnect();
  const name = (f: CallFrame): string => {
    const url = f.url.startsWith('file://') ? fileURLToPath(f.url) : f.url;
    const rel = url.startsWith(repo) ? url.slice(repo.length + 1) : url === '' ? '(native)' : url;
    return `${f.functionName || '(anonymous)'} ${rel}:${f.lineNumber + 1}`;
  };
  const isLoch = (f: CallFrame): boolean => f.url.includes(repo) && !f.url.includes('node_modules');
  const bySite = new Map<string, number>();
  const byLoch = new Map<string, number>();
  let total = 0;
  const walk = (node: ProfileNode, lochFrame: string): void => {
    const frame = isLoch(node.callFrame) ? name(node.callFrame) : lochFrame;
    if (node.selfSize > 0) {
      total += node.selfSize;
      const site = name(node.callFrame);
      bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
      byLoch.set(frame, (byLoch.get(frame) ?? 0) + node.selfSize);
    }
    for (const child of node.children) walk(child, frame);
  };
  walk(profile.head, '(no loch frame)');
  const top = Number(args.top);
  const show = (m: Map<string, number>): void => {
    for (const [site, bytes] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top))
      console.log(`  ${(bytes / calls).toFixed(1).padStart(8)}  ${site}`);
  };
  console.log(
    `heap bytes allocated per call (${calls} calls, sampling every ${args.interval} B): ${(total / calls).toFixed(0)}`,
  );
  console.log(' by allocating function:');
  show(bySite);
  console.log(" by loch's nearest frame:");
  show(byLoch);
}

stopping = true;
await listener.close();
await accepting.catch(() => undefined);
await servers.shutdown(0);
upstream.kill();
await runtime.close();
process.exit(0);
