/**
 * Pooled vs unpooled request cost of @loch/transports' HttpConnector against a local nginx
 * (static 128 B and 11,268 B files), beside node:http's Agent with and without keep-alive as
 * the reference. For each body size, concurrency, mode and client it runs closed-loop request
 * workers for a fixed number of requests, `--repeat` times, and reports the median requests/s
 * and CPU microseconds of this process per request (process.cpuUsage over the run). A fixed
 * count (not a fixed time) keeps CPU per request meaningful on a loaded machine. `--pin` pins
 * nginx to CPU 1 and this process to CPU 0 (only useful on a quiet machine).
 * Writes bench/results/transports.md and prints the table.
 *
 * Usage (from bench/): pnpm exec tsx --conditions=@loch/source transports/run.ts
 *   [--requests 20000] [--unpooled-requests 3000] [--repeat 3] [--concurrency 1,16]
 *   [--drivers uring,legacy] [--sizes 128,11268] [--pin]
 * Not a test: no assertions, numbers depend on a quiet machine.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createRequest } from '@loch/http';
import { endpoint, HttpConnector, UnifiedL4Connector } from '@loch/transports';
import { createRuntime, type DriverName } from '@loch/uring-runtime';
import { runnerArgs } from '../lib/args.js';
import { writeBodies } from '../lib/bodies.js';
import { freePort, machineSummary } from '../lib/measure.js';
import { startNginxStatic } from '../lib/nginx.js';

const { values: args } = parseArgs({
  args: runnerArgs(),
  options: {
    requests: { type: 'string', default: '20000' },
    'unpooled-requests': { type: 'string', default: '3000' },
    repeat: { type: 'string', default: '3' },
    pin: { type: 'boolean', default: false },
    concurrency: { type: 'string', default: '1,16' },
    drivers: { type: 'string', default: 'uring,legacy' },
    sizes: { type: 'string', default: '128,11268' },
  },
});
const pooledRequests = Number(args.requests);
const unpooledRequests = Number(args['unpooled-requests']);
const repeat = Number(args.repeat);
const concurrencies = args.concurrency.split(',').map(Number);
const sizes = args.sizes.split(',').map(Number);
const here = fileURLToPath(new URL('.', import.meta.url));

interface Row {
  client: string;
  mode: 'pooled' | 'unpooled';
  size: number;
  concurrency: number;
  requests: number;
  rps: number;
  cpuUsPerReq: number;
  errors: number;
}

interface Sample {
  n: number;
  errors: number;
  rps: number;
  cpu: number;
}

/** Runs `concurrency` closed loops of `one()` until `total` requests are done; counts this process's CPU. */
async function runOnce(total: number, concurrency: number, one: () => Promise<void>): Promise<Sample> {
  let started = 0;
  let n = 0;
  let errors = 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (started < total) {
        started++;
        try {
          await one();
          n++;
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return { n, errors, rps: n / elapsed, cpu: (cpu.user + cpu.system) / Math.max(n, 1) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** A warm-up run, then `repeat` measured runs; the medians. */
async function loop(pooled: boolean, concurrency: number, one: () => Promise<void>): Promise<Sample> {
  const total = pooled ? pooledRequests : unpooledRequests;
  await runOnce(Math.ceil(total / 4), concurrency, one);
  const samples: Sample[] = [];
  for (let i = 0; i < repeat; i++) samples.push(await runOnce(total, concurrency, one));
  return {
    n: samples.reduce((a, b) => a + b.n, 0),
    errors: samples.reduce((a, b) => a + b.errors, 0),
    rps: median(samples.map((x) => x.rps)),
    cpu: median(samples.map((x) => x.cpu)),
  };
}

/** One table row from a client's measured sample. */
function toRow(client: string, pooled: boolean, size: number, concurrency: number, r: Sample): Row {
  return {
    client,
    mode: pooled ? 'pooled' : 'unpooled',
    size,
    concurrency,
    requests: r.n,
    rps: r.rps,
    cpuUsPerReq: r.cpu,
    errors: r.errors,
  };
}

async function lochCase(
  driver: DriverName,
  pooled: boolean,
  port: number,
  size: number,
  concurrency: number,
): Promise<Row> {
  const runtime = await createRuntime({ driver, log: () => undefined });
  const connector = new HttpConnector(new UnifiedL4Connector({ runtime }), {
    pool: { maxIdlePerKey: pooled ? 64 : 0 },
  });
  const key = endpoint(`http://127.0.0.1:${port}`);
  const req = createRequest('GET', `/${size}`);
  const r = await loop(pooled, concurrency, async () => {
    const res = await connector.request(key, req);
    for await (const _ of res.body) {
      // drain
    }
  });
  const stats = connector.stats();
  connector.close();
  await runtime.close();
  if (pooled && stats.created > concurrency * 2)
    console.warn(`pooled ${driver}: ${stats.created} connections created`);
  return toRow(`loch ${driver}`, pooled, size, concurrency, r);
}

async function nodeCase(pooled: boolean, port: number, size: number, concurrency: number): Promise<Row> {
  const agent = new Agent({ keepAlive: pooled, maxSockets: concurrency });
  const r = await loop(
    pooled,
    concurrency,
    () =>
      new Promise<void>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, path: `/${size}`, agent }, (res) => {
          res.on('data', () => {});
          res.on('end', resolve);
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      }),
  );
  agent.destroy();
  return toRow('node:http Agent', pooled, size, concurrency, r);
}

async function main(): Promise<void> {
  if (args.pin) {
    try {
      execFileSync('taskset', ['-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
    } catch {
      console.warn('could not pin this process to CPU 0');
    }
  }
  const root = writeBodies(sizes);
  const port = await freePort();
  const nginx = await startNginxStatic({ root, port, ...(args.pin ? { cpu: '1' } : {}) });
  const load = loadavg()[0]!.toFixed(1);
  const rows: Row[] = [];
  try {
    const drivers = args.drivers.split(',') as DriverName[];
    for (const size of sizes)
      for (const concurrency of concurrencies)
        for (const pooled of [true, false]) {
          for (const driver of drivers) {
            try {
              rows.push(await lochCase(driver, pooled, port, size, concurrency));
            } catch (error) {
              console.warn(`skipping ${driver}: ${(error as Error).message}`);
            }
            console.log(JSON.stringify(rows.at(-1)));
          }
          rows.push(await nodeCase(pooled, port, size, concurrency));
          console.log(JSON.stringify(rows.at(-1)));
        }
  } finally {
    await nginx.stop();
  }
  const lines = [
    '# @loch/transports: pooled vs unpooled request cost',
    '',
    `${machineSummary()}; nginx static (1 worker)${args.pin ? ' on CPU 1, client on CPU 0' : ', not pinned'}; load average ${load} at start.`,
    `Closed loop; per point a warm-up, then ${repeat} runs of ${pooledRequests} (pooled) / ${unpooledRequests} (unpooled) requests; medians.`,
    'CPU is this client process (utime+stime) per request; lower is better. requests/s depends on the load of the machine.',
    '',
    '| client | mode | body | concurrency | requests/s | CPU us/req | errors |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.client} | ${r.mode} | ${r.size} B | ${r.concurrency} | ${Math.round(r.rps).toLocaleString('en-US')} | ${r.cpuUsPerReq.toFixed(1)} | ${r.errors} |`,
    ),
    '',
  ];
  writeFileSync(`${here}/../results/transports.md`, lines.join('\n'));
  console.log(lines.join('\n'));
}

await main();
