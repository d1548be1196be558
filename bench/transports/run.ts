/**
 * Pooled vs unpooled request cost of @loch/transports' HttpConnector against a local nginx
 * (static 128 B and 11,268 B files, nginx pinned to CPU 1, this client process pinned to CPU 0),
 * beside node:http's Agent with and without keep-alive as the reference. For each driver,
 * mode and concurrency it runs closed-loop request workers for a fixed time and reports
 * requests/s and CPU microseconds of this process per request (process.cpuUsage over the
 * requests done). Writes bench/transports/results.md and prints the table.
 *
 * Usage (from bench/): pnpm exec tsx --conditions=@loch/source transports/run.ts
 *   [--seconds 3] [--concurrency 1,16] [--drivers uring,legacy] [--sizes 128,11268]
 * Not a test: no assertions, numbers depend on a quiet machine.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
// Relative imports: bench/package.json (not owned by this benchmark) does not list these yet.
import { createRequest } from '../../packages/http/src/index.js';
import { endpoint, HttpConnector, UnifiedL4Connector } from '../../packages/transports/src/index.js';
import { createRuntime, type DriverName } from '../../packages/uring-runtime/src/index.js';
import { writeBodies } from '../lib/bodies.js';
import { freePort, machineSummary } from '../lib/measure.js';
import { startNginxStatic } from '../lib/nginx.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '1,16' },
    drivers: { type: 'string', default: 'uring,legacy' },
    sizes: { type: 'string', default: '128,11268' },
  },
});
const seconds = Number(args.seconds);
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

/** Runs `concurrency` closed loops of `one()` for `seconds`; counts requests and this process's CPU. */
async function loop(
  concurrency: number,
  one: () => Promise<void>,
): Promise<{ n: number; errors: number; rps: number; cpu: number }> {
  // warm-up
  const warmEnd = Date.now() + 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < warmEnd) await one().catch(() => {});
    }),
  );
  let n = 0;
  let errors = 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const end = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < end) {
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
  const r = await loop(concurrency, async () => {
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
  return {
    client: `loch ${driver}`,
    mode: pooled ? 'pooled' : 'unpooled',
    size,
    concurrency,
    requests: r.n,
    rps: r.rps,
    cpuUsPerReq: r.cpu,
    errors: r.errors,
  };
}

async function nodeCase(pooled: boolean, port: number, size: number, concurrency: number): Promise<Row> {
  const agent = new Agent({ keepAlive: pooled, maxSockets: concurrency });
  const r = await loop(
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
  return {
    client: 'node:http Agent',
    mode: pooled ? 'pooled' : 'unpooled',
    size,
    concurrency,
    requests: r.n,
    rps: r.rps,
    cpuUsPerReq: r.cpu,
    errors: r.errors,
  };
}

async function main(): Promise<void> {
  try {
    execFileSync('taskset', ['-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
  } catch {
    console.warn('could not pin this process to CPU 0');
  }
  const root = writeBodies(sizes);
  const port = await freePort();
  const nginx = await startNginxStatic({ root, port, cpu: '1' });
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
    `${machineSummary()}; nginx static (1 worker) on CPU 1, client on CPU 0; ${seconds} s per point, closed loop.`,
    'CPU is this client process (utime+stime) per request; lower is better.',
    '',
    '| client | mode | body | concurrency | requests/s | CPU us/req | errors |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.client} | ${r.mode} | ${r.size} B | ${r.concurrency} | ${Math.round(r.rps).toLocaleString('en-US')} | ${r.cpuUsPerReq.toFixed(1)} | ${r.errors} |`,
    ),
    '',
  ];
  writeFileSync(`${here}/results.md`, lines.join('\n'));
  console.log(lines.join('\n'));
}

await main();
