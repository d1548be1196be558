/**
 * OpenSSL's multi-thread cost in isolation (issue 13: what a second worker costs per handshake):
 * T threads of one process each run N in-memory TLS 1.3 handshakes (ECDSA P-256, X25519, both
 * ends in the thread, Loch's engine from native/ of this checkout: no sockets, no ring, no
 * wake-ups, a few JavaScript calls per flight), and each thread's CPU time (its /proc schedstat)
 * per handshake is printed. 1 thread against 2 is what a second thread adds per handshake
 * through what OpenSSL 3.0 shares between the threads of a process (its default library
 * context: locks, method caches, reference counts; nginx's workers are processes and share
 * none). `--env K=V` runs the children with a variable set (an A/B of an engine switch): rounds
 * alternate the order, each point in a fresh process.
 *
 * Usage: node bench/https/openssl-threads.mjs [--threads 1,2] [--handshakes 1500] [--rounds 3]
 *   [--resumed] [--env K=V]
 * Needs the openssl CLI (a throwaway key and certificate in a temp dir) and a built addon.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

/** This thread's CPU time in nanoseconds (schedstat's first field). */
const threadCpuNs = () => Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);

/** One thread's run: `n` handshakes between a server and a client context of this thread. */
async function runThread({ chain, key, n, resumed }) {
  const { loadTls } = await import('../../native/index.js');
  const loaded = loadTls();
  if ('error' in loaded) throw new Error(loaded.error);
  const { TlsContext, TlsSession, info, flags } = loaded.tls;
  const server = new TlsContext(true, 0x0304, 0x0304, '', '');
  const fail = server.addCertificate(chain, key, ['localhost'], true);
  if (fail) throw new Error(fail);
  const keys = new Uint8Array(80);
  crypto.getRandomValues(keys);
  server.setTicketKeys(keys);
  const client = new TlsContext(false, 0x0304, 0x0304, '', '');
  client.setVerify(false, false);
  const plain = new Uint8Array(16384);
  let session;
  const once = () => {
    const s = new TlsSession(server);
    const c = new TlsSession(client);
    c.setServername('localhost', false);
    if (resumed && session !== undefined) c.setSession(session);
    let toServer = c.feed(null, plain);
    let done = 0;
    for (let i = 0; i < 20 && done !== 3; i++) {
      const toClient = toServer === undefined ? undefined : s.feed(toServer, plain);
      if (info[1] & flags.failed) throw new Error(`server: ${JSON.stringify(s.error())}`);
      if (info[1] & flags.handshakeDone) done |= 1;
      toServer = toClient === undefined ? undefined : c.feed(toClient, plain);
      if (info[1] & flags.failed) throw new Error(`client: ${JSON.stringify(c.error())}`);
      if (info[1] & flags.handshakeDone) done |= 2;
      if (info[1] & flags.newSession) session = c.session();
    }
    if (done !== 3) throw new Error('handshake did not finish');
    const reused = c.negotiated().sessionReused;
    s.destroy();
    c.destroy();
    return reused;
  };
  // Warm-up: the lazily built OpenSSL state (method stores, first fetches) and this code.
  for (let i = 0; i < 50; i++) once();
  const before = threadCpuNs();
  let reusedCount = 0;
  for (let i = 0; i < n; i++) if (once()) reusedCount++;
  return { cpuNs: threadCpuNs() - before, n, reused: reusedCount };
}

if (!isMainThread) {
  runThread(workerData).then(
    (r) => parentPort.postMessage(r),
    (error) => parentPort.postMessage({ error: String(error?.stack ?? error) }),
  );
} else if (process.env.OPENSSL_THREADS_CHILD !== undefined) {
  // A child: T threads started together, each result printed as JSON.
  const { threads, n, chain, key, resumed } = JSON.parse(process.env.OPENSSL_THREADS_CHILD);
  const results = await Promise.all(
    Array.from(
      { length: threads },
      () =>
        new Promise((resolve, reject) => {
          const w = new Worker(new URL(import.meta.url), { workerData: { chain, key, n, resumed } });
          w.once('message', (m) => (m.error ? reject(new Error(m.error)) : resolve(m)));
          w.once('error', reject);
        }),
    ),
  );
  process.stdout.write(`${JSON.stringify(results)}\n`);
  process.exit(0);
} else {
  const { values } = parseArgs({
    options: {
      threads: { type: 'string', default: '1,2' },
      handshakes: { type: 'string', default: '1500' },
      rounds: { type: 'string', default: '3' },
      env: { type: 'string', multiple: true, default: [] },
      resumed: { type: 'boolean', default: false },
    },
  });
  const dir = mkdtempSync(join(tmpdir(), 'loch-openssl-threads-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  const chain = readFileSync(join(dir, 'cert.pem'), 'utf8');
  const key = readFileSync(join(dir, 'key.pem'), 'utf8');
  rmSync(dir, { recursive: true, force: true });
  const n = Number(values.handshakes);
  const rows = [];
  for (let round = 1; round <= Number(values.rounds); round++) {
    const modes = ['base', ...values.env];
    if (round % 2 === 0) modes.reverse();
    for (const threads of values.threads.split(',').map(Number)) {
      for (const mode of modes) {
        const r = spawnSync(process.execPath, [new URL(import.meta.url).pathname], {
          env: {
            ...process.env,
            ...(mode === 'base' ? {} : Object.fromEntries([mode.split(/=(.*)/s).slice(0, 2)])),
            OPENSSL_THREADS_CHILD: JSON.stringify({ threads, n, chain, key, resumed: values.resumed }),
          },
          encoding: 'utf8',
        });
        if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
        const results = JSON.parse(r.stdout.trim().split('\n').pop());
        const perThread = results.map((t) => t.cpuNs / t.n / 1000);
        const mean = perThread.reduce((a, b) => a + b, 0) / perThread.length;
        rows.push({ round, threads, mode, mean });
        console.log(
          `round ${round} threads ${threads} ${mode.padEnd(4)} CPU us per handshake (both ends) per thread: ` +
            `${perThread.map((v) => v.toFixed(1)).join(' ')}  mean ${mean.toFixed(1)}` +
            (values.resumed ? `  resumed ${results.map((t) => t.reused).join('/')}` : ''),
        );
      }
    }
  }
  console.log('medians:');
  for (const threads of values.threads.split(',').map(Number))
    for (const mode of ['base', ...values.env]) {
      const v = rows
        .filter((x) => x.threads === threads && x.mode === mode)
        .map((x) => x.mean)
        .sort((a, b) => a - b);
      console.log(
        `  threads ${threads} ${mode.padEnd(4)} ${v[Math.floor(v.length / 2)].toFixed(1)} us (${v.map((x) => x.toFixed(1)).join(', ')})`,
      );
    }
}
