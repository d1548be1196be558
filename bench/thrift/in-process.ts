/**
 * loch's CPU per relayed Thrift call measured inside one process, A/B: loch's ThriftServer with
 * ThriftProxyService (as a worker runs them: framed/THeader/TTHeader, FIFO, the worker's
 * options) in this node process, the Go thrift server upstream and the Go load generator (the
 * peers of bench:thrift, apps/proxy/test/thrift/go/thrift_peer.go: 64 connections, framed
 * binary, closed loop) as separate processes pinned to CPU 0. This process's own CPU
 * (process.cpuUsage: user and system, so loch's work and its syscalls, not the peers') per call,
 * for two servers side by side on one upstream pool: A relays calls in place (`callsInPlace`,
 * what the worker does) and B copies them into the connection's reader (the option off),
 * measured in interleaved rounds so both see the same machine. Per-call CPU moves with the
 * machine's load; compare A and B within a run, medians over rounds. Not a throughput number
 * (bench:thrift measures the real proxy against nginx).
 *
 * Usage: tsx --conditions=@loch/source thrift/in-process.ts [--size 10240] [--seconds 2]
 *   [--rounds 5] [--connections 64] [--mux]   (LOCH_DRIVER=uring|legacy picks the driver)
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ThriftServer } from '@loch/thrift';
import { createRuntime } from '@loch/uring-runtime';
import { parseConfig } from '../../apps/proxy/src/config/load.js';
import { ProxyLog } from '../../apps/proxy/src/proxy/log.js';
import { ACCEPTED_FRAMINGS } from '../../apps/proxy/src/thrift/servers.js';
import { ThriftProxyService } from '../../apps/proxy/src/thrift/service.js';
import { ThriftUpstreams } from '../../apps/proxy/src/thrift/upstream.js';

const { values: args } = parseArgs({
  options: {
    size: { type: 'string', default: '10240' },
    seconds: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '5' },
    connections: { type: 'string', default: '64' },
    mux: { type: 'boolean', default: false },
  },
});
const PEER_CPU = '0';
const here = fileURLToPath(new URL('.', import.meta.url));
const GO_SOURCE = join(here, '..', '..', 'apps', 'proxy', 'test', 'thrift', 'go', 'thrift_peer.go');

function buildGoPeer(): string {
  const out = join(mkdtempSync(join(tmpdir(), 'loch-bench-go-')), 'thrift_peer');
  execFileSync('/usr/bin/go', ['build', '-o', out, GO_SOURCE], {
    env: { ...process.env, GO111MODULE: 'off', GOPATH: '/usr/share/gocode', GOFLAGS: '', GOPROXY: 'off' },
    stdio: 'inherit',
  });
  return out;
}

/** Runs `argv` pinned to the peers' CPU; resolves its stdout once it exits. */
function run(argv: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', ['-c', PEER_CPU, ...argv], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${argv[0]} exited ${code}`))));
  });
}

const go = buildGoPeer();
const server: ChildProcess = spawn('taskset', ['-c', PEER_CPU, go, 'server', 'framed', 'binary', 'G'], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const serverPort = await new Promise<number>((resolve) => {
  let out = '';
  server.stdout!.on('data', (d: Buffer) => {
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
route = { upstreams = [{ endpoint = "127.0.0.1:${serverPort}"${args.mux ? ', multiplex = true' : ''} }] }
`);
const probe = config.thriftServers[0]!;
const upstreams = new ThriftUpstreams({ idleTimeout: 30_000 });
const service = new ThriftProxyService(upstreams, probe, new ProxyLog('warn', 'probe'));

/** A server as servers.ts makes it, calls in place or copied. */
async function listen(inPlace: boolean): Promise<{ server: ThriftServer; port: number }> {
  const thrift = new ThriftServer(service, {
    framing: 'auto',
    framings: ACCEPTED_FRAMINGS,
    maxFrameSize: probe.maxFrameSize,
    idleTimeout: probe.timeouts.serverKeepalive,
    readTimeout: probe.timeouts.serverMessage,
    maxConcurrentCalls: probe.maxPipelinedCalls,
    replyOrder: 'request',
    callsInPlace: inPlace,
  });
  const listener = await runtime.driver.listenTcp({ host: '127.0.0.1', port: 0 });
  void thrift.serve(listener);
  return { server: thrift, port: (listener.localAddress as { port: number }).port };
}

const variants = [
  {
    name: 'in place',
    ...(await listen(true)),
    samples: [] as { cpu: number; user: number; calls: number }[],
  },
  { name: 'copied', ...(await listen(false)), samples: [] as { cpu: number; user: number; calls: number }[] },
];

/** One load run against `port`: loch's CPU us per call (all of it: user + system) and user us. */
async function measure(port: number, seconds: string) {
  const cpu0 = process.cpuUsage();
  const out = await run([go, 'load', String(port), 'framed', 'binary', args.connections, seconds, args.size]);
  const cpu = process.cpuUsage(cpu0);
  const r = JSON.parse(out.trim().split('\n').pop()!) as { calls: number; errors: number };
  if (r.errors > 0) throw new Error(`${r.errors} failed calls`);
  return { cpu: (cpu.user + cpu.system) / r.calls, user: cpu.user / r.calls, calls: r.calls };
}

const load0 = loadavg();
for (const v of variants) await measure(v.port, '1'); // warm: connections made, code optimized
const rounds = Number(args.rounds);
for (let i = 0; i < rounds; i++) {
  // Alternating which goes first, so neither always runs after the other.
  for (const v of i % 2 === 0 ? variants : [...variants].reverse())
    v.samples.push(await measure(v.port, args.seconds));
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
console.log(
  `driver ${runtime.driver.name}, ${args.size} B, ${args.mux ? 'multiplexed' : 'exclusive'} upstream, ` +
    `${args.connections} connections, ${rounds} interleaved rounds of ${args.seconds} s; load ${load0
      .map((l) => l.toFixed(2))
      .join(' ')} -> ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
);
for (const v of variants) {
  console.log(
    `  ${v.name.padEnd(8)}: loch CPU us/call ${v.samples.map((s) => s.cpu.toFixed(1)).join('/')} ` +
      `(median ${median(v.samples.map((s) => s.cpu)).toFixed(1)}; user median ${median(v.samples.map((s) => s.user)).toFixed(1)}), ` +
      `calls/s median ${median(v.samples.map((s) => s.calls / Number(args.seconds))).toFixed(0)}`,
  );
}
for (const v of variants) await v.server.close();
upstreams.closeAll();
server.kill();
await runtime.close();
process.exit(0);
