/**
 * A fixed-count CPU profile of the Loch gateway (issue 19): starts the echo upstream
 * (upstream.ts) and the gateway (loch-gateway.ts) under `node --cpu-prof`, sends exactly
 * `--calls` POST /echo requests of one payload over `--connections` keep-alive connections from
 * this process, stops the gateway (it writes its .cpuprofile on exit), and prints the CPU us
 * per call of the gateway process (utime+stime of /proc over the calls) and the profile's top
 * self-time functions. A fixed amount of work, not a duration: two builds compare by their
 * profiles. Not a load test (bench:gateway is).
 *
 * Run: pnpm --filter @loch/bench exec tsx --conditions=@loch/source gateway/profile.ts
 *        [--calls 20000] [--connections 16] [--payload small|large] [--gateway loch|node]
 *        [--upstream exclusive|multiplexed|multiplexed-client] [--upstream-connections 32]
 *        [--out DIR] [--no-prof] [--events] [--segments]
 *   (node: node-gateway.ts, the node:http + npm thrift one; --upstream and
 *   --upstream-connections set up the loch gateway's ClientExchange, loch-gateway.ts)
 * --events also counts kernel events per call in the gateway process over the counted calls
 * (`perf stat` tracepoints: every syscall, io_uring submissions and completions,
 * io_uring_enter, send/recv/write/read-family syscalls, epoll waits; needs root): how many
 * kernel crossings and sends a call costs, which does not depend on how loaded the machine is.
 * --segments counts the TCP segments per call on each of the gateway's two sides, each way,
 * data and bare ACKs apart (tcp:tcp_probe, which fires for every segment an established socket
 * receives, filtered by the receiving socket's ports: system-wide, so only this run's ports
 * count; needs root). On loopback the receiving side's TCP work runs in the sender's system
 * time, so segments the gateway sends are system time it pays for both ends.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, waitForPort } from '../lib/measure.js';
import { PAYLOADS } from './payloads.js';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '20000' },
    connections: { type: 'string', default: '16' },
    payload: { type: 'string', default: 'small' },
    gateway: { type: 'string', default: 'loch' },
    out: { type: 'string' },
    'no-prof': { type: 'boolean', default: false },
    events: { type: 'boolean', default: false },
    segments: { type: 'boolean', default: false },
    upstream: { type: 'string', default: 'exclusive' },
    'upstream-connections': { type: 'string', default: '32' },
  },
});
const calls = Number(values.calls);
const connections = Number(values.connections);
const body = (values.payload === 'large' ? PAYLOADS[1] : PAYLOADS[0])!.body;
const here = new URL('.', import.meta.url).pathname;
const out = values.out ?? mkdtempSync(join(tmpdir(), 'loch-gateway-prof-'));

function node(script: string, args: (string | number)[], prof: boolean) {
  const flags = prof ? ['--cpu-prof', `--cpu-prof-dir=${out}`] : [];
  return spawn(
    process.execPath,
    [...flags, '--conditions=@loch/source', '--import', 'tsx', join(here, script), ...args.map(String)],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
}

/** User and system CPU seconds of a process so far. */
function cpuSeconds(pid: number): { user: number; system: number } {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
}

const upstreamPort = await freePort();
const port = await freePort();
const upstream = node('upstream.ts', [upstreamPort], false);
await waitForPort(upstreamPort);
const script = values.gateway === 'node' ? 'node-gateway.ts' : 'loch-gateway.ts';
const gateway = node(
  script,
  values.gateway === 'node'
    ? [port, upstreamPort]
    : [port, upstreamPort, values.upstream, values['upstream-connections']],
  !values['no-prof'],
);
await waitForPort(port);

const agent = new Agent({ keepAlive: true, maxSockets: connections });
function post(): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/echo',
        method: 'POST',
        agent,
        headers: { 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
        res.resume();
        res.on('end', resolve);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

// Warm-up outside the count (JIT), then the counted calls.
const lanes = (n: number) =>
  Promise.all(
    Array.from({ length: connections }, async (_, lane) => {
      for (let i = lane; i < n; i += connections) await post();
    }),
  );
await lanes(2000);
/** The tracepoints --events counts. */
const EVENTS = [
  'raw_syscalls:sys_enter',
  'io_uring:io_uring_submit_req',
  'io_uring:io_uring_complete',
  'syscalls:sys_enter_io_uring_enter',
  'syscalls:sys_enter_sendmsg',
  'syscalls:sys_enter_sendto',
  'syscalls:sys_enter_write',
  'syscalls:sys_enter_writev',
  'syscalls:sys_enter_recvmsg',
  'syscalls:sys_enter_recvfrom',
  'syscalls:sys_enter_read',
  'syscalls:sys_enter_epoll_wait',
  'syscalls:sys_enter_futex',
  'context-switches',
] as const;
/**
 * The segments --segments counts, in perf's output order: [label, tcp_probe filter]. `sport` is
 * the port of the socket that received the segment.
 */
const SEGMENTS: readonly (readonly [string, string])[] = [
  ['client->gw data', `sport == ${port} && data_len > 0`],
  ['client->gw ack', `sport == ${port} && data_len == 0`],
  ['gw->client data', `dport == ${port} && data_len > 0`],
  ['gw->client ack', `dport == ${port} && data_len == 0`],
  ['gw->upstream data', `sport == ${upstreamPort} && data_len > 0`],
  ['gw->upstream ack', `sport == ${upstreamPort} && data_len == 0`],
  ['upstream->gw data', `dport == ${upstreamPort} && data_len > 0`],
  ['upstream->gw ack', `dport == ${upstreamPort} && data_len == 0`],
];

/** A `perf stat` counting `args` until stopped; its CSV output when it ended. */
function perfStat(args: string[]): { stop(): Promise<string> } {
  const perf = spawn('perf', ['stat', '-x', ',', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let text = '';
  perf.stderr?.on('data', (d: Buffer) => {
    text += d.toString();
  });
  const exited = new Promise((resolve) => perf.on('exit', resolve));
  return {
    async stop() {
      perf.kill('SIGINT');
      await exited;
      return text;
    },
  };
}

const eventsPerf = values.events ? perfStat(['-e', EVENTS.join(','), '-p', String(gateway.pid)]) : undefined;
const segmentsPerf = values.segments
  ? perfStat(['-a', ...SEGMENTS.flatMap(([, filter]) => ['-e', 'tcp:tcp_probe', '--filter', filter])])
  : undefined;
// perf attaches asynchronously: give it a moment before the counted calls.
if (eventsPerf !== undefined || segmentsPerf !== undefined) await new Promise((r) => setTimeout(r, 300));
const before = cpuSeconds(gateway.pid!);
await lanes(calls);
const after = cpuSeconds(gateway.pid!);
const user = after.user - before.user;
const system = after.system - before.system;
const perfOut = (await eventsPerf?.stop()) ?? '';
const segmentsOut = (await segmentsPerf?.stop()) ?? '';
agent.destroy();
gateway.kill('SIGTERM');
await new Promise((r) => gateway.once('exit', r));
upstream.kill('SIGTERM');

const setup = values.gateway === 'node' ? '' : ` (${values.upstream} x${values['upstream-connections']})`;
console.log(
  `${values.gateway}${setup} ${values.payload}: ${calls} calls, gateway CPU ${(((user + system) * 1e6) / calls).toFixed(1)} us/call ` +
    `(user ${((user * 1e6) / calls).toFixed(1)}, system ${((system * 1e6) / calls).toFixed(1)})`,
);
/** The counts of perf stat's CSV lines (value,unit,event,...; "<not supported>" when absent). */
function perfCounts(text: string): { event: string; value: number }[] {
  return text
    .trim()
    .split('\n')
    .map((line) => line.split(','))
    .filter((fields) => fields.length >= 3)
    .map((fields) => ({ event: fields[2] as string, value: Number(fields[0]) }));
}
if (values.segments) {
  const counts = perfCounts(segmentsOut);
  console.log(
    counts.length !== SEGMENTS.length
      ? `perf stat counted no segments:\n${segmentsOut}`
      : `segments per call: ${counts.map((c, i) => `${SEGMENTS[i]![0]} ${(c.value / calls).toFixed(2)}`).join(', ')}`,
  );
}
if (values.events) {
  const parts = perfCounts(perfOut)
    .filter((c) => Number.isFinite(c.value) && c.value > 0)
    .map((c) => `${c.event.replace(/^.*:(sys_enter_)?/, '')} ${(c.value / calls).toFixed(2)}`);
  console.log(
    parts.length === 0 ? `perf stat counted nothing:\n${perfOut}` : `per call: ${parts.join(', ')}`,
  );
}
if (!values['no-prof']) {
  const file = readdirSync(out).find((f) => f.endsWith('.cpuprofile'));
  if (file !== undefined) {
    const profile = JSON.parse(readFileSync(join(out, file), 'utf8')) as {
      nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
      samples: number[];
    };
    const self = new Map<number, number>();
    for (const s of profile.samples) self.set(s, (self.get(s) ?? 0) + 1);
    const byName = new Map<string, number>();
    for (const n of profile.nodes) {
      const where = n.callFrame.url.replace(/^.*\/(packages|node_modules)\//, '$1/');
      const key = `${n.callFrame.functionName || '(anonymous)'} ${where}:${n.callFrame.lineNumber + 1}`;
      byName.set(key, (byName.get(key) ?? 0) + (self.get(n.id) ?? 0));
    }
    const total = profile.samples.length;
    console.log(`profile: ${join(out, file)} (${total} samples)`);
    // Self time by package (or Node / the engine), the idle time left out.
    const byPackage = new Map<string, number>();
    let busy = 0;
    for (const n of profile.nodes) {
      const count = self.get(n.id) ?? 0;
      if (count === 0 || n.callFrame.functionName === '(idle)') continue;
      busy += count;
      const m = /packages\/([^/]+)\//.exec(n.callFrame.url);
      const key = m !== null ? `@loch/${m[1]}` : n.callFrame.url === '' ? n.callFrame.functionName : 'node';
      byPackage.set(key, (byPackage.get(key) ?? 0) + count);
    }
    for (const [name, n] of [...byPackage].sort((a, b) => b[1] - a[1]))
      console.log(`${((100 * n) / busy).toFixed(1).padStart(5)}% of busy  ${name}`);
    for (const [name, n] of [...byName].sort((a, b) => b[1] - a[1]).slice(0, 30))
      console.log(`${((100 * n) / total).toFixed(1).padStart(5)}%  ${name}`);
  }
}
