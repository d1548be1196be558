/**
 * Worker supervision of `loch run`, against nginx: a worker crashed on purpose (the
 * LOCH_DEBUG_CRASH_WORKER debugging aid: SIGURG throws an uncaught error in that worker) is
 * replaced while the other keeps answering, and the replacement serves the config as last
 * reloaded; a worker that keeps crashing is given up (a crash loop) while loch goes on serving on
 * the healthy one; with every worker in a crash loop loch exits 1. A wedged worker
 * (LOCH_DEBUG_FAULT=drop-completions: its ring drops every completion, or its legacy thread
 * blocks) is found by the watchdog (no heartbeat) and replaced the same way. Fresh connections per request
 * let the kernel spread them over both workers. Bounds are generous; nothing is timed.
 */
import { readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { get, type IncomingMessage } from 'node:http';
import * as net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { debugCrashWorker, debugFault, workerWatchdog } from '../../src/proxy/run.js';
import {
  availableDrivers,
  curl,
  freePort,
  type Loch,
  type Nginx,
  startLoch,
  startNginx,
  tempDir,
} from './harness.js';

function config(port: number, upstream: number, workers = 2): string {
  return `
[runtime]
workers = ${workers}

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
timeouts = { shutdown_grace = "2s" }

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream}" }]
`;
}

/** One GET on a new connection: the body, or null when the exchange failed. */
function fetchOnce(port: number, path: string): Promise<string | null> {
  return new Promise((resolve) => {
    const request = get(
      { host: '127.0.0.1', port, path, agent: false, timeout: 10_000 },
      (res: IncomingMessage) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => resolve(res.statusCode === 200 ? body : null));
        res.on('error', () => resolve(null));
      },
    );
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', () => resolve(null));
  });
}

/** `loops` clients, each sending requests one after another on new connections until stopped. */
function steadyLoad(port: number, loops: number) {
  let running = true;
  const bodies: string[] = [];
  let failed = 0;
  const done = Promise.all(
    Array.from({ length: loops }, async () => {
      while (running) {
        const body = await fetchOnce(port, '/load');
        if (body === null) failed++;
        else bodies.push(body);
      }
    }),
  );
  return {
    loops,
    answered: () => bodies.length,
    async stop() {
      running = false;
      await done;
      return { bodies, failed };
    },
  };
}

/** Resolves once `load` has `n` more answers than now. */
async function answersMore(load: ReturnType<typeof steadyLoad>, n: number): Promise<void> {
  const target = load.answered() + n;
  while (load.answered() < target) await new Promise((r) => setTimeout(r, 20));
}

/** Sends SIGURG and waits for the worker's replacement to be up, or for its crash loop. */
async function crashOnce(loch: Loch, worker: number): Promise<'restarted' | 'crash loop'> {
  const from = loch.stderr().length;
  loch.child.kill('SIGURG');
  const pattern = new RegExp(`worker ${worker} (restarted|is in a crash loop)`);
  await loch.waitFor(pattern, from, 60_000);
  return pattern.exec(loch.stderr().slice(from))![1] === 'restarted' ? 'restarted' : 'crash loop';
}

/** What SIGUSR2 logs: one `stats {...}` line per worker, or `stats: worker i: <why>`. */
async function stats(loch: Loch, workers: number): Promise<string> {
  const from = loch.stderr().length;
  loch.child.kill('SIGUSR2');
  const lines = () =>
    loch
      .stderr()
      .slice(from)
      .match(/stats( \{|: worker \d+:)/g)?.length ?? 0;
  for (let i = 0; i < 750 && lines() < workers; i++) await new Promise((r) => setTimeout(r, 20));
  expect(lines()).toBe(workers);
  return loch.stderr().slice(from);
}

const drivers = availableDrivers();

/** Resident set of a process in MiB (/proc/<pid>/status VmRSS). */
function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Math.round(Number(m![1]) / 102.4) / 10;
}

/**
 * A process's descriptors that a dead worker could leak: every non-socket descriptor (rings,
 * eventfds, epoll, pipes, files) and its listening TCP sockets. Other sockets are left out:
 * the surviving worker's pooled upstream connections come and go with the load.
 */
function leakableFds(pid: number): { other: number; listening: number } {
  const sockets = new Set<string>();
  let other = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    const socket = /^socket:\[(\d+)\]$/.exec(target);
    if (socket) sockets.add(socket[1]!);
    else other++;
  }
  let listening = 0;
  for (const table of ['tcp', 'tcp6']) {
    for (const line of readFileSync(`/proc/${pid}/net/${table}`, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      // st is column 3 (0A = LISTEN), the inode column 9.
      if (cols[3] === '0A' && sockets.has(cols[9]!)) listening++;
    }
  }
  return { other, listening };
}

describe('LOCH_DEBUG_CRASH_WORKER', () => {
  it('names a worker index, or nothing; anything else is refused by name', () => {
    expect(debugCrashWorker(undefined, 2)).toBeUndefined();
    expect(debugCrashWorker('', 2)).toBeUndefined();
    expect(debugCrashWorker('1', 2)).toBe(1);
    expect(debugCrashWorker('2', 2)).toEqual({
      error: 'LOCH_DEBUG_CRASH_WORKER=2 is not a worker index (0..1)',
    });
    expect(debugCrashWorker('x', 2)).toMatchObject({
      error: expect.stringContaining('LOCH_DEBUG_CRASH_WORKER=x'),
    });
  });
});

describe('LOCH_DEBUG_FAULT and LOCH_WORKER_WATCHDOG_MS', () => {
  it('name a fault and a watchdog timeout, or nothing; anything else is refused by name', () => {
    expect(debugFault(undefined)).toBe('throw');
    expect(debugFault('drop-completions')).toBe('drop-completions');
    expect(debugFault('hang')).toEqual({
      error: 'LOCH_DEBUG_FAULT=hang is not a fault (throw, exit, drop-completions)',
    });
    expect(workerWatchdog(undefined)).toBeUndefined();
    expect(workerWatchdog('0')).toBe(false);
    expect(workerWatchdog('2000')).toEqual({ intervalMs: 500, timeoutMs: 2000 });
    expect(workerWatchdog('60000')).toEqual({ intervalMs: 1000, timeoutMs: 60000 });
    expect(workerWatchdog('50')).toMatchObject({
      error: expect.stringContaining('LOCH_WORKER_WATCHDOG_MS=50'),
    });
  });
});

describe.each(drivers)('worker supervision (driver %s)', (driver) => {
  let nginx: Nginx;
  let dir: string;
  let A: number;
  let B: number;

  beforeAll(async () => {
    dir = tempDir('loch-proxy-supervision-');
    nginx = await startNginx(['A', 'B']);
    [A, B] = nginx.ports as [number, number];
  }, 60_000);

  afterAll(async () => {
    await nginx?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('replaces a crashed worker while the other keeps answering; the replacement serves the reloaded config; a crash loop leaves loch serving on the healthy worker', async () => {
    const port = await freePort();
    const loch = await startLoch(dir, config(port, A), { LOCH_DRIVER: driver, LOCH_DEBUG_CRASH_WORKER: '1' });
    try {
      // Reload first: the replacement must come up on this config, not on the one loch started with.
      let from = loch.stderr().length;
      writeFileSync(loch.configPath, config(port, B));
      loch.child.kill('SIGHUP');
      await loch.waitFor(/reloaded .*\(generation 1\)/, from);
      expect(await fetchOnce(port, '/first')).toMatch(/^B \/first /);
      // Descriptors and memory before any crash: a dead worker's ring, listener and connections
      // must not outlive it (checked after six crashes below).
      const fdsBefore = leakableFds(loch.child.pid!);
      const rssBefore = rssMiB(loch.child.pid!);

      const load = steadyLoad(port, 4);
      await answersMore(load, 20);
      from = loch.stderr().length;
      expect(await crashOnce(loch, 1)).toBe('restarted');
      const crashLog = loch.stderr().slice(from);
      // Logged with its cause, then the restart.
      expect(crashLog).toMatch(/worker 1 crashed: Error: fault injected: worker 1 throws/);
      expect(crashLog).toMatch(/restarting it in \d+ ms \(crash 1 within/);
      // (The file watch may have reloaded once more after the SIGHUP: the latest generation counts.)
      const latest = () =>
        Math.max(...[...loch.stderr().matchAll(/reloaded .*\(generation (\d+)\)/g)].map((m) => Number(m[1])));
      const serving = /worker 1 restarted \(crash 1 of 5 allowed .*\); serving generation (\d+)/.exec(
        crashLog,
      );
      expect(serving?.[1]).toBe(String(latest()));
      await answersMore(load, 40);
      const phase1 = await load.stop();
      // Only exchanges on the dead worker may fail: per client, the one in flight and one
      // connection queued on its listening socket.
      expect(phase1.failed).toBeLessThanOrEqual(2 * load.loops);
      expect(phase1.bodies.length).toBeGreaterThanOrEqual(60);
      expect(phase1.bodies.every((b) => b.startsWith('B /load '))).toBe(true);

      // The replacement serves generation 1 on its own listener: kept-alive clients spread over
      // both workers, every one answered from B.
      const kept = await Promise.all(Array.from({ length: 24 }, () => keptAlive(port)));
      expect(kept.map((k) => k.first)).toEqual(kept.map(() => expect.stringMatching(/^B \/kept /)));
      const both = await stats(loch, 2);
      expect(both).toMatch(new RegExp(`stats \\{"worker":1,"generation":${latest()},"connections":[1-9]`));
      expect(both).toMatch(
        new RegExp(`stats \\{"worker":1,[^\\n]*"listeners":\\["tcp:127\\.0\\.0\\.1:${port}"\\]`),
      );
      expect(both).toMatch(new RegExp(`stats \\{"worker":0,"generation":${latest()},`));
      for (const k of kept) k.socket.destroy();

      // Crash worker 1 until it is given up; loch keeps serving on worker 0 throughout.
      const load2 = steadyLoad(port, 2);
      let outcome: 'restarted' | 'crash loop' = 'restarted';
      let crashes = 1;
      for (; crashes < 10 && outcome === 'restarted'; crashes++) outcome = await crashOnce(loch, 1);
      expect(outcome).toBe('crash loop');
      expect(crashes).toBe(6);
      expect(loch.stderr()).toMatch(
        /worker 1 is in a crash loop \(6 crashes within 60000 ms\): not restarted again; worker\(s\) 0 still serving/,
      );
      await answersMore(load2, 20);
      const phase2 = await load2.stop();
      expect(phase2.failed).toBeLessThanOrEqual(2 * load2.loops * 5);
      expect(phase2.bodies.every((b) => b.startsWith('B /load '))).toBe(true);
      for (let i = 0; i < 20; i++) expect(await fetchOnce(port, '/after')).toMatch(/^B \/after /);
      const one = await stats(loch, 2);
      expect(one).toMatch(new RegExp(`stats \\{"worker":0,"generation":${latest()},`));
      expect(one).toMatch(/stats: worker 1: .*not running \(crash-loop\)/);
      expect(loch.child.exitCode).toBeNull();
      const settle = performance.now();
      const leaked = () => {
        const now = leakableFds(loch.child.pid!);
        return now.other > fdsBefore.other || now.listening > fdsBefore.listening;
      };
      while (leaked() && performance.now() - settle < 10_000) await new Promise((r) => setTimeout(r, 100));
      const fdsAfter = leakableFds(loch.child.pid!);
      const rssAfter = rssMiB(loch.child.pid!);
      console.log(
        `[${driver}] after 6 crashes of worker 1: non-socket fds ${fdsBefore.other} -> ${fdsAfter.other}, listening sockets ${fdsBefore.listening} -> ${fdsAfter.listening}, RSS ${rssBefore} -> ${rssAfter} MiB`,
      );
      // Worker 1 is given up, so fewer descriptors than before are fine; more would be a leak
      // (its ring, eventfds or listener outliving it).
      expect(fdsAfter.other).toBeLessThanOrEqual(fdsBefore.other);
      expect(fdsAfter.listening).toBeLessThanOrEqual(fdsBefore.listening);
      expect(rssAfter - rssBefore).toBeLessThan(256);
    } catch (error) {
      await loch.stop();
      throw new Error(`${(error as Error).message}\nloch's stderr:\n${loch.stderr()}`, { cause: error });
    }
    expect(await loch.stop()).toBe(0);
  }, 180_000);

  it('replaces worker 0 with its Unix listener: the replacement takes over the socket path', async () => {
    // The socket file the dead worker left is stale: the replacement removes it and binds
    // (both drivers' listenUnix with removeStale).
    const port = await freePort();
    const path = join(dir, `loch-${driver}.sock`);
    const text = `${config(port, A)}
[servers.sock]
listener = { type = "unix", value = "${path}" }

[[servers.sock.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${B}" }]
`;
    const loch = await startLoch(
      dir,
      text,
      { LOCH_DRIVER: driver, LOCH_DEBUG_CRASH_WORKER: '0' },
      `unix-${driver}.toml`,
    );
    try {
      expect((await curl(['--unix-socket', path, 'http://loch/u'])).out).toMatch(/^B \/u /);
      expect(await crashOnce(loch, 0)).toBe('restarted');
      expect((await curl(['--unix-socket', path, 'http://loch/u2'])).out).toMatch(/^B \/u2 /);
      expect(await fetchOnce(port, '/t')).toMatch(/^A \/t /);
    } catch (error) {
      await loch.stop();
      throw new Error(`${(error as Error).message}\nloch's stderr:\n${loch.stderr()}`, { cause: error });
    }
    expect(await loch.stop()).toBe(0);
  }, 120_000);

  it('replaces a wedged worker (its ring drops every completion, or its legacy thread blocks) that only the watchdog finds; the other keeps answering', async () => {
    const port = await freePort();
    const loch = await startLoch(dir, config(port, A), {
      LOCH_DRIVER: driver,
      LOCH_DEBUG_CRASH_WORKER: '1',
      LOCH_DEBUG_FAULT: 'drop-completions',
      LOCH_WORKER_WATCHDOG_MS: '2000',
    });
    try {
      const load = steadyLoad(port, 4);
      await answersMore(load, 20);
      const from = loch.stderr().length;
      // (Without the watchdog nothing ever replaces it: crashOnce gives up after 60 s.)
      expect(await crashOnce(loch, 1)).toBe('restarted');
      const log = loch.stderr().slice(from);
      expect(log).toMatch(
        /SIGURG: crashing worker 1 on purpose \(LOCH_DEBUG_CRASH_WORKER, fault drop-completions\)/,
      );
      expect(log).toMatch(
        /worker 1 crashed: Error: worker 1 is wedged: no heartbeat for \d+ ms \(watchdog 2000 ms\)/,
      );
      await answersMore(load, 40);
      const result = await load.stop();
      // Only exchanges that reached the wedged worker fail: per client, the one in flight and
      // one connection queued on its listening socket.
      expect(result.failed).toBeLessThanOrEqual(2 * load.loops);
      expect(result.bodies.every((b) => b.startsWith('A /load '))).toBe(true);
      // The replacement serves: kept-alive clients spread over both workers again.
      const kept = await Promise.all(Array.from({ length: 16 }, () => keptAlive(port)));
      expect(kept.map((k) => k.first)).toEqual(kept.map(() => expect.stringMatching(/^A \/kept /)));
      const both = await stats(loch, 2);
      expect(both).toMatch(/stats \{"worker":1,"generation":0,"connections":[1-9]/);
      for (const k of kept) k.socket.destroy();
    } catch (error) {
      await loch.stop();
      throw new Error(`${(error as Error).message}\nloch's stderr:\n${loch.stderr()}`, { cause: error });
    }
    expect(await loch.stop()).toBe(0);
  }, 120_000);

  it('exits 1 once every worker is in a crash loop', async () => {
    const port = await freePort();
    const loch = await startLoch(dir, config(port, A, 1), {
      LOCH_DRIVER: driver,
      LOCH_DEBUG_CRASH_WORKER: '0',
    });
    try {
      let outcome: 'restarted' | 'crash loop' = 'restarted';
      for (let i = 0; i < 10 && outcome === 'restarted'; i++) {
        expect(await fetchOnce(port, '/x')).toMatch(/^A \/x /);
        outcome = await crashOnce(loch, 0);
      }
      expect(outcome).toBe('crash loop');
      expect(await loch.exited).toBe(1);
      expect(loch.stderr()).toMatch(/worker 0 is in a crash loop .*no worker left/);
      expect(loch.stderr()).toMatch(/every worker in a crash loop: stopping/);
    } finally {
      await loch.stop('SIGKILL');
    }
  }, 180_000);
});

/** A kept-alive client connection that got one answer (its first body), left open. */
function keptAlive(port: number): Promise<{ socket: net.Socket; first: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let got = '';
    socket.setEncoding('latin1');
    socket.on('error', reject);
    socket.on('connect', () => socket.write('GET /kept HTTP/1.1\r\nhost: loch\r\n\r\n'));
    socket.on('data', (d: string) => {
      got += d;
      const head = got.indexOf('\r\n\r\n');
      const length = /\r\ncontent-length: (\d+)/i.exec(got);
      if (head >= 0 && length && got.length >= head + 4 + Number(length[1])) {
        socket.removeAllListeners('data');
        resolve({ socket, first: got.slice(head + 4) });
      }
    });
  });
}
