/**
 * Driver selection (option, env LOCH_DRIVER, auto fallback, typed errors) and the public socket
 * API on top of it (TcpListener/TcpStream/Unix*, sleep, timeout, open-stream accounting).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  copy,
  createRuntime,
  currentRuntime,
  RuntimeError,
  resolveDriverChoice,
  sleep,
  spawn,
  TcpListener,
  TcpStream,
  timeout,
  UnixListener,
  UnixStream,
} from '../src/index.js';

const savedEnv = process.env.LOCH_DRIVER;
afterEach(() => {
  if (savedEnv === undefined) delete process.env.LOCH_DRIVER;
  else process.env.LOCH_DRIVER = savedEnv;
});

describe('driver selection', () => {
  it('honours LOCH_DRIVER=legacy when no option is given', async () => {
    process.env.LOCH_DRIVER = 'legacy';
    const lines: string[] = [];
    const runtime = await createRuntime({ log: (line) => lines.push(line) });
    try {
      expect(runtime.driver.name).toBe('legacy');
      expect(runtime.selection).toMatchObject({ driver: 'legacy', requested: 'legacy', source: 'env' });
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain('legacy');
    } finally {
      await runtime.close();
    }
  });

  it('lets the option win over LOCH_DRIVER', async () => {
    process.env.LOCH_DRIVER = 'uring';
    const runtime = await createRuntime({ driver: 'legacy', log: () => undefined });
    expect(runtime.selection.source).toBe('option');
    expect(runtime.driver.name).toBe('legacy');
    await runtime.close();
  });

  it('rejects an invalid LOCH_DRIVER with a typed error naming the variable', async () => {
    process.env.LOCH_DRIVER = 'epoll';
    const error = await createRuntime({ log: () => undefined }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RuntimeError);
    expect((error as RuntimeError).code).toBe('ERR_LOCH_INVALID_DRIVER');
    expect((error as RuntimeError).message).toContain('LOCH_DRIVER');
    expect((error as RuntimeError).message).toContain('epoll');
  });

  it('rejects an invalid option value', () => {
    expect(() => resolveDriverChoice('fast', undefined)).toThrow(
      expect.objectContaining({ code: 'ERR_LOCH_INVALID_DRIVER' }),
    );
    expect(resolveDriverChoice(undefined, '')).toEqual({ choice: 'auto', source: 'default' });
  });

  it('auto picks a driver and says why', async () => {
    delete process.env.LOCH_DRIVER;
    const runtime = await createRuntime({ log: () => undefined });
    try {
      expect(runtime.selection.requested).toBe('auto');
      expect(runtime.selection.source).toBe('default');
      expect(['uring', 'legacy']).toContain(runtime.driver.name);
      expect(runtime.selection.reason.length).toBeGreaterThan(0);
    } finally {
      await runtime.close();
    }
  });

  it('currentRuntime() is one runtime per thread', async () => {
    const a = await currentRuntime();
    const b = await currentRuntime();
    expect(a).toBe(b);
    await a.close();
    const c = await currentRuntime();
    expect(c).not.toBe(a);
    await c.close();
  });
});

describe('public socket API (legacy driver)', () => {
  it('TcpListener/TcpStream echo, copy, and count open streams', async () => {
    const runtime = await createRuntime({ driver: 'legacy', log: () => undefined });
    try {
      const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime });
      const served = (async () => {
        const stream = await listener.accept();
        const n = await copy(stream, stream);
        await stream.close();
        return n;
      })();
      const client = await TcpStream.connect({
        host: '127.0.0.1',
        port: (listener.localAddress as { port: number }).port,
        runtime,
      });
      expect(client.runtime).toBe(runtime);
      await client.writeAll(Buffer.from('abc'));
      await client.shutdown();
      const [n, buf] = await client.read(new Uint8Array(8));
      expect(Buffer.from(buf.subarray(0, n)).toString()).toBe('abc');
      expect(await served).toBe(3);
      expect(runtime.openStreams).toBe(1);
      await client.close();
      expect(runtime.openStreams).toBe(0);
      // A closed stream still names its runtime, and a second close is not counted again.
      expect(client.runtime).toBe(runtime);
      await client.close();
      expect(runtime.openStreams).toBe(0);
      await runtime.whenIdle();
      await runtime.stopAccepting();
      await expect(listener.accept()).rejects.toBeInstanceOf(RuntimeError);
    } finally {
      await runtime.close();
    }
  });

  it('UnixListener/UnixStream by path', async () => {
    const runtime = await createRuntime({ driver: 'legacy', log: () => undefined });
    const dir = await mkdtemp(join(tmpdir(), 'loch-rt-'));
    try {
      const path = join(dir, 's.sock');
      const listener = await UnixListener.bind({ path, runtime });
      const accepted = listener.accept();
      const client = await UnixStream.connect({ path, runtime });
      const server = await accepted;
      await server.writeAll(Buffer.from('hi'));
      const [n] = await client.read(new Uint8Array(2));
      expect(n).toBeGreaterThan(0);
      await client.close();
      await server.close();
      await listener.close();
    } finally {
      await runtime.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('spawn counts a task as open work until it settles, and reports its failure', async () => {
    const runtime = await createRuntime({ driver: 'legacy', log: () => undefined });
    try {
      let finish!: () => void;
      const gate = new Promise<void>((resolve) => {
        finish = resolve;
      });
      await spawn(() => gate, { runtime });
      expect(runtime.tasks).toBe(1);
      let idle = false;
      const idling = runtime.whenIdle().then(() => {
        idle = true;
      });
      await sleep(1, { runtime });
      expect(idle).toBe(false);
      finish();
      await idling;
      expect(runtime.tasks).toBe(0);
      const failures: unknown[] = [];
      await spawn(
        () => {
          throw new Error('task broke');
        },
        { runtime, onError: (error) => failures.push(error) },
      );
      await runtime.whenIdle();
      expect(failures).toEqual([expect.objectContaining({ message: 'task broke' })]);
    } finally {
      await runtime.close();
    }
  });

  it('sleep and timeout', async () => {
    const runtime = await createRuntime({ driver: 'legacy', log: () => undefined });
    try {
      await sleep(1, { runtime });
      const never = new Promise<never>(() => undefined);
      await expect(timeout(never, 10)).rejects.toMatchObject({ code: 'ETIMEDOUT', syscall: 'timeout' });
      await expect(timeout(Promise.resolve(7), 1000)).resolves.toBe(7);
      let aborted = false;
      await expect(
        timeout((signal) => {
          signal.addEventListener('abort', () => {
            aborted = true;
          });
          return never;
        }, 10),
      ).rejects.toMatchObject({ code: 'ETIMEDOUT' });
      expect(aborted).toBe(true);
    } finally {
      await runtime.close();
    }
  });
});
