/**
 * Slow clients against `loch run` (one worker), on every available driver (issue 16):
 * - slowloris: 10,000 connections each sending one byte of a request head per second are cut by
 *   `server_read_header` (408, counted from each head's first byte), loch's RSS stays bounded,
 *   descriptors come back, and a normal client on the same worker is answered throughout;
 * - slow readers: clients that stop reading a response larger than the kernel's socket buffers
 *   (32 MiB at least) are cut by `server_write`, and loch's RSS grows by far less than the
 *   bodies (it never buffers a whole body);
 * - stalled bodies: clients that send a head and part of a body, then nothing, are cut by
 *   `server_read_body`, and each upstream exchange they started is aborted (never left waiting
 *   for the rest), descriptors come back, a normal client is answered meanwhile.
 * The numbers are printed (RSS before/during/after, answers); assertions are liveness and
 * generous bounds, never latencies. bench/slowloris runs the same beside nginx and haproxy. The
 * 10,000 client sockets live in this process and loch's in its own, each under the machine's
 * 20,000-descriptor limit; loch's worker may keep 12,000 (max_connections_per_worker).
 */
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
const SLOW = 10_000;
/** The most bytes the kernel may buffer for one TCP socket (sysctl net.ipv4.tcp_rmem / tcp_wmem's max). */
function tcpBufferMax(which: 'rmem' | 'wmem'): number {
  try {
    const max = Number(readFileSync(`/proc/sys/net/ipv4/tcp_${which}`, 'utf8').trim().split(/\s+/)[2]);
    return Number.isFinite(max) ? max : 0;
  } catch {
    return 0;
  }
}
/**
 * The slow readers' body: more than the kernel can hold between loch and a reader that stopped
 * (the reader's receive buffer and loch's send buffer, both autotuned up to their max), so a
 * write to a stopped reader stalls and server_write must cut it. On a host whose tcp_rmem max is
 * 32 MiB, a reader got all of a 32 MiB body in a loaded CI run (legacy driver): it can fit in
 * the reader's buffer, and then loch's write keeps moving and ends, as it should.
 */
const LARGE = Math.max(32 * 1024 * 1024, 2 * (tcpBufferMax('rmem') + tcpBufferMax('wmem')));
const READERS = 16;
const STALLED = 200;

/** Resident set of a process in MiB (/proc/<pid>/status VmRSS). */
function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Math.round(Number(m![1]) / 102.4) / 10;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(drivers)('slow clients through loch (driver %s)', (driver) => {
  let loch: Loch;
  let port: number;
  let upstream: Awaited<ReturnType<typeof httpUpstream>>;
  /** Bytes of the large body the upstream got written into its sockets, per request. */
  const written: number[] = [];
  /** Upload requests the upstream got, and those whose connection went away unfinished. */
  let uploads = 0;
  let uploadsAborted = 0;

  beforeAll(async () => {
    upstream = await httpUpstream((req, res) => {
      if (req.url === '/upload') {
        uploads++;
        req.on('error', () => {});
        req.resume();
        req.once('close', () => {
          if (!req.complete) uploadsAborted++;
        });
        return; // answered never: the body never ends
      }
      if (req.url !== '/large') {
        res.end('ok\n');
        return;
      }
      const i = written.push(0) - 1;
      const chunk = Buffer.alloc(64 * 1024, 'l');
      res.writeHead(200, { 'content-length': String(LARGE) });
      const pump = () => {
        while (written[i]! < LARGE) {
          written[i]! += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('error', () => {});
      pump();
    });
    port = await freePort();
    loch = await startLoch(
      tempDir('loch-slow-'),
      `
[runtime]
workers = 1
max_connections_per_worker = 12000

[log]
access = false

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
timeouts = { server_read_header = "3s", server_read_body = "2s", server_write = "2s", server_keepalive = "60s" }

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream.port}" }]
`,
      { LOCH_DRIVER: driver },
    );
  });

  afterAll(async () => {
    await loch?.stop();
    await upstream?.close();
  });

  it(`slowloris: ${SLOW} connections trickling a head byte per second are cut (408), memory bounded, others answered`, async () => {
    const pid = loch.child.pid!;
    // warm the worker (one upstream connection, code paths), then read the baseline
    expect(await rawExchange(port, 'GET /warm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toMatch(
      /^HTTP\/1\.1 200 /,
    );
    await sleep(300);
    const fdsBefore = loch.fdCount();
    const rssBefore = rssMiB(pid);
    const head = `GET /slow HTTP/1.1\r\nHost: x\r\nX-Pad: ${'p'.repeat(100)}\r\n\r\n`;
    const sockets: net.Socket[] = [];
    const sent: number[] = [];
    const answers: string[] = [];
    let closed = 0;
    for (let i = 0; i < SLOW; i++) {
      const s = net.connect(port, '127.0.0.1');
      const at = sockets.push(s) - 1;
      sent.push(0);
      answers.push('');
      s.setEncoding('latin1');
      s.on('data', (d: string) => {
        answers[at] += d;
      });
      s.on('error', () => {});
      s.on('close', () => closed++);
      if (i % 500 === 499) await sleep(20);
    }
    const tick = () => {
      for (let i = 0; i < sockets.length; i++) {
        const s = sockets[i]!;
        if (!s.destroyed && s.writable && sent[i]! < head.length) s.write(head[sent[i]!++]!);
      }
    };
    tick();
    const trickle = setInterval(tick, 1000);
    // a normal client, on the same worker, while the slow ones trickle
    let rssDuring = 0;
    const normal: string[] = [];
    const latencies: number[] = [];
    // Until loch has cut every slow connection: a state, not a time window (on a loaded machine
    // the legacy driver took over 30 s to cut 10,000); the test's timeout is the only bound.
    while (closed < SLOW) {
      const t0 = performance.now();
      // The 30 s bound is liveness, not a latency target (on a machine loaded 12 times over its 2
      // cores, the legacy driver's first probes during the 10,000 connects took over 10 s).
      normal.push(
        await rawExchange(port, 'GET /normal HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 30_000),
      );
      latencies.push(Math.round(performance.now() - t0));
      rssDuring = Math.max(rssDuring, rssMiB(pid));
      await sleep(250);
    }
    clearInterval(trickle);
    // Counted before the test destroys anything: 'close' counts our own destroy() too.
    const closedByLoch = closed;
    for (const s of sockets) s.destroy();
    // loch's descriptors come back (waited for, so the next test starts on a quiet loch).
    while (loch.fdCount() > fdsBefore + 2) await sleep(100);
    const rssAfter = rssMiB(pid);
    const fdsAfter = loch.fdCount();
    const cut408 = answers.filter((a) => a.startsWith('HTTP/1.1 408 ')).length;
    console.log(
      `[${driver}] slowloris ${SLOW}: RSS before ${rssBefore} MiB, peak during ${rssDuring} MiB, after ${rssAfter} MiB; ` +
        `${cut408} answered 408, ${closedByLoch} closed by loch; ${normal.length} normal requests, all 200: ` +
        `${normal.every((a) => a.startsWith('HTTP/1.1 200 '))} (ms ${latencies.join(' ')}); fds ${fdsBefore} -> ${fdsAfter}`,
    );
    expect(closedByLoch).toBe(SLOW); // every slow connection was cut by loch (none sent a whole head)
    expect(sent.every((n) => n < head.length)).toBe(true);
    // 408 written; a few clients may read a reset instead: a byte of theirs that arrived after the
    // pending receive was cancelled is unread at the close (an expired head is not lingered on).
    expect(cut408).toBeGreaterThan(SLOW * 0.9);
    expect(normal.length).toBeGreaterThan(2);
    for (const a of normal) expect(a).toMatch(/^HTTP\/1\.1 200 /);
    // Generous: measured at 10,000 about 12 KiB per connection on legacy (+120 MiB) and 26 KiB on
    // io_uring (+83-85 MiB since bf7c957; +205-260 with a 16 KiB heap read per byte that got ENOBUFS).
    expect(rssDuring - rssBefore).toBeLessThan(512);
    expect(fdsAfter).toBeLessThanOrEqual(fdsBefore + 2);
  }, 180_000);

  it(`slow readers: ${READERS} clients that stop reading a response larger than the kernel's buffers are cut by server_write; memory stays bounded`, async () => {
    const pid = loch.child.pid!;
    const rssBefore = rssMiB(pid);
    const fdsBefore = loch.fdCount();
    const readers: net.Socket[] = [];
    const got: number[] = [];
    const ends: Promise<void>[] = [];
    const from = written.length;
    for (let i = 0; i < READERS; i++) {
      const s = net.connect(port, '127.0.0.1');
      readers.push(s);
      got.push(0);
      let stopped = false;
      s.on('data', (d: Buffer) => {
        got[i]! += d.length;
        // reads the first chunk, then stops (as a client reading a byte at a time, to the server)
        if (!stopped) {
          stopped = true;
          s.pause();
        }
      });
      s.on('error', () => {});
      ends.push(new Promise((r) => s.on('close', () => r())));
      s.write('GET /large HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    }
    let rssDuring = 0;
    let normalOk = 0;
    for (let i = 0; i < 8; i++) {
      await sleep(250);
      rssDuring = Math.max(rssDuring, rssMiB(pid));
      // The 10 s bound is liveness, not a latency target (the default 3 s failed once under load).
      const a = await rawExchange(
        port,
        'GET /normal HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
        10_000,
      );
      if (a.startsWith('HTTP/1.1 200 ')) normalOk++;
    }
    // loch cuts them (server_write 2 s once the socket buffers are full): its client and
    // upstream descriptors go away. At most one more than before may stay (the probes' pooled
    // upstream connection): a slack of two let one reader not yet cut (its client and upstream
    // descriptors) through to the resume below, which then read its whole body (CI, uring).
    const waitStart = performance.now();
    while (loch.fdCount() > fdsBefore + 1 && performance.now() - waitStart < 30_000) await sleep(100);
    const cutAfter = Math.round(performance.now() - waitStart);
    // reading again gets what the kernel held, then the end
    // (a paused node socket reports the close only once its data is read)
    for (const s of readers) s.resume();
    await Promise.all(ends);
    const upstreamBytes = written.slice(from);
    console.log(
      `[${driver}] slow readers ${READERS} x ${Math.round(LARGE / 1048576)} MiB: RSS before ${rssBefore} MiB, peak during ${rssDuring} MiB; ` +
        `client got ${Math.round(Math.max(...got) / 1024)} KiB at most; upstream wrote ${Math.round(Math.max(...upstreamBytes) / 1048576)} MiB at most per request; normal ${normalOk}/8; all cut ${cutAfter} ms after the probes`,
    );
    expect(normalOk).toBe(8);
    for (const n of got) expect(n).toBeLessThan(LARGE);
    // all 16 bodies buffered would be 512 MiB
    expect(rssDuring - rssBefore).toBeLessThan(160);
  }, 120_000);
  it(`stalled bodies: ${STALLED} clients that send a head and 1 KiB of a 1 MiB body, then nothing, are cut by server_read_body; their upstream exchanges are aborted; fds come back`, async () => {
    const pid = loch.child.pid!;
    await sleep(300);
    const fdsBefore = loch.fdCount();
    const rssBefore = rssMiB(pid);
    const [uploadsBefore, abortedBefore] = [uploads, uploadsAborted];
    const head = 'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n';
    const answers: string[] = [];
    let closed = 0;
    const sockets: net.Socket[] = [];
    for (let i = 0; i < STALLED; i++) {
      const s = net.connect(port, '127.0.0.1');
      const at = sockets.push(s) - 1;
      answers.push('');
      s.setEncoding('latin1');
      s.on('data', (d: string) => {
        answers[at] += d;
      });
      s.on('error', () => {});
      s.on('close', () => closed++);
      s.write(head + 'b'.repeat(1024));
      if (i % 50 === 49) await sleep(20);
    }
    const normal: string[] = [];
    let rssDuring = 0;
    const started = performance.now();
    while (closed < STALLED && performance.now() - started < 20_000) {
      normal.push(await rawExchange(port, 'GET /normal HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
      rssDuring = Math.max(rssDuring, rssMiB(pid));
      await sleep(250);
    }
    // Let the upstream see its connections end.
    const waitStart = performance.now();
    while (uploadsAborted - abortedBefore < STALLED && performance.now() - waitStart < 10_000)
      await sleep(100);
    const cutByLoch = closed; // before this side closes what is left
    for (const s of sockets) s.destroy();
    while (loch.fdCount() > fdsBefore + 2 && performance.now() - waitStart < 20_000) await sleep(100);
    const statuses = answers.map((a) => a.slice(0, 12));
    const cut408 = statuses.filter((a) => a === 'HTTP/1.1 408').length;
    console.log(
      `[${driver}] stalled bodies ${STALLED}: ${cutByLoch} closed by loch (${cut408} with 408), upstream got ` +
        `${uploads - uploadsBefore} and saw ${uploadsAborted - abortedBefore} aborted; ${normal.length} normal ` +
        `requests; RSS before ${rssBefore} MiB, peak during ${rssDuring} MiB; fds ${fdsBefore} -> ${loch.fdCount()}`,
    );
    expect(cutByLoch).toBe(STALLED); // loch cut every one (the clients never closed)
    // Answered 408 (a few may be reset by the lingering close), never anything else (no 502
    // from a half-sent body).
    expect(cut408).toBeGreaterThan(STALLED * 0.9);
    for (const a of statuses) expect(['', 'HTTP/1.1 408']).toContain(a);
    expect(uploads - uploadsBefore).toBe(STALLED);
    expect(uploadsAborted - abortedBefore).toBe(STALLED);
    expect(normal.length).toBeGreaterThan(0);
    for (const a of normal) expect(a).toMatch(/^HTTP\/1\.1 200 /);
    expect(rssDuring - rssBefore).toBeLessThan(128);
    expect(loch.fdCount()).toBeLessThanOrEqual(fdsBefore + 2);
  }, 60_000);
});
