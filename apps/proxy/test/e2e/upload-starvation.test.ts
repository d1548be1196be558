/**
 * Receive budgets through `loch run` (one worker), on every available driver (issue 16):
 * - 96 clients (a Python peer) upload endless bodies as fast as they can to a route whose
 *   upstream (a Python peer) reads 64 KiB/s per connection; normal requests to a fast upstream
 *   on the same worker are answered all along (before the budgets, the flooded streams emptied
 *   the io_uring driver's buffer pool and every other request waited for its 5 s timeout);
 * - the reverse: a client stops reading a 64 MiB response from a fast upstream, and loch's RSS
 *   stays far below what the upstream pushed (loch holds at most its budget; the rest waits in
 *   the kernel's socket buffers), and the whole body arrives once the client reads again.
 * - the first over HTTPS: 96 TLS uploaders, normal HTTPS requests answered all along, and the
 *   worker's receive budgets read from `/stats` (no stream ever held more than its cap);
 * RSS and descriptors are read from /proc before and after; latencies are printed, never
 * asserted. bench/upload-starvation measures the same scenario beside nginx and haproxy.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../src/demo-certificate.js';
import {
  availableDrivers,
  freePort,
  httpUpstream,
  type Loch,
  rawExchange,
  startLoch,
  tempDir,
} from './harness.js';

const drivers = availableDrivers();
const UPLOADERS = 96;
const LARGE = 64 * 1024 * 1024;
const PEERS = fileURLToPath(new URL('./peers/', import.meta.url));

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Math.round(Number(m![1]) / 102.4) / 10;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One HTTPS exchange on a new connection; resolves with what came back (or rejects after `ms`). */
function tlsExchange(port: number, request: string, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      rejectUnauthorized: false,
    });
    let answer = '';
    let handshaken = false;
    const timer = setTimeout(() => {
      socket.destroy();
      const got = answer === '' ? 'nothing' : JSON.stringify(answer.slice(0, 40));
      reject(new Error(`no answer in ${ms} ms (handshake ${handshaken ? 'done' : 'not done'}, got ${got})`));
    }, ms);
    socket.on('secureConnect', () => {
      handshaken = true;
      socket.write(request);
    });
    socket.on('data', (d: Buffer) => {
      answer += d.toString('latin1');
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(answer);
    });
  });
}

/** Starts a Python peer; resolves with the process and the first line it printed. */
function python(script: string, args: readonly string[]): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn('python3', [PEERS + script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const early = (code: number | null) => reject(new Error(`${script} exited with ${code}`));
    child.once('exit', early);
    child.stdout!.setEncoding('utf8').once('data', (line: string) => {
      child.off('exit', early);
      resolve({ child, line: line.trim() });
    });
  });
}

function stopPeer(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

describe.each(drivers)('receive budgets through loch (driver %s)', (driver) => {
  let loch: Loch;
  let port: number;
  let fast: Awaited<ReturnType<typeof httpUpstream>>;
  let slow: ChildProcess | undefined;
  let slowTls: ChildProcess | undefined;
  let securePort: number;
  let adminPort: number;
  let written = 0;

  beforeAll(async () => {
    fast = await httpUpstream((req, res) => {
      if (req.url !== '/large') {
        res.end('ok\n');
        return;
      }
      written = 0;
      const chunk = Buffer.alloc(64 * 1024, 'l');
      res.writeHead(200, { 'content-length': String(LARGE) });
      const pump = () => {
        while (written < LARGE) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('error', () => {});
      pump();
    });
    const slowPeer = await python('slow_upstream.py', ['65536']);
    slow = slowPeer.child;
    const slowTlsPeer = await python('slow_upstream.py', ['65536']);
    slowTls = slowTlsPeer.child;
    port = await freePort();
    securePort = await freePort();
    adminPort = await freePort();
    const dir = tempDir('loch-budget-');
    selfSignedCertificate(dir, 'default', ['localhost']);
    loch = await startLoch(
      dir,
      `
[runtime]
workers = 1

[admin]
listener = { type = "socket", value = "127.0.0.1:${adminPort}" }

[log]
access = false

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
timeouts = { server_keepalive = "60s", server_write = "60s", server_read_body = "60s", upstream_read = "60s" }

[[servers.web.routes]]
path = "/slow/"
upstreams = [{ endpoint = "http://127.0.0.1:${slowPeer.line}" }]

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${fast.port}" }]

[servers.secure]
listener = { type = "socket", value = "127.0.0.1:${securePort}" }
timeouts = { server_keepalive = "60s", server_write = "60s", server_read_body = "60s", upstream_read = "60s" }

[servers.secure.tls]
certificates = [{ chain = "default.pem", key = "default.key", default = true }]

[[servers.secure.routes]]
path = "/slow/"
upstreams = [{ endpoint = "http://127.0.0.1:${slowTlsPeer.line}" }]

[[servers.secure.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${fast.port}" }]
`,
      { LOCH_DRIVER: driver },
    );
  });

  afterAll(async () => {
    await loch?.stop();
    await fast?.close();
    await stopPeer(slow);
    await stopPeer(slowTls);
  });

  it(`${UPLOADERS} uploaders flooding a slow upstream: normal requests are answered, memory and fds bounded`, async () => {
    const pid = loch.child.pid!;
    expect(await rawExchange(port, 'GET /warm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toMatch(
      /^HTTP\/1\.1 200 /,
    );
    await sleep(300);
    const rssBefore = rssMiB(pid);
    const fdsBefore = loch.fdCount();
    const flood = await python('upload_flood.py', [String(port), String(UPLOADERS), '/slow/upload']);
    try {
      await sleep(1000); // let the flood fill whatever it can
      const answers: string[] = [];
      const latencies: number[] = [];
      let rssDuring = 0;
      for (let i = 0; i < 12; i++) {
        const start = performance.now();
        // The 10 s bound is liveness (the failure was every request timing out), not a latency target.
        const answer = await rawExchange(
          port,
          `GET /n${i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
          10_000,
        );
        latencies.push(Math.round(performance.now() - start));
        answers.push(answer);
        rssDuring = Math.max(rssDuring, rssMiB(pid));
        await sleep(150);
      }
      console.log(
        `[${driver}] ${UPLOADERS} uploaders: normal request ms ${latencies.join(' ')}; ` +
          `RSS before ${rssBefore} MiB, peak during ${rssDuring} MiB`,
      );
      for (const answer of answers) expect(answer).toMatch(/^HTTP\/1\.1 200 /);
      // Budgets: 1 MiB per stream, 12 MiB per worker; the io_uring pool is 32 MiB.
      expect(rssDuring - rssBefore).toBeLessThan(128);
    } finally {
      await stopPeer(flood.child);
      // The flood's bytes still queued in the kernel would take the slow upstream minutes to read;
      // its end resets the upstream connections, and loch closes both sides of each.
      await stopPeer(slow);
    }
    const waitStart = performance.now();
    while (loch.fdCount() > fdsBefore + 2 && performance.now() - waitStart < 30_000) await sleep(100);
    console.log(
      `[${driver}] fds ${fdsBefore} -> ${loch.fdCount()} after ${Math.round(performance.now() - waitStart)} ms`,
    );
    expect(loch.fdCount()).toBeLessThanOrEqual(fdsBefore + 2);
  }, 60_000);

  // io_uring (in-ring TLS) failed this every time until native/src/ring_tls.cc gave the last free
  // plaintext buffers only to conns whose reader holds none (a flooded proxy reader keeps one:
  // new connections' requests timed out behind the flood), and counted the ciphertext a starved
  // session holds against its stream's recv (a flooded stream held 320 KiB past its 256 KiB cap;
  // packages/tls/test/receive-budget-starved.test.ts proves that part); then in about 1 run of 5
  // until a reader holding none got its records decrypted into the buffer their ciphertext came
  // in instead of the pool (flooded readers whose upstream writes waited seconds behind the slow
  // upstream had taken the pool's reserve one buffer each, and a new request got none).
  it(`over HTTPS, ${UPLOADERS} TLS uploaders flooding a slow upstream: normal HTTPS requests are answered, no stream holds more than its cap, memory and fds bounded`, async () => {
    const pid = loch.child.pid!;
    const warm = await tlsExchange(
      securePort,
      'GET /warm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      10_000,
    );
    expect(warm).toMatch(/^HTTP\/1\.1 200 /);
    await sleep(300);
    const rssBefore = rssMiB(pid);
    const fdsBefore = loch.fdCount();
    const flood = await python('upload_flood.py', [
      String(securePort),
      String(UPLOADERS),
      '/slow/upload',
      String(2 ** 40),
      'tls',
    ]);
    type Buffers = {
      streamCap: number;
      workerCap: number;
      held: number;
      peakHeld: number;
      peakStreamHeld: number;
      stops: number;
    };
    const buffers = async (): Promise<Buffers> => {
      const res = await fetch(`http://127.0.0.1:${adminPort}/stats`);
      const stats = (await res.json()) as { workers: { runtime: { buffers: Buffers } }[] };
      return stats.workers[0]!.runtime.buffers;
    };
    try {
      await sleep(1000); // let the flood fill whatever it can
      const answers: string[] = [];
      const latencies: number[] = [];
      let rssDuring = 0;
      for (let i = 0; i < 12; i++) {
        const start = performance.now();
        // The 10 s bound is liveness (the failure is every request timing out), not a latency target.
        answers.push(
          await tlsExchange(
            securePort,
            `GET /n${i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
            10_000,
          ),
        );
        latencies.push(Math.round(performance.now() - start));
        rssDuring = Math.max(rssDuring, rssMiB(pid));
        await sleep(150);
      }
      const b = await buffers();
      console.log(
        `[${driver}] ${UPLOADERS} TLS uploaders: normal HTTPS request ms ${latencies.join(' ')}; ` +
          `RSS before ${rssBefore} MiB, peak during ${rssDuring} MiB; held ${b.held} B (peak ${b.peakHeld}, ` +
          `one stream ${b.peakStreamHeld}; caps ${b.streamCap} / ${b.workerCap}), stops ${b.stops}`,
      );
      for (const answer of answers) expect(answer).toMatch(/^HTTP\/1\.1 200 /);
      // The budgets held: no stream above its cap.
      expect(b.peakStreamHeld).toBeLessThanOrEqual(b.streamCap);
      // The worker's cap counts bytes beyond each stream's base chunk (a read of its own, so no
      // stream is starved by others): at most one chunk per connection on top, 64 KiB being the
      // largest chunk either driver gives (a node:net read; io_uring's are 32 KiB plaintext).
      expect(b.peakHeld).toBeLessThanOrEqual(b.workerCap + (UPLOADERS + 1) * 64 * 1024);
      expect(rssDuring - rssBefore).toBeLessThan(160);
    } finally {
      await stopPeer(flood.child);
      await stopPeer(slowTls);
    }
    const waitStart = performance.now();
    while (loch.fdCount() > fdsBefore + 2 && performance.now() - waitStart < 30_000) await sleep(100);
    console.log(
      `[${driver}] fds ${fdsBefore} -> ${loch.fdCount()} after ${Math.round(performance.now() - waitStart)} ms`,
    );
    expect(loch.fdCount()).toBeLessThanOrEqual(fdsBefore + 2);
  }, 60_000);

  it('a client that stops reading a 64 MiB response: loch holds little, the body arrives whole later', async () => {
    const pid = loch.child.pid!;
    await sleep(300);
    const rssBefore = rssMiB(pid);
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => {});
    await new Promise((r) => socket.once('connect', r));
    socket.pause();
    socket.write('GET /large HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    // Stalled: the upstream pushes until every buffer on the way is full, then waits.
    let rssDuring = 0;
    let last = -1;
    for (let i = 0; i < 40 && written !== last; i++) {
      last = written;
      await sleep(100);
      rssDuring = Math.max(rssDuring, rssMiB(pid));
    }
    const ahead = written;
    console.log(
      `[${driver}] stalled reader: upstream wrote ${(ahead / 1048576).toFixed(1)} MiB ahead; ` +
        `loch RSS before ${rssBefore} MiB, peak during ${rssDuring} MiB`,
    );
    expect(ahead).toBeLessThan(LARGE); // the upstream was held back
    expect(rssDuring - rssBefore).toBeLessThan(32);
    let received = 0;
    socket.on('data', (d: Buffer) => {
      received += d.length;
    });
    socket.resume();
    await new Promise((r) => socket.once('close', r));
    expect(received).toBeGreaterThan(LARGE);
  });
});
