/**
 * A fixed-count handshake run for an instruction-counting profiler: a Loch TLS server (uring
 * driver, the session in the ring) on 127.0.0.1 serves HANDSHAKES connections of a Python client
 * in another process (handshake-client.py: handshake, the server's session ticket, close_notify
 * both ways, close), full or resumed, TLS 1.3 with an ECDSA P-256 certificate. Only this process
 * runs under the profiler, so its instructions are the server's; run it twice with different
 * counts and divide the difference, so start-up cancels:
 *   valgrind --tool=callgrind --callgrind-out-file=/tmp/hs.%p node --conditions=@loch/source \
 *     --import tsx packages/tls/bench/profile-handshakes.ts -- --mode full --handshakes 200
 * (nginx the same way: `valgrind --tool=callgrind nginx -g 'daemon off; master_process off;'`
 * with the same certificate, then the client by hand.) Callgrind counts instructions, not time:
 * repeatable on a busy machine, but a rep-movsb copy counts once per byte.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TlsServerContext, tlsAccept } from '@loch/tls';
import { createRuntime, TcpListener } from '@loch/uring-runtime';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? (process.argv[i + 1] ?? fallback) : fallback;
};
const MODE = arg('mode', 'full') === 'resumed' ? 'resumed' : 'full';
const HANDSHAKES = Number(arg('handshakes', '200'));

const dir = mkdtempSync(join(tmpdir(), 'loch-tls-handshakes-'));
execFileSync(
  'openssl',
  [
    ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
    ...['-keyout', 'key.pem', '-out', 'cert.pem', '-days', '1', '-subj', '/CN=localhost'],
    ...['-addext', 'subjectAltName=DNS:localhost'],
  ],
  { cwd: dir, stdio: 'ignore' },
);
const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
const key = readFileSync(join(dir, 'key.pem'), 'utf8');
rmSync(dir, { recursive: true, force: true });

const runtime = await createRuntime({ driver: 'uring', log: () => undefined });
const context = new TlsServerContext({ certificates: [{ chain: cert, key }], minVersion: 'TLSv1.3' });
const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime });
const port = (listener.localAddress as { port: number }).port;

// Each connection: the handshake, then its end (the client's close_notify), then close.
let served = 0;
const serving = (async () => {
  for (;;) {
    const raw = await listener.accept().catch(() => null);
    if (raw === null) return;
    void (async () => {
      try {
        const stream = await tlsAccept(raw, context);
        for (;;) {
          const chunk = await stream.recv();
          if (chunk === null) break;
          chunk.release();
        }
        await stream.close();
      } catch {
        await raw.close().catch(() => undefined);
      }
      served++;
    })();
  }
})();

const client = spawn(
  'python3',
  [fileURLToPath(new URL('./handshake-client.py', import.meta.url)), String(port), String(HANDSHAKES), MODE],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
let out = '';
client.stdout.on('data', (b: Buffer) => {
  out += b.toString();
});
await new Promise((resolve) => client.once('exit', resolve));
await listener.close();
await serving;
await runtime.close();
console.log(`${MODE}: ${out.trim()} (served ${served})`);
