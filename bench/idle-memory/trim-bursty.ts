/**
 * How often the idle trim runs under bursty traffic (issue 18): HttpServer on the thread's
 * runtime (idle trim on, LOCH_IDLE_TRIM_MS or 1000 ms), a client child process sending one
 * request every `gapMs` for `seconds`, on one keep-alive connection. Prints the runtime's trims,
 * the time spent in them, the period in force at the end, and the server's CPU per request.
 * Usage (from bench/):
 *   [LOCH_DRIVER=legacy] node --import tsx --conditions=@loch/source idle-memory/trim-bursty.ts \
 *     [gapMs=1500] [seconds=30]
 */
import { fork } from 'node:child_process';
import { currentRuntime, TcpListener } from '@loch/uring-runtime';
import { createResponse, FixedBody, HttpHeaders, HttpServer } from '../../packages/http/src/index.js';

if (process.argv[2] === 'client') {
  const net = await import('node:net');
  const [port, gapMs, seconds] = process.argv.slice(3).map(Number) as [number, number, number];
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  const req = Buffer.from('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
  let got = '';
  let pending: (() => void) | undefined;
  sock.on('data', (d) => {
    got += d.toString('latin1');
    const end = got.indexOf('hello\n');
    if (end >= 0) {
      got = got.slice(end + 6);
      pending?.();
    }
  });
  const end = Date.now() + seconds * 1000;
  let n = 0;
  while (Date.now() < end) {
    await new Promise<void>((r) => {
      pending = r;
      sock.write(req);
    });
    n++;
    await new Promise((r) => setTimeout(r, gapMs));
  }
  process.send?.(n);
  sock.end();
} else {
  const gapMs = Number(process.argv[2] ?? 1500);
  const seconds = Number(process.argv[3] ?? 30);
  const body = new FixedBody('hello\n');
  const headers = new HttpHeaders([['content-type', 'text/plain']]);
  const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0 });
  const server = new HttpServer({ call: () => createResponse(200, { headers, body }) });
  void server.serve(listener);
  const runtime = await currentRuntime();
  const local = listener.localAddress;
  if (local.family === 'unix') throw new Error('tcp expected');
  const c0 = process.cpuUsage();
  const child = fork(
    new URL(import.meta.url).pathname,
    ['client', String(local.port), String(gapMs), String(seconds)],
    {
      execArgv: ['--import', 'tsx'],
    },
  );
  const requests = await new Promise<number>((r) => child.once('message', (n) => r(n as number)));
  const c = process.cpuUsage(c0);
  console.log(
    `driver ${runtime.driver.name} gap ${gapMs} ms, ${seconds} s: ${requests} requests, ${runtime.idleTrims} trims, ` +
      `${runtime.idleTrimTimeMs.toFixed(0)} ms in trims, period now ${runtime.idleTrimPeriodMs} ms, ` +
      `server CPU ${((c.user + c.system) / 1000).toFixed(0)} ms (${((c.user + c.system) / requests).toFixed(0)} us/request)`,
  );
  process.exit(0);
}
