/**
 * Memory per idle TLS connection on the server: a Loch TLS server (each driver) and a node:tls
 * server in child processes, N node:tls clients (TLS 1.3, handshake done, then silent) from this
 * process; the server reports RSS and V8 heap after a GC, before and after. A reading of the
 * engine's per-connection cost, not the nginx comparison (bench/).
 * Run: pnpm --filter @loch/tls exec tsx --conditions=@loch/source bench/idle-memory.ts [-- --n 2000]
 */
import { execFileSync, fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as nodeTls from 'node:tls';

const i = process.argv.indexOf('--n');
const N = i > 0 ? Number(process.argv[i + 1]) : 2000;
const role = process.env.LOCH_IDLE_ROLE;

type Report = { rss: number; heap: number; external: number };

function report(): Report {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed, external: m.external + m.arrayBuffers };
}

if (role !== undefined) {
  // Server side.
  const cert = process.env.LOCH_IDLE_CERT!;
  const key = process.env.LOCH_IDLE_KEY!;
  let port = 0;
  if (role === 'node') {
    const server = nodeTls.createServer({ cert, key }, (s) => s.on('error', () => undefined));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  } else {
    const { TlsServerContext, tlsAccept } = await import('@loch/tls');
    const { createRuntime, TcpListener } = await import('@loch/uring-runtime');
    const runtime = await createRuntime({ driver: role as 'uring' | 'legacy', log: () => undefined });
    const context = new TlsServerContext({ certificates: [{ chain: cert, key }] });
    const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, backlog: 4096, runtime });
    port = (listener.localAddress as { port: number }).port;
    const streams: unknown[] = [];
    void (async () => {
      for (;;) {
        const raw = await listener.accept().catch(() => undefined);
        if (raw === undefined) return;
        tlsAccept(raw, context)
          .then((s) => {
            streams.push(s);
            s.recvTo({ onRecv: () => undefined }); // parked, as an idle keep-alive connection is
          })
          .catch(() => undefined);
      }
    })();
  }
  process.send!({ port, before: report() });
  process.on('message', () => process.send!({ after: report() }));
} else {
  const dir = mkdtempSync(join(tmpdir(), 'loch-idle-'));
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
      ...['-keyout', 'key.pem', '-out', 'cert.pem', '-days', '1', '-subj', '/CN=localhost'],
    ],
    { cwd: dir, stdio: 'ignore' },
  );
  const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
  const key = readFileSync(join(dir, 'key.pem'), 'utf8');
  console.log(`${N} idle TLS 1.3 connections (ECDSA P-256), server memory per connection after GC`);
  console.log('| server | RSS KiB/conn | V8 heap B/conn | external B/conn |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const server of ['node', 'legacy', 'uring']) {
    const child = fork(process.argv[1]!, [], {
      env: { ...process.env, LOCH_IDLE_ROLE: server, LOCH_IDLE_CERT: cert, LOCH_IDLE_KEY: key },
      execArgv: [...process.execArgv, '--expose-gc'],
    });
    const first = (await new Promise((r) => child.once('message', r))) as { port: number; before: Report };
    const sockets: nodeTls.TLSSocket[] = [];
    for (let k = 0; k < N; k++) {
      sockets.push(
        await new Promise<nodeTls.TLSSocket>((resolve, reject) => {
          const s = nodeTls.connect({ host: '127.0.0.1', port: first.port, rejectUnauthorized: false });
          s.once('secureConnect', () => resolve(s));
          s.once('error', reject);
        }),
      );
    }
    await new Promise((r) => setTimeout(r, 500));
    child.send('report');
    const { after } = (await new Promise((r) => child.once('message', r))) as { after: Report };
    const per = (k: keyof Report) => (after[k] - first.before[k]) / N;
    console.log(
      `| ${server} | ${(per('rss') / 1024).toFixed(1)} | ${per('heap').toFixed(0)} | ${per('external').toFixed(0)} |`,
    );
    for (const s of sockets) s.destroy();
    child.kill();
  }
  rmSync(dir, { recursive: true, force: true });
}
