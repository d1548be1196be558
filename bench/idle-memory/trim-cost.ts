/**
 * What one idle trim costs a worker (issue 18): the trim's own duration, the code it throws away
 * (V8 code space before/after), and the server's CPU for the first 100 requests after an idle gap
 * with a trim, after the same gap without one, and in steady state. The runtime's own trim is off
 * (LOCH_IDLE_TRIM_MS=0); this process calls the same trim (trimMemory of @loch/native) itself so
 * it can time it. The client is a child process on one keep-alive connection, one request at a
 * time. Usage (from bench/):
 *   LOCH_IDLE_TRIM_MS=0 [LOCH_DRIVER=legacy] node --import tsx --conditions=@loch/source \
 *     idle-memory/trim-cost.ts [rounds]
 */
import { fork } from 'node:child_process';
import { getHeapSpaceStatistics } from 'node:v8';
import { TcpListener } from '@loch/uring-runtime';
import { memoryTrimmer } from '../../native/index.js';
import { createResponse, FixedBody, HttpHeaders, HttpServer } from '../../packages/http/src/index.js';

if (process.argv[2] === 'client') {
  const net = await import('node:net');
  const port = Number(process.argv[3]);
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  const req = Buffer.from('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
  let pending: (() => void) | undefined;
  let got = '';
  sock.on('data', (d) => {
    got += d.toString('latin1');
    const end = got.indexOf('hello\n');
    if (end >= 0) {
      got = got.slice(end + 6);
      pending?.();
    }
  });
  process.on('message', async (n: number) => {
    for (let i = 0; i < n; i++) {
      await new Promise<void>((r) => {
        pending = r;
        sock.write(req);
      });
    }
    process.send?.('done');
  });
  process.on('disconnect', () => process.exit(0));
} else {
  const rounds = Number(process.argv[2] ?? 5);
  const trim = memoryTrimmer();
  if (trim === undefined) throw new Error('no addon');
  const body = new FixedBody('hello\n');
  const headers = new HttpHeaders([['content-type', 'text/plain']]);
  const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0 });
  const server = new HttpServer({ call: () => createResponse(200, { headers, body }) });
  void server.serve(listener);
  const local = listener.localAddress;
  if (local.family === 'unix') throw new Error('tcp expected');
  const child = fork(new URL(import.meta.url).pathname, ['client', String(local.port)], {
    execArgv: ['--import', 'tsx'],
  });
  const batch = (n: number) =>
    new Promise<number>((r) => {
      const c0 = process.cpuUsage();
      child.once('message', () => {
        const c = process.cpuUsage(c0);
        r((c.user + c.system) / n);
      });
      child.send(n);
    });
  // With MARKS=1, lines around the measured batches for counting --trace-opt output.
  const mark = (what: string) => {
    if (process.env.MARKS === '1') process.stdout.write(`MARK ${what}\n`);
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const code = () => {
    const s = getHeapSpaceStatistics().find((x) => x.space_name === 'code_space');
    return s?.space_used_size ?? 0;
  };
  await batch(20000);
  const rows: string[] = [];
  for (let i = 0; i < rounds; i++) {
    await batch(2000);
    const steady = await batch(100);
    await sleep(1500);
    mark('gap-notrim');
    const gapNoTrim = await batch(100);
    mark('end');
    await batch(2000);
    await sleep(1500);
    mark('before-trim');
    const before = code();
    const t0 = performance.now();
    trim();
    const ms = performance.now() - t0;
    mark('trimmed');
    const after = code();
    mark('gap-trim');
    const gapTrim = await batch(100);
    const next = await batch(100);
    mark('end');
    rows.push(
      `| ${i + 1} | ${ms.toFixed(1)} | ${(before / 1024).toFixed(0)} -> ${(after / 1024).toFixed(0)} | ${steady.toFixed(1)} | ${gapNoTrim.toFixed(1)} | ${gapTrim.toFixed(1)} | ${next.toFixed(1)} |`,
    );
  }
  console.log(`driver ${process.env.LOCH_DRIVER ?? 'auto'}`);
  console.log(
    '| round | trim ms | code space KiB | us/req steady | first 100 after gap, no trim | first 100 after gap + trim | next 100 |',
  );
  for (const r of rows) console.log(r);
  child.disconnect();
  process.exit(0);
}
