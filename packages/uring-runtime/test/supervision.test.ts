/**
 * Supervision of start()'s workers: a worker that throws, exits or fails at start is replaced
 * by a thread with the same index after a back-off, while the other workers keep serving;
 * commands in flight to the dead one fail, commands during the restart fail clearly; too many
 * crashes is a crash loop that gives the index up; a stop never restarts and never hangs on a
 * restart; fault injection is off unless asked; a crash on either driver leaks no descriptor.
 */
import { once } from 'node:events';
import { readdirSync, readlinkSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createRuntime,
  type Runtime,
  type StartOptions,
  start,
  TcpListener,
  type WorkerCrash,
  type WorkerCrashLoop,
  type WorkerPool,
  type WorkerRestart,
} from '../src/index.js';
import type { SupervisedData } from './fixtures/supervised-worker.js';

const fixture = new URL('./fixtures/supervised-worker.ts', import.meta.url);

let pool: WorkerPool | undefined;
let holder: Runtime | undefined;
afterEach(async () => {
  await pool?.stop({ deadline: 2000 });
  await holder?.close();
  pool = undefined;
  holder = undefined;
});

/** Starts the fixture on a port reserved with a reusePort listener, released once it is up. */
async function startPool(
  options: StartOptions,
  replacement?: SupervisedData['replacement'],
): Promise<number> {
  holder = await createRuntime({ driver: 'legacy', log: () => undefined });
  const reserved = await TcpListener.bind({ host: '127.0.0.1', port: 0, reusePort: true, runtime: holder });
  const port = (reserved.localAddress as { port: number }).port;
  const data: SupervisedData = replacement === undefined ? { port } : { port, replacement };
  pool = await start({ driver: 'legacy', ...options, data }, fixture);
  await reserved.close();
  return port;
}

/** Connects and reads the worker's `<index>:<restarts>` line; rejects when the connection fails. */
function whoServes(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      text += d;
    });
    socket.once('end', () => resolve(text.trim()));
    socket.once('error', reject);
  });
}

/**
 * Asks worker `index` to crash. The command's reply and the crash race (they travel on
 * different channels), so its outcome is not looked at.
 */
function crashWorker(p: WorkerPool, index: number, how: 'throw' | 'exit'): void {
  p.send(index, { cmd: how }).catch(() => undefined);
}

function collect<T>(p: WorkerPool, event: string): T[] {
  const seen: T[] = [];
  p.on(event, (value: T) => seen.push(value));
  return seen;
}

/**
 * The watchdog tests' timing. The supervisor must see a beat from each worker within timeoutMs:
 * with 1 s, an idle worker of the loaded CI machine (every suite at once on 2 cores) could be
 * declared wedged because its thread waited for a core, so the timeout is 5 s, and the tests'
 * quiet windows are counted in beats, never in milliseconds.
 */
const WATCHDOG = { intervalMs: 200, timeoutMs: 5000 } as const;
/** Beats that take longer than the watchdog's timeout (and 1 s more), however late the threads. */
const BEATS_PAST_TIMEOUT = Math.ceil((WATCHDOG.timeoutMs + 1000) / WATCHDOG.intervalMs);

/** Each worker's count of beats sent (the fixture's `beats`); undefined for one that did not answer. */
async function beatCounts(p: WorkerPool): Promise<(number | undefined)[]> {
  const replies = await p.broadcast({ cmd: 'beats' });
  return replies.map((r) => (r.ok ? (r.value as number) : undefined));
}

/**
 * Waits until every worker has sent `more` beats after `from` (its counts then), or a crash is
 * reported, or a worker stops answering. A worker's interval never fires early, so `more` beats
 * span at least `more * intervalMs` of the workers' time, however loaded the machine: when they
 * are in, a watchdog that would kill a beating worker has had that long to do it.
 */
async function beatsPast(
  p: WorkerPool,
  crashes: readonly WorkerCrash[],
  from: readonly number[],
  more: number,
): Promise<void> {
  // A bound for liveness only (a worker that stopped beating without being killed).
  const end = Date.now() + 90_000;
  for (;;) {
    if (crashes.length > 0) return;
    const counts = await beatCounts(p);
    if (counts.some((n) => n === undefined)) return;
    if (counts.every((n, i) => n! >= from[i]! + more)) return;
    if (Date.now() > end) throw new Error(`beats stalled at ${counts.join(', ')} (from ${from.join(', ')})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// Each test starts worker threads (a V8 isolate each, compiling the fixture's TypeScript) and
// replaces some: CPU-heavy. Beside the other suites on the 2-core CI machine they ran 5-10 times
// slower (1-5 s -> 15-20 s; six timed out at 20 s in one run, 4 burners at load ~25): the bound is
// liveness, not a duration under test.
describe('worker supervision', { timeout: 120_000 }, () => {
  it('replaces a worker that throws while the other keeps serving; in-flight commands fail, commands during the restart fail clearly', async () => {
    const port = await startPool({ workers: 2, restart: { minBackoffMs: 1000 } });
    const p = pool!;
    const survivor = p.workers[0]!.threadId;
    const inFlight = p.send(1, { cmd: 'hang' }, { timeout: 60_000 });
    const crashed = once(p, 'crash') as Promise<[WorkerCrash]>;
    const restarted = once(p, 'restart') as Promise<[WorkerRestart]>;
    // The first connection is made as the crash is reported: worker 1's thread is gone and the
    // back-off's timer cannot have run, so it is one worker 0 answers alone, however late this
    // thread is. (Probing only after the awaits below, a loaded machine could spend the whole
    // second of back-off first, and nothing was ever probed alone.)
    let aliveAtCrash = -1;
    let firstAlone: Promise<{ who: string } | { error: unknown }> | undefined;
    p.once('crash', () => {
      aliveAtCrash = p.alive;
      firstAlone = whoServes(port).then(
        (who) => ({ who }),
        (error: unknown) => ({ error }),
      );
    });
    crashWorker(p, 1, 'throw');

    await expect(inFlight).rejects.toMatchObject({ code: 'ERR_LOCH_WORKER_GONE' });
    const [crash] = await crashed;
    expect(crash).toMatchObject({ worker: 1, exitCode: 1, restartIn: 1000, attempt: 1 });
    expect(crash.error.message).toContain('bug in worker 1');
    // The back-off has not run yet (a timer, and we are in the same turn): clear failures.
    expect(p.status(1)).toBe('restarting');
    const during = await p.broadcast({ cmd: 'whoami' });
    expect(during[0]).toMatchObject({ ok: true, value: { index: 0, restarts: 0 } });
    expect(during[1]).toMatchObject({ ok: false, error: { code: 'ERR_LOCH_WORKER_RESTARTING' } });
    expect(() => p.injectFault(1)).toThrow(/fault/i);

    // Connections keep being answered: by worker 0 alone while no replacement thread exists
    // (the back-off), then by both (the replacement serves once it has bound, maybe before its
    // main resolved and 'restart' was emitted).
    const alone = new Set<string>();
    const served = new Set<string>();
    expect(aliveAtCrash).toBe(1);
    const first = await firstAlone!;
    if ('error' in first) throw first.error;
    alone.add(first.who);
    let restart: WorkerRestart | undefined;
    void restarted.then(([r]) => {
      restart = r;
    });
    while (restart === undefined) {
      const single = p.alive === 1;
      const who = await whoServes(port);
      (single ? alone : served).add(who);
    }
    for (let i = 0; i < 400 && !served.has('1:1'); i++) served.add(await whoServes(port));
    expect([...alone]).toEqual(['0:0']);
    expect([...served].sort()).toContain('1:1');
    expect([...served].every((who) => who === '0:0' || who === '1:1')).toBe(true);
    expect(restart).toMatchObject({ worker: 1, attempt: 1, info: { index: 1, restarts: 1 } });
    expect(p.status(1)).toBe('running');
    expect(p.workers[0]!.threadId).toBe(survivor);
    expect(p.workers[1]!.restarts).toBe(1);
    await expect(p.send(1, { cmd: 'whoami' })).resolves.toMatchObject({ index: 1, restarts: 1 });
    expect(await p.stop()).toEqual({ graceful: [0, 1], forced: [] });
  });

  it('replaces a worker that exits with a non-zero code, and one that fail() declares failed', async () => {
    await startPool({ workers: 2, restart: { minBackoffMs: 10 } });
    const p = pool!;
    const crashes = collect<WorkerCrash>(p, 'crash');
    let restarted = once(p, 'restart') as Promise<[WorkerRestart]>;
    crashWorker(p, 0, 'exit');
    expect((await restarted)[0]).toMatchObject({ worker: 0, attempt: 1 });
    expect(crashes[0]).toMatchObject({ worker: 0, exitCode: 3, restartIn: 10 });
    expect(crashes[0]!.error.message).toBe('worker 0 exited with code 3');

    restarted = once(p, 'restart') as Promise<[WorkerRestart]>;
    const cause = new Error('readiness check failed');
    expect(p.fail(1, cause)).toBe(true);
    expect((await restarted)[0]).toMatchObject({ worker: 1, attempt: 1 });
    expect(crashes[1]).toMatchObject({ worker: 1, error: cause, restartIn: 10 });
    const replies = await p.broadcast({ cmd: 'whoami' });
    expect(replies.map((r) => r.ok && r.value)).toEqual([
      expect.objectContaining({ index: 0, restarts: 1 }),
      expect.objectContaining({ index: 1, restarts: 1 }),
    ]);
  });

  for (const replacement of ['fail', 'exit'] as const) {
    it(`backs off exponentially and gives an index up after too many crashes (replacements ${replacement} at start); the other keeps serving`, async () => {
      const port = await startPool({
        workers: 2,
        restart: { minBackoffMs: 10, maxBackoffMs: 25, maxRestarts: 3, windowMs: 60_000 },
      });
      const p = pool!;
      // Replacements get the data set now; the running workers keep theirs.
      p.setData({ port, replacement } satisfies SupervisedData);
      const crashes = collect<WorkerCrash>(p, 'crash');
      const restarts = collect<WorkerRestart>(p, 'restart');
      const looped = once(p, 'crash-loop') as Promise<[WorkerCrashLoop]>;
      crashWorker(p, 1, 'throw');
      const [loop] = await looped;

      expect(loop).toMatchObject({ worker: 1, crashes: 4, windowMs: 60_000 });
      expect(crashes.map((c) => [c.worker, c.attempt, c.restartIn])).toEqual([
        [1, 1, 10],
        [1, 2, 20],
        [1, 3, 25],
        [1, 4, undefined],
      ]);
      expect(crashes[0]!.error.message).toContain('bug in worker 1');
      for (const c of crashes.slice(1)) {
        if (replacement === 'fail') expect(c.error.message).toContain('worker 1 cannot start');
        else expect(c).toMatchObject({ exitCode: 4 });
      }
      expect(restarts).toEqual([]);
      expect(p.status(1)).toBe('crash-loop');
      expect(p.alive).toBe(1);
      await expect(p.send(1, { cmd: 'whoami' })).rejects.toMatchObject({ code: 'ERR_LOCH_WORKER_GONE' });
      await expect(p.send(0, { cmd: 'whoami' })).resolves.toMatchObject({
        index: 0,
        restarts: 0,
        data: { port },
      });
      for (let i = 0; i < 20; i++) expect(await whoServes(port)).toBe('0:0');
      expect(await p.stop()).toEqual({ graceful: [0, 1], forced: [] });
    });
  }

  it('a stop during the back-off restarts nothing and does not wait for it', async () => {
    await startPool({ workers: 2, restart: { minBackoffMs: 600_000, maxBackoffMs: 600_000 } });
    const p = pool!;
    const restarts = collect<WorkerRestart>(p, 'restart');
    const crashed = once(p, 'crash');
    crashWorker(p, 1, 'throw');
    await crashed;
    expect(await p.stop({ deadline: 5000 })).toEqual({ graceful: [0, 1], forced: [] });
    expect(restarts).toEqual([]);
    expect(p.status(1)).toBe('stopped');
    expect(p.alive).toBe(0);
  });

  it('a stop terminates a replacement still booting instead of waiting for it', async () => {
    const port = await startPool({ workers: 2, restart: { minBackoffMs: 1 } });
    const p = pool!;
    p.setData({ port, replacement: 'hang' } satisfies SupervisedData);
    const restarts = collect<WorkerRestart>(p, 'restart');
    const crashed = once(p, 'crash');
    crashWorker(p, 1, 'throw');
    await crashed;
    for (let i = 0; i < 500 && p.alive < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(p.alive).toBe(2);
    expect(p.status(1)).toBe('restarting');
    expect(await p.stop({ deadline: 600_000 })).toEqual({ graceful: [0, 1], forced: [] });
    expect(restarts).toEqual([]);
    expect(p.alive).toBe(0);
  });

  it('restart: false reports the crash and leaves the index dead', async () => {
    await startPool({ workers: 2, restart: false });
    const p = pool!;
    const crashed = once(p, 'crash') as Promise<[WorkerCrash]>;
    crashWorker(p, 1, 'throw');
    expect((await crashed)[0]).toMatchObject({ worker: 1, restartIn: undefined, attempt: 1 });
    expect(p.status(1)).toBe('exited');
    await expect(p.send(1, { cmd: 'whoami' })).rejects.toMatchObject({ code: 'ERR_LOCH_WORKER_GONE' });
    await expect(p.send(0, { cmd: 'whoami' })).resolves.toMatchObject({ index: 0 });
  });

  it('injects faults only when start() allowed it', async () => {
    await startPool({ workers: 1 });
    expect(() => pool!.injectFault(0)).toThrow(
      expect.objectContaining({ code: 'ERR_LOCH_FAULT_INJECTION_OFF' }),
    );
    await pool!.stop();
    await holder?.close();

    await startPool({ workers: 2, faultInjection: true, restart: { minBackoffMs: 1 } });
    const p = pool!;
    const crashes = collect<WorkerCrash>(p, 'crash');
    let restarted = once(p, 'restart');
    p.injectFault(1, 'throw');
    await restarted;
    restarted = once(p, 'restart');
    p.injectFault(0, 'exit');
    await restarted;
    expect(crashes.map((c) => [c.worker, c.exitCode])).toEqual([
      [1, 1],
      [0, 70],
    ]);
    expect(crashes[0]!.error.message).toBe('fault injected: worker 1 throws');
  });

  for (const driver of ['legacy', 'uring'] as const) {
    it(`the watchdog replaces a wedged worker (drop-completions, ${driver} driver) and leaves an idle one alone`, async (test) => {
      const available = await createRuntime({ driver, log: () => undefined }).then(
        (runtime) => runtime.close().then(() => true),
        () => false,
      );
      if (!available) test.skip(`the ${driver} driver is unavailable here`);
      const port = await startPool({
        workers: 2,
        driver,
        faultInjection: true,
        restart: { minBackoffMs: 1 },
        watchdog: WATCHDOG,
      });
      const p = pool!;
      const crashes = collect<WorkerCrash>(p, 'crash');
      // Idle workers beat on: more than a timeout's worth of beats is no crash.
      await beatsPast(p, crashes, [0, 0], BEATS_PAST_TIMEOUT);
      expect(crashes).toEqual([]);
      const restarted = once(p, 'restart') as Promise<[WorkerRestart]>;
      p.injectFault(1, 'drop-completions');
      // A bound for liveness (without the watchdog it never comes), not a latency target.
      const outcome = await Promise.race([
        restarted.then(([r]) => r),
        new Promise<'not replaced'>((r) => setTimeout(() => r('not replaced'), 60_000)),
      ]);
      expect(outcome).toMatchObject({ worker: 1, attempt: 1 });
      expect(crashes).toHaveLength(1);
      expect(crashes[0]!.worker).toBe(1);
      expect(crashes[0]!.error.message).toMatch(
        /^worker 1 is wedged: no heartbeat for \d+ ms \(watchdog 5000 ms\)$/,
      );
      // Both serve again: the replacement (1:1) and worker 0, untouched.
      const served = new Set<string>();
      for (let i = 0; i < 400 && !(served.has('1:1') && served.has('0:0')); i++)
        served.add(await whoServes(port));
      expect(served).toEqual(new Set(['0:0', '1:1']));
    }, 120_000);
  }

  for (const driver of ['legacy', 'uring'] as const) {
    it(`a heartbeat that fails once does not silence a worker for good (${driver} driver)`, async (test) => {
      const available = await createRuntime({ driver, log: () => undefined }).then(
        (runtime) => runtime.close().then(() => true),
        () => false,
      );
      if (!available) test.skip(`the ${driver} driver is unavailable here`);
      await startPool({ workers: 1, driver, watchdog: WATCHDOG });
      const p = pool!;
      const crashes = collect<WorkerCrash>(p, 'crash');
      const armed = (await p.send(0, { cmd: 'reject-heartbeat' })) as { armed: boolean; beats: number };
      expect(armed.armed).toBe(true);
      // More than a timeout's worth of beats after the failed one: they keep the worker alive
      // (a worker silenced by the failure beats no more, and the watchdog kills it).
      await beatsPast(p, crashes, [armed.beats], BEATS_PAST_TIMEOUT);
      expect(crashes).toEqual([]);
      expect(p.status(0)).toBe('running');
    }, 120_000);
  }

  it('a watchdog check that itself ran late (the main thread stalled) kills no worker', async () => {
    await startPool({ workers: 2, watchdog: WATCHDOG });
    const p = pool!;
    const crashes = collect<WorkerCrash>(p, 'crash');
    await p.broadcast({ cmd: 'whoami' });
    // The main thread blocks past the timeout inside a timer, so the watchdog's overdue check
    // runs next, before the beats that wait unread meanwhile.
    await new Promise<void>((r) =>
      setTimeout(() => {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, WATCHDOG.timeoutMs + 500);
        r();
      }, 0),
    );
    // Checks after the stall, on time again, see the workers beating (a kill at the late
    // check would have ended them at once).
    const after = (await beatCounts(p)).map((n) => n ?? 0);
    await beatsPast(p, crashes, after, 5);
    expect(crashes).toEqual([]);
    const replies = await p.broadcast({ cmd: 'whoami' });
    expect(replies.map((r) => r.ok)).toEqual([true, true]);
  }, 120_000);

  it('the heartbeat is not activity: an idle thread that beats still looks idle to the idle-trim policy', async (test) => {
    const runtime = await createRuntime({ driver: 'uring', log: () => undefined }).catch(() => undefined);
    if (runtime === undefined) test.skip('the uring driver is unavailable here');
    try {
      const driver = runtime!.driver;
      await driver.sleep(1);
      const before = driver.activityCount!();
      for (let i = 0; i < 3; i++) await driver.heartbeat!();
      expect(driver.activityCount!()).toBe(before);
      await driver.sleep(1);
      expect(driver.activityCount!()).toBeGreaterThan(before);
    } finally {
      await runtime?.close();
    }
  });

  it('refuses a bad watchdog', async () => {
    await expect(
      start({ workers: 1, watchdog: { intervalMs: 100, timeoutMs: 150 } }, fixture),
    ).rejects.toMatchObject({
      code: 'ERR_LOCH_INVALID_WATCHDOG',
    });
  });

  it('refuses a bad restart policy', async () => {
    await expect(start({ workers: 1, restart: { minBackoffMs: -1 } }, fixture)).rejects.toMatchObject({
      code: 'ERR_LOCH_INVALID_RESTART',
    });
    await expect(
      start({ workers: 1, restart: { minBackoffMs: 100, maxBackoffMs: 10 } }, fixture),
    ).rejects.toMatchObject({ code: 'ERR_LOCH_INVALID_RESTART' });
  });

  for (const driver of ['legacy', 'uring'] as const) {
    it(`a worker crashing or terminated on the ${driver} driver leaves no descriptor behind; its replacement serves`, async (test) => {
      const available = await createRuntime({ driver, log: () => undefined }).then(
        (runtime) => runtime.close().then(() => true),
        () => false,
      );
      if (!available) test.skip(`the ${driver} driver is unavailable here`);
      const port = await startPool({ workers: 2, driver, restart: { minBackoffMs: 1 } });
      const p = pool!;
      const crashes = collect<WorkerCrash>(p, 'crash');
      const fds = () =>
        readdirSync('/proc/self/fd')
          .map((fd) => {
            try {
              // The kind of descriptor: a replacement's are new objects of the same kinds.
              return readlinkSync(`/proc/self/fd/${fd}`).replace(/\[\d+\]$/, '');
            } catch {
              return 'gone';
            }
          })
          .sort();
      // Let both workers settle (accepts armed), then count.
      for (let i = 0; i < 10; i++) await whoServes(port);
      const before = fds();
      // An uncaught error, an exit, and a termination by fail() (accepts still in flight).
      for (const how of ['throw', 'exit', 'fail'] as const) {
        const restarted = once(p, 'restart');
        if (how === 'fail') p.fail(1, new Error('terminated by the test'));
        else crashWorker(p, 1, how);
        await restarted;
      }
      const served = new Set<string>();
      for (let i = 0; i < 400 && !served.has('1:3'); i++) served.add(await whoServes(port));
      expect(served.has('1:3')).toBe(true);
      let after = fds();
      for (let i = 0; i < 200 && after.length > before.length; i++) {
        await new Promise((r) => setTimeout(r, 10));
        after = fds();
      }
      // A leak is a kind of descriptor with more open after than before. Fewer is no leak: the
      // test's own client sockets of the warm-up may still have been closing at the first count.
      const count = (list: string[]) => {
        const m = new Map<string, number>();
        for (const k of list) m.set(k, (m.get(k) ?? 0) + 1);
        return m;
      };
      const had = count(before);
      const grown = [...count(after)].filter(([kind, n]) => n > (had.get(kind) ?? 0));
      expect(grown).toEqual([]);
      expect(crashes.map((c) => c.worker)).toEqual([1, 1, 1]);
    });
  }
});
