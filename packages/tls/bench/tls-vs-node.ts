/**
 * A quick side-by-side, both ends in this process over loopback (so each figure is client plus
 * server CPU on one thread): full TLS 1.3 handshakes per second (ECDSA P-256, X25519, no
 * resumption) and one-way bulk throughput (MB/s), for node:tls against node:tls and Loch against
 * Loch on each available driver. Not the HTTPS benchmark (that one pins a proxy and
 * compares with nginx; bench/), just a smoke reading of the engine's cost.
 * Run: pnpm --filter @loch/tls bench [-- --handshakes 500 --mb 256]
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as nodeTls from 'node:tls';
import { TlsClientContext, TlsServerContext, type TlsStream, tlsAccept, tlsConnect } from '@loch/tls';
import { createRuntime, type DriverName, TcpListener, TcpStream } from '@loch/uring-runtime';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const HANDSHAKES = arg('handshakes', 500);
const MB = arg('mb', 256);
const CHUNK = 64 * 1024;
/** The suite Loch picks by default; node:tls would pick AES-256-GCM. */
const SUITE = 'TLS_AES_128_GCM_SHA256';

const dir = mkdtempSync(join(tmpdir(), 'loch-tls-bench-'));
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
const payload = new Uint8Array(CHUNK).fill(7);

/** One pair's readings: handshakes/s and CPU per handshake, MB/s and CPU per MB. */
interface Row {
  hs: number;
  hsCpu: number;
  mbps: number;
  mbCpu: number;
}

function cpuMs(start: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(start);
  return (u.user + u.system) / 1000;
}

async function nodeSide(): Promise<Row> {
  let received = 0;
  let done: () => void = () => undefined;
  const server = nodeTls.createServer({ cert, key, minVersion: 'TLSv1.3', ciphers: SUITE }, (s) => {
    s.on('data', (b: Buffer) => {
      received += b.byteLength;
      if (received >= MB * 1024 * 1024) done();
    });
    s.on('end', () => s.end());
    s.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const connect = () =>
    new Promise<nodeTls.TLSSocket>((resolve, reject) => {
      const s = nodeTls.connect({
        host: '127.0.0.1',
        port,
        ca: cert,
        servername: 'localhost',
        minVersion: 'TLSv1.3',
        ciphers: SUITE,
      });
      s.once('secureConnect', () => resolve(s));
      s.once('error', reject);
    });
  let cpu = process.cpuUsage();
  let t0 = performance.now();
  for (let i = 0; i < HANDSHAKES; i++) (await connect()).destroy();
  const hs = HANDSHAKES / ((performance.now() - t0) / 1000);
  const hsCpu = cpuMs(cpu) / HANDSHAKES;
  const s = await connect();
  received = 0;
  const finished = new Promise<void>((r) => {
    done = r;
  });
  cpu = process.cpuUsage();
  t0 = performance.now();
  for (let sent = 0; sent < MB * 1024 * 1024; sent += CHUNK) {
    if (!s.write(payload)) await once(s, 'drain');
  }
  await finished;
  const mbps = MB / ((performance.now() - t0) / 1000);
  const mbCpu = cpuMs(cpu) / MB;
  s.destroy();
  server.close();
  return { hs, hsCpu, mbps, mbCpu };
}

async function lochSide(driver: DriverName): Promise<Row> {
  const runtime = await createRuntime({ driver, log: () => undefined });
  const serverCtx = new TlsServerContext({ certificates: [{ chain: cert, key }], minVersion: 'TLSv1.3' });
  const clientCtx = new TlsClientContext({ ca: cert, minVersion: 'TLSv1.3', sessionCacheSize: 0 });
  const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime });
  const port = (listener.localAddress as { port: number }).port;
  let received = 0;
  let done: () => void = () => undefined;
  const serve = async (s: TlsStream) => {
    for (;;) {
      const chunk = await s.recv();
      if (chunk === null) break;
      received += chunk.bytes.byteLength;
      chunk.release();
      if (received >= MB * 1024 * 1024) done();
    }
    await s.close();
  };
  void (async () => {
    for (;;) {
      const raw = await listener.accept().catch(() => undefined);
      if (raw === undefined) return;
      tlsAccept(raw, serverCtx)
        .then(serve)
        .catch(() => undefined);
    }
  })();
  const connect = async () =>
    tlsConnect(await TcpStream.connect({ host: '127.0.0.1', port, runtime }), clientCtx, {
      servername: 'localhost',
    });
  let cpu = process.cpuUsage();
  let t0 = performance.now();
  for (let i = 0; i < HANDSHAKES; i++) await (await connect()).close();
  const hs = HANDSHAKES / ((performance.now() - t0) / 1000);
  const hsCpu = cpuMs(cpu) / HANDSHAKES;
  const s = await connect();
  received = 0;
  const finished = new Promise<void>((r) => {
    done = r;
  });
  cpu = process.cpuUsage();
  t0 = performance.now();
  for (let sent = 0; sent < MB * 1024 * 1024; sent += CHUNK) await s.writeAll(payload);
  await finished;
  const mbps = MB / ((performance.now() - t0) / 1000);
  const mbCpu = cpuMs(cpu) / MB;
  await s.close();
  await listener.close();
  await runtime.close();
  return { hs, hsCpu, mbps, mbCpu };
}

const rows: [string, Row][] = [];
rows.push(['node:tls <-> node:tls', await nodeSide()]);
for (const driver of ['legacy', 'uring'] as const) {
  try {
    rows.push([`loch (${driver}) <-> loch`, await lochSide(driver)]);
  } catch (error) {
    console.log(`${driver}: ${(error as Error).message}`);
  }
}
console.log(
  `${HANDSHAKES} full TLS 1.3 handshakes (ECDSA P-256) and ${MB} MB one way, both ends in one process`,
);
console.log(
  '| pair | handshakes/s | CPU ms per handshake (both ends) | MB/s one way | CPU ms per MB (both ends) |',
);
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const [name, r] of rows) {
  console.log(
    `| ${name} | ${r.hs.toFixed(0)} | ${r.hsCpu.toFixed(2)} | ${r.mbps.toFixed(0)} | ${r.mbCpu.toFixed(2)} |`,
  );
}
rmSync(dir, { recursive: true, force: true });
