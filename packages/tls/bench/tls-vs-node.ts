/**
 * A quick side-by-side, both ends in this process over loopback (so each figure is client plus
 * server CPU on one thread): full TLS 1.3 handshakes per second (ECDSA P-256, X25519, no
 * resumption) and one-way bulk throughput (MB/s), for node:tls against node:tls and Loch against
 * Loch on each available driver (on uring: the record layer in the ring, and fed from
 * JavaScript with `ring: false`). Then 128-byte request/response round trips over one
 * connection: CPU per request, and on Loch the JavaScript<->native crossings per request
 * (submit calls, completion callbacks, TlsSession calls; @loch/native's crossings()) against a
 * plain TCP stream on the same driver. Not the HTTPS benchmark (that one pins a proxy
 * and compares with nginx; bench/), just a smoke reading of the engine's cost.
 * Run: pnpm --filter @loch/tls bench [-- --handshakes 500 --mb 256 --requests 20000]
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as nodeTls from 'node:tls';
import { loadNative } from '@loch/native';
import { TlsClientContext, TlsServerContext, type TlsStream, tlsAccept, tlsConnect } from '@loch/tls';
import { type ByteStream, createRuntime, type DriverName, TcpListener, TcpStream } from '@loch/uring-runtime';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const HANDSHAKES = arg('handshakes', 500);
const MB = arg('mb', 256);
const REQUESTS = arg('requests', 20000);
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

async function lochSide(driver: DriverName, ring = true): Promise<Row> {
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
      tlsAccept(raw, serverCtx, { ring })
        .then(serve)
        .catch(() => undefined);
    }
  })();
  const connect = async () =>
    tlsConnect(await TcpStream.connect({ host: '127.0.0.1', port, runtime }), clientCtx, {
      servername: 'localhost',
      ring,
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

/** One request/response pair's reading: CPU us per request (both ends), crossings per request. */
interface PingRow {
  cpuUs: number;
  crossings: [number, number, number] | undefined;
}

/** Crossings of this thread so far (uring driver only). */
function crossings(): [number, number, number] | undefined {
  const loaded = loadNative();
  return 'error' in loaded ? undefined : loaded.binding.crossings();
}

/** REQUESTS round trips of 128 bytes each way over one stream pair (Loch: plain or TLS). */
async function lochPing(driver: DriverName, mode: 'plain' | 'ring' | 'javascript'): Promise<PingRow> {
  const runtime = await createRuntime({ driver, log: () => undefined });
  const serverCtx = new TlsServerContext({ certificates: [{ chain: cert, key }], minVersion: 'TLSv1.3' });
  const clientCtx = new TlsClientContext({ ca: cert, minVersion: 'TLSv1.3', sessionCacheSize: 0 });
  const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime });
  const port = (listener.localAddress as { port: number }).port;
  const ring = mode === 'ring';
  const accepted = listener
    .accept()
    .then((raw): Promise<ByteStream> | ByteStream =>
      mode === 'plain' ? raw : tlsAccept(raw, serverCtx, { ring }),
    );
  const raw = await TcpStream.connect({ host: '127.0.0.1', port, runtime });
  const client: ByteStream =
    mode === 'plain' ? raw : await tlsConnect(raw, clientCtx, { servername: 'localhost', ring });
  const server = await accepted;
  const message = new Uint8Array(128).fill(1);
  const serving = (async () => {
    for (;;) {
      const chunk = await server.recv();
      if (chunk === null) return;
      chunk.release();
      server.writeTo(message, { onWritten: () => undefined });
    }
  })();
  const exchange = async () => {
    await client.writeAll(message);
    let got = 0;
    while (got < 128) {
      const chunk = await client.recv();
      if (chunk === null) throw new Error('ended');
      got += chunk.bytes.byteLength;
      chunk.release();
    }
  };
  for (let i = 0; i < 500; i++) await exchange();
  const before = crossings();
  const cpu = process.cpuUsage();
  for (let i = 0; i < REQUESTS; i++) await exchange();
  const cpuUs = (cpuMs(cpu) * 1000) / REQUESTS;
  const after = crossings();
  await client.close();
  await serving.catch(() => undefined);
  await server.close();
  await listener.close();
  await runtime.close();
  const per =
    before !== undefined && after !== undefined
      ? (after.map((v, i) => (v - before[i]!) / REQUESTS) as [number, number, number])
      : undefined;
  return { cpuUs, crossings: per };
}

/**
 * The server's side only: a Loch server (plain or TLS) in this process, a node client (net or
 * node:tls) in a child process doing REQUESTS round trips; CPU and crossings of the server per
 * request (completions now come through the poll callback, as in a real server).
 */
async function serverPing(mode: 'plain' | 'ring' | 'javascript'): Promise<PingRow> {
  const runtime = await createRuntime({ driver: 'uring', log: () => undefined });
  const serverCtx = new TlsServerContext({ certificates: [{ chain: cert, key }], minVersion: 'TLSv1.3' });
  const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime });
  const port = (listener.localAddress as { port: number }).port;
  const message = new Uint8Array(128).fill(1);
  let before: [number, number, number] | undefined;
  let cpu = process.cpuUsage();
  let count = 0;
  const serving = (async () => {
    const raw = await listener.accept();
    const server: ByteStream =
      mode === 'plain' ? raw : await tlsAccept(raw, serverCtx, { ring: mode === 'ring' });
    for (;;) {
      const chunk = await server.recv();
      if (chunk === null) break;
      chunk.release();
      if (++count === 500) {
        before = crossings();
        cpu = process.cpuUsage();
      }
      server.writeTo(message, { onWritten: () => undefined });
    }
    await server.close();
  })();
  const client = `
    const mod = require(${JSON.stringify(mode === 'plain' ? 'node:net' : 'node:tls')});
    const s = mod.connect({ host: '127.0.0.1', port: ${port}, ca: process.env.CERT, servername: 'localhost' });
    const msg = Buffer.alloc(128, 1);
    let got = 0, left = ${REQUESTS + 500};
    s.on('${mode === 'plain' ? 'connect' : 'secureConnect'}', () => s.write(msg));
    s.on('data', (b) => { got += b.length; while (got >= 128) { got -= 128; if (--left === 0) { s.end(); return; } s.write(msg); } });
  `;
  const child = spawn(process.execPath, ['-e', client], {
    env: { ...process.env, CERT: cert },
    stdio: 'inherit',
  });
  await serving;
  const cpuUs = (cpuMs(cpu) * 1000) / (count - 500);
  const after = crossings();
  await once(child, 'exit').catch(() => undefined);
  await listener.close();
  await runtime.close();
  const per =
    before !== undefined && after !== undefined
      ? (after.map((v, i) => (v - before![i]!) / (count - 500)) as [number, number, number])
      : undefined;
  return { cpuUs, crossings: per };
}

/** The same round trips between two node:tls sockets. */
async function nodePing(): Promise<PingRow> {
  const message = Buffer.alloc(128, 1);
  const server = nodeTls.createServer({ cert, key, minVersion: 'TLSv1.3', ciphers: SUITE }, (s) => {
    s.on('data', () => s.write(message));
    s.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const s = nodeTls.connect({ host: '127.0.0.1', port, ca: cert, servername: 'localhost', ciphers: SUITE });
  await once(s, 'secureConnect');
  let got = 0;
  let wake: () => void = () => undefined;
  s.on('data', (b: Buffer) => {
    got += b.byteLength;
    if (got >= 128) wake();
  });
  const exchange = () =>
    new Promise<void>((resolve) => {
      got = 0;
      wake = resolve;
      s.write(message);
    });
  for (let i = 0; i < 500; i++) await exchange();
  const cpu = process.cpuUsage();
  for (let i = 0; i < REQUESTS; i++) await exchange();
  const cpuUs = (cpuMs(cpu) * 1000) / REQUESTS;
  s.destroy();
  server.close();
  return { cpuUs, crossings: undefined };
}

const rows: [string, Row][] = [];
rows.push(['node:tls <-> node:tls', await nodeSide()]);
for (const driver of ['legacy', 'uring'] as const) {
  try {
    rows.push([`loch (${driver}) <-> loch`, await lochSide(driver)]);
    if (driver === 'uring') rows.push(['loch (uring, fed from JS) <-> loch', await lochSide(driver, false)]);
  } catch (error) {
    console.log(`${driver}: ${(error as Error).message}`);
  }
}
const pings: [string, PingRow][] = [['node:tls', await nodePing()]];
try {
  pings.push(['loch uring, plain TCP', await lochPing('uring', 'plain')]);
  pings.push(['loch uring, TLS in the ring', await lochPing('uring', 'ring')]);
  pings.push(['loch uring, TLS fed from JS', await lochPing('uring', 'javascript')]);
} catch (error) {
  console.log(`uring: ${(error as Error).message}`);
}
pings.push(['loch legacy, TLS', await lochPing('legacy', 'javascript')]);
const serverPings: [string, PingRow][] = [];
try {
  serverPings.push(['loch uring, plain TCP', await serverPing('plain')]);
  serverPings.push(['loch uring, TLS in the ring', await serverPing('ring')]);
  serverPings.push(['loch uring, TLS fed from JS', await serverPing('javascript')]);
} catch (error) {
  console.log(`uring: ${(error as Error).message}`);
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
console.log(`\n${REQUESTS} round trips of 128 B each way over one connection, both ends in one process`);
console.log('| pair | CPU us per request (both ends) | submits | callbacks | TlsSession calls | crossings |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const [name, r] of pings) {
  const c = r.crossings;
  const cells =
    c === undefined ? ['-', '-', '-', '-'] : [...c.map((v) => v.toFixed(2)), (c[0] + c[1] + c[2]).toFixed(2)];
  console.log(`| ${name} | ${r.cpuUs.toFixed(1)} | ${cells.join(' | ')} |`);
}
console.log(`\nThe server's side only (client in a child process): ${REQUESTS} round trips of 128 B`);
console.log('| server | CPU us per request (server) | submits | callbacks | TlsSession calls | crossings |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const [name, r] of serverPings) {
  const c = r.crossings;
  const cells =
    c === undefined ? ['-', '-', '-', '-'] : [...c.map((v) => v.toFixed(2)), (c[0] + c[1] + c[2]).toFixed(2)];
  console.log(`| ${name} | ${r.cpuUs.toFixed(1)} | ${cells.join(' | ')} |`);
}
rmSync(dir, { recursive: true, force: true });
