/**
 * Hello-world HTTP/1.1 server benchmark: Loch HttpServer vs node:http vs nginx `return 200`,
 * each serving a fixed 128-byte body on one CPU (taskset -c 1) while wrk runs on CPU 0, in one
 * run. Reports requests/s, latency and CPU microseconds per request (utime+stime of the server
 * process tree over the requests wrk completed), as a markdown table on stdout and in
 * bench/http-hello/results.md.
 *
 * Usage: tsx --conditions=@loch/source http-hello/run.ts [--seconds 10] [--connections 32]
 *   [--drivers uring,legacy]
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runnerArgs } from '../lib/args.js';
import {
  freePort,
  type Measurement,
  machineSummary,
  markdownTable,
  measure,
  type Peer,
  startPeer,
  waitForHttp,
} from '../lib/measure.js';

const { values: args } = parseArgs({
  args: runnerArgs(),
  options: {
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '32' },
    drivers: { type: 'string', default: 'uring,legacy' },
  },
});
const seconds = Number(args.seconds);
const warmupSeconds = Number(args.warmup);
const connections = Number(args.connections);
const SERVER_CPU = '1';
const LOAD_CPU = '0';
const here = fileURLToPath(new URL('.', import.meta.url));
const BODY = 'x'.repeat(127);

async function nginx(port: number): Promise<Peer> {
  const prefix = mkdtempSync(join(tmpdir(), 'loch-bench-hello-nginx-'));
  mkdirSync(join(prefix, 'logs'), { recursive: true });
  const conf = join(prefix, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 1;
user root;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${prefix}/client_body;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  tcp_nodelay on;
  default_type text/plain;
  server {
    listen 127.0.0.1:${port};
    location / { return 200 "${BODY}\\n"; }
  }
}
`,
  );
  return startPeer('nginx', 'nginx', ['-p', prefix, '-c', conf, '-g', 'daemon off;'], { cpu: SERVER_CPU });
}

const peers: { name: string; start(port: number): Promise<Peer> | Peer }[] = [
  { name: 'nginx', start: nginx },
  {
    name: 'node:http',
    start: (port) =>
      startPeer('node:http', 'node', ['--import', 'tsx', join(here, 'node-server.ts'), String(port)], {
        cpu: SERVER_CPU,
      }),
  },
  ...args.drivers.split(',').map((driver) => ({
    name: `loch (${driver})`,
    start: (port: number) =>
      startPeer(
        `loch (${driver})`,
        'node',
        ['--conditions=@loch/source', '--import', 'tsx', join(here, 'loch-server.ts'), String(port)],
        {
          cpu: SERVER_CPU,
          env: { ...process.env, LOCH_DRIVER: driver },
        },
      ),
  })),
];

const results: Measurement[] = [];
for (const spec of peers) {
  const port = await freePort();
  const peer = await spec.start(port);
  try {
    await waitForHttp(port, '/');
    const m = await measure(peer, `http://127.0.0.1:${port}/`, {
      connections,
      seconds,
      cpu: LOAD_CPU,
      warmupSeconds,
    });
    results.push({ ...m, peer: spec.name });
    process.stderr.write(
      `${spec.name}: ${Math.round(m.requestsPerSecond)} req/s, ${m.cpuUsPerRequest.toFixed(2)} us/req\n`,
    );
  } finally {
    await peer.stop();
  }
}

const node = results.find((r) => r.peer === 'node:http');
const table = markdownTable(
  ['server', 'requests/s', 'x node:http', 'p50 ms', 'p99 ms', 'CPU us/request', 'errors'],
  results.map((r) => [
    r.peer,
    r.requestsPerSecond,
    node ? `${(r.requestsPerSecond / node.requestsPerSecond).toFixed(2)}x` : 'n/a',
    r.p50Ms,
    r.p99Ms,
    r.cpuUsPerRequest,
    r.errors,
  ]),
);
const report = `# HTTP/1.1 hello (128 B body), one server CPU

${new Date().toISOString()} — ${machineSummary()}; load average at end ${loadavg()
  .map((l) => l.toFixed(2))
  .join(' ')}.
Server pinned to CPU ${SERVER_CPU}, wrk -t1 -c${connections} -d${seconds}s on CPU ${LOAD_CPU}, ${warmupSeconds}s warm-up each.

${table}
`;
writeFileSync(join(here, 'results.md'), report);
console.log(report);
