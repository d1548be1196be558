/**
 * start(): workers with their own runtimes on a shared reusePort port, broadcast with gathered
 * replies and timeouts, crash reports, CPU pinning, start failures, and a graceful stop that
 * stops accepting but lets an in-flight connection finish.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createRuntime,
  type Runtime,
  RuntimeError,
  start,
  TcpListener,
  type WorkerPool,
} from '../src/index.js';

const echoWorker = new URL('./fixtures/echo-worker.ts', import.meta.url);
const waitUntilWorker = new URL('./fixtures/wait-until-worker.ts', import.meta.url);

let pool: WorkerPool | undefined;
let holder: Runtime | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await pool?.stop({ deadline: 2000 });
  await holder?.close();
  pool = undefined;
  holder = undefined;
});

/** Reserves a port with a reusePort listener in this thread; returns it and the listener. */
async function sharedPort(): Promise<{ port: number; release: () => Promise<void> }> {
  holder = await createRuntime({ driver: 'legacy', log: () => undefined });
  const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, reusePort: true, runtime: holder });
  return { port: (listener.localAddress as { port: number }).port, release: () => listener.close() };
}

function connect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    sockets.push(socket);
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

// Each test starts worker threads (a V8 isolate each, compiling the fixture's TypeScript) and
// replaces some: CPU-heavy. Beside the other suites on the 2-core CI machine they ran 5-10 times
// slower (1-5 s -> 15-20 s; six timed out at 20 s in one run, 4 burners at load ~25): the bound is
// liveness, not a duration under test.
describe('start()', { timeout: 120_000 }, () => {
  it('runs main on every worker with its own runtime, and gathers broadcast replies', async () => {
    const { port, release } = await sharedPort();
    pool = await start({ workers: 2, driver: 'legacy', data: { port } }, echoWorker);
    await release();
    expect(pool.workers.map((w) => w.index)).toEqual([0, 1]);
    expect(pool.workers.every((w) => w.driver === 'legacy')).toBe(true);
    const replies = await pool.broadcast({ cmd: 'whoami' });
    expect(replies).toEqual([
      { worker: 0, ok: true, value: { index: 0, workers: 2, driver: 'legacy', port } },
      { worker: 1, ok: true, value: { index: 1, workers: 2, driver: 'legacy', port } },
    ]);
    const failed = await pool.broadcast({ cmd: 'fail' });
    expect(failed.every((r) => !r.ok && r.error.code === 'ERR_TEST_FAIL')).toBe(true);
    const hung = await pool.broadcast({ cmd: 'hang' }, { timeout: 100 });
    expect(hung.every((r) => !r.ok && r.error.code === 'ETIMEDOUT')).toBe(true);
    await expect(pool.send(1, { cmd: 'whoami' })).resolves.toMatchObject({ index: 1 });
  });

  it("gives every worker its own runtime on the thread's default driver choice", async () => {
    const { port, release } = await sharedPort();
    pool = await start({ workers: 2, data: { port } }, echoWorker);
    await release();
    const [first, second] = pool.workers;
    expect(['uring', 'legacy']).toContain(first?.driver);
    expect(second?.driver).toBe(first?.driver);
    expect(first?.threadId).not.toBe(second?.threadId);
    const client = await connect(port);
    client.end('ping\n');
    const text = await new Promise<string>((resolve) => {
      let got = '';
      client.on('data', (d: Buffer) => {
        got += d.toString();
      });
      client.on('end', () => resolve(got));
    });
    expect(text).toMatch(/^done:[01]\n$/);
  });

  it('gives every worker the V8 heap limits asked for (resourceLimits)', async () => {
    const { port, release } = await sharedPort();
    pool = await start(
      { workers: 2, driver: 'legacy', data: { port }, resourceLimits: { maxYoungGenerationSizeMb: 12 } },
      echoWorker,
    );
    await release();
    const limits = await pool.broadcast({ cmd: 'limits' });
    for (const reply of limits) {
      expect(reply.ok).toBe(true);
      expect((reply as { value: { maxYoungGenerationSizeMb: number } }).value.maxYoungGenerationSizeMb).toBe(
        12,
      );
    }
  });

  it('graceful stop closes the listeners but lets an in-flight connection finish', async () => {
    const { port, release } = await sharedPort();
    pool = await start({ workers: 2, driver: 'legacy', data: { port } }, echoWorker);
    await release();
    const client = await connect(port);
    client.write('hello');
    // Wait until a worker has accepted it.
    for (let i = 0; i < 200; i++) {
      const open = await pool.broadcast({ cmd: 'open' });
      if (open.reduce((sum, r) => sum + (r.ok ? (r.value as number) : 0), 0) === 1) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    let stopped = false;
    const stopping = pool.stop({ deadline: 15_000 }).then((result) => {
      stopped = true;
      return result;
    });
    // New connections are refused once every worker closed its listener.
    let refused = false;
    for (let i = 0; i < 200 && !refused; i++) {
      try {
        (await connect(port)).destroy();
        await new Promise((resolve) => setTimeout(resolve, 10));
      } catch (error) {
        refused = (error as { code?: string }).code === 'ECONNREFUSED';
      }
    }
    expect(refused).toBe(true);
    expect(stopped).toBe(false);
    const reply = new Promise<string>((resolve) => {
      let text = '';
      client.on('data', (data: Buffer) => {
        text += data.toString();
      });
      client.on('end', () => resolve(text));
    });
    client.write(' world\n');
    expect(await reply).toMatch(/^done:[01]\n$/);
    expect(await stopping).toEqual({ graceful: [0, 1], forced: [] });
    expect(pool.alive).toBe(0);
  });

  it('forces workers still busy at the deadline', async () => {
    const { port, release } = await sharedPort();
    pool = await start({ workers: 1, driver: 'legacy', data: { port } }, echoWorker);
    await release();
    await connect(port);
    for (let i = 0; i < 200; i++) {
      if ((await pool.send(0, { cmd: 'open' })) === 1) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(await pool.stop({ deadline: 200 })).toEqual({ graceful: [], forced: [0] });
  });

  it('a graceful stop ends a worker only after the work it handed to context.waitUntil settled', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loch-wait-until-'));
    const file = join(dir, 'done.txt');
    try {
      pool = await start({ workers: 2, driver: 'legacy', data: { file } }, waitUntilWorker);
      // No stream is open, so without waitUntil the stop would end both threads at once, before
      // their shutdown work (five 50 ms timer turns) wrote anything. The deadline is liveness only.
      expect(await pool.stop({ deadline: 60_000 })).toEqual({ graceful: [0, 1], forced: [] });
      expect(readFileSync(file, 'utf8').split('\n').filter(Boolean).sort()).toEqual(['done:0', 'done:1']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports a crashing worker', async () => {
    const { port, release } = await sharedPort();
    pool = await start({ workers: 1, driver: 'legacy', data: { port } }, echoWorker);
    await release();
    const crashes: unknown[] = [];
    pool.on('crash', (crash) => crashes.push(crash));
    await pool.send(0, { cmd: 'crash' });
    const crash = await pool.crashed;
    expect(crash.worker).toBe(0);
    expect(crash.error.message).toContain('boom in worker 0');
    expect(crashes).toHaveLength(1);
    const after = await pool.broadcast({ cmd: 'whoami' });
    expect(after[0]).toMatchObject({ ok: false });
  });

  for (const driver of ['legacy', 'uring'] as const) {
    it(`pins workers to CPUs when asked on the ${driver} driver (sched_setaffinity, verified in /proc)`, async (test) => {
      const available = await createRuntime({ driver, log: () => undefined }).then(
        (runtime) => runtime.close().then(() => true),
        () => false,
      );
      if (!available) test.skip(`the ${driver} driver is unavailable here`);
      const allowed = () =>
        /Cpus_allowed_list:\s+(\S+)/.exec(readFileSync('/proc/thread-self/status', 'utf8'))?.[1];
      const mainBefore = allowed();
      const { port, release } = await sharedPort();
      pool = await start({ workers: 2, driver, cpuAffinity: [0, 1], data: { port } }, echoWorker);
      await release();
      for (const info of pool.workers) {
        expect(info.driver).toBe(driver);
        expect(info.affinity).toBe(`pinned to cpu ${info.index}`);
        expect(info.cpu).toBe(info.index);
        const status = readFileSync(`/proc/self/task/${info.tid}/status`, 'utf8');
        expect(status).toMatch(new RegExp(`Cpus_allowed_list:\\s+${info.index}\\n`));
      }
      // Only the workers' own threads are pinned.
      expect(allowed()).toBe(mainBefore);
    });
  }

  it('reports a CPU that cannot be pinned as a failure and serves anyway', async () => {
    const { port, release } = await sharedPort();
    pool = await start({ workers: 1, driver: 'legacy', cpuAffinity: [4095], data: { port } }, echoWorker);
    await release();
    const [info] = pool.workers;
    expect(info?.affinity).toMatch(/^failed: sched_setaffinity\(cpu 4095\): EINVAL$/);
    expect(info?.cpu).toBeUndefined();
    await expect(pool.send(0, { cmd: 'whoami' })).resolves.toMatchObject({ index: 0 });
  });

  it('fails to start when the module has no main, and for bad options', async () => {
    await expect(
      start({ workers: 1, driver: 'legacy' }, new URL('./fixtures/no-main-worker.ts', import.meta.url)),
    ).rejects.toMatchObject({ message: expect.stringContaining('no main function') });
    await expect(start({ workers: 0 }, echoWorker)).rejects.toMatchObject({
      code: 'ERR_LOCH_INVALID_WORKERS',
    });
    const error = await start({ workers: 1, driver: 'kqueue' as never }, echoWorker).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RuntimeError);
    expect((error as RuntimeError).code).toBe('ERR_LOCH_INVALID_DRIVER');
  });
});
