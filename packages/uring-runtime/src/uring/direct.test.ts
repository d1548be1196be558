// Direct (registered) descriptors in the runtime (issue 18; README.md, "Direct descriptors"):
// TCP listeners accept into the ring's direct table, streams run on slots. Echo over direct
// streams with the peer's address from the accept (no address() call), the fd table not growing,
// the per-thread connection cap, what a direct stream refuses (splice: zeroCopy copies instead),
// and in a process of its own with `ulimit -n 300`: 500 connections held by 2 worker threads,
// then one worker terminated and each of its clients reading EOF.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadNative, type NativeBinding } from '@loch/native';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { zeroCopy } from '../copy.js';
import { createUringDriver, probeUring, type UringDriver, type UringStream } from './index.js';
import { decodeSockaddr } from './listener.js';

const probe = probeUring();
const native = loadNative();
const nativeProbe = 'error' in native ? undefined : native.binding.probe();
const direct = probe.available && nativeProbe?.ok === true && nativeProbe.directFiles === true;

const fdCount = (): number => readdirSync('/proc/self/fd').length;

function nodeClient(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const c = connect(port, '127.0.0.1', () => resolve(c));
    c.once('error', reject);
  });
}

describe('decodeSockaddr', () => {
  const v6 = (words: number[], port = 80): Uint8Array => {
    const b = new Uint8Array(32);
    b[0] = 10;
    b[2] = port >> 8;
    b[3] = port & 255;
    words.forEach((w, i) => {
      b[8 + 2 * i] = w >> 8;
      b[9 + 2 * i] = w & 255;
    });
    return b;
  };
  const textOf = (b: Uint8Array): string | undefined => {
    const a = decodeSockaddr(b);
    return a === undefined || a.family === 'unix' ? undefined : a.address;
  };
  it('reads sockaddr_in and sockaddr_in6 as inet_ntop writes them', () => {
    expect(decodeSockaddr(Uint8Array.of(2, 0, 0x1f, 0x90, 127, 0, 0, 1))).toEqual({
      family: 'ipv4',
      address: '127.0.0.1',
      port: 8080,
    });
    expect(textOf(v6([0, 0, 0, 0, 0, 0, 0, 1]))).toBe('::1');
    expect(textOf(v6([0, 0, 0, 0, 0, 0, 0, 0]))).toBe('::');
    expect(textOf(v6([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1]))).toBe('2001:db8::1:0:0:1');
    expect(textOf(v6([0xfe80, 0, 0, 0, 0x1ff, 0xfe23, 0x4567, 0x890a]))).toBe('fe80::1ff:fe23:4567:890a');
    expect(textOf(v6([0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0001]))).toBe('::ffff:10.0.0.1');
    expect(textOf(v6([1, 0, 2, 0, 3, 0, 4, 0]))).toBe('1:0:2:0:3:0:4:0');
    expect(decodeSockaddr(v6([1, 2, 3, 4, 5, 6, 7, 8]))).toMatchObject({ port: 80 });
    expect(decodeSockaddr(Uint8Array.of(1, 0, 0, 0))).toBeUndefined();
  });
});

describe.skipIf(!direct)('io_uring direct descriptors', () => {
  let driver: UringDriver | undefined;
  afterEach(async () => {
    vi.restoreAllMocks();
    await driver?.close();
    driver = undefined;
  });

  function open(options: { directFiles?: number; maxConnections?: number } = {}): {
    driver: UringDriver;
    binding: NativeBinding;
  } {
    driver = createUringDriver({
      entries: 256,
      bufferCount: 64,
      bufferSize: 4096,
      directFiles: 1024,
      ...options,
    });
    const host = (driver as unknown as { host: { binding: NativeBinding; ring: { directFiles: number } } })
      .host;
    expect(host.ring.directFiles).toBe(options.directFiles ?? 1024);
    return { driver, binding: host.binding };
  }

  it('echoes over direct streams; remoteAddress is the client with no address() call; the fd table grows by the clients only', async () => {
    const { driver, binding } = open();
    const address = vi.spyOn(binding, 'address');
    const directAddress = vi.spyOn(binding, 'directAddress');
    const listener = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
    const port = (listener.localAddress as { port: number }).port;
    address.mockClear();
    const served: UringStream[] = [];
    const serving = (async () => {
      for await (const s of listener) {
        served.push(s);
        void (async () => {
          for (;;) {
            const c = await s.recv();
            if (c === null) break;
            const copy = Uint8Array.from(c.bytes);
            c.release();
            await s.writeAll(copy);
          }
          await s.close();
        })();
      }
    })();
    const before = fdCount();
    const clients: Socket[] = [];
    for (let i = 0; i < 100; i++) clients.push(await nodeClient(port));
    const replies = await Promise.all(
      clients.map(
        (c, i) =>
          new Promise<string>((resolve) => {
            c.once('data', (d) => resolve(d.toString()));
            c.write(`ping ${i}`);
          }),
      ),
    );
    const grew = fdCount() - before;
    expect(replies).toEqual(clients.map((_, i) => `ping ${i}`));
    expect(served.length).toBe(100);
    expect(served.every((s) => s.direct)).toBe(true);
    // 100 clients' descriptors; the 100 accepted sockets are slots (200 without direct descriptors).
    expect(grew).toBeGreaterThanOrEqual(100);
    expect(grew).toBeLessThan(110);
    const byPort = new Map(served.map((s) => [(s.remoteAddress as { port: number }).port, s]));
    for (const c of clients) {
      const s = byPort.get(c.localPort!);
      expect(s?.remoteAddress).toEqual({ family: 'ipv4', address: '127.0.0.1', port: c.localPort });
      expect(s?.localAddress).toEqual({ family: 'ipv4', address: '127.0.0.1', port });
    }
    expect(address).not.toHaveBeenCalled();
    expect(directAddress).not.toHaveBeenCalled();
    await Promise.all(clients.map((c) => new Promise<void>((resolve) => c.end(() => resolve()))));
    await listener.close();
    await serving;
  });

  it('asks the slot for the local address only on a wildcard listener (FIXED_FD_INSTALL), and setNoDelay goes by a record', async () => {
    const { driver, binding } = open();
    const listener = await driver.listenTcp({ host: '0.0.0.0', port: 0 });
    const port = (listener.localAddress as { port: number }).port;
    const accepted = listener[Symbol.asyncIterator]().next();
    const client = await nodeClient(port);
    const server = (await accepted).value as UringStream;
    const setSockOpt = vi.spyOn(binding, 'setSockOpt');
    if (nativeProbe?.ok === true && nativeProbe.ops.fixedFdInstall)
      expect(server.localAddress).toEqual({ family: 'ipv4', address: '127.0.0.1', port });
    server.setNoDelay(false);
    expect(setSockOpt).not.toHaveBeenCalled();
    const got = new Promise<string>((resolve) => client.once('data', (d) => resolve(d.toString())));
    await server.writeAll(new TextEncoder().encode('after setsockopt'));
    expect(await got).toBe('after setsockopt');
    client.destroy();
    await server.close();
    await listener.close();
  });

  it('stops accepting at maxConnections and accepts again when a connection closes', async () => {
    const { driver } = open({ maxConnections: 3 });
    const listener = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
    const port = (listener.localAddress as { port: number }).port;
    const served: UringStream[] = [];
    const serving = (async () => {
      for await (const s of listener) served.push(s);
    })();
    const clients: Socket[] = [];
    for (let i = 0; i < 5; i++) clients.push(await nodeClient(port)); // the kernel completes all 5
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(served.length).toBe(3);
    await served[0]!.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(served.length).toBe(4);
    for (const c of clients) c.destroy();
    for (const s of served) await s.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(served.length).toBe(5); // the last one waited in the backlog
    await listener.close();
    await serving;
    for (const s of served) await s.close();
  });

  it('with a full table arms no accept (an accept into no free slot would drop its client): a close lets the next one in, nobody reads EOF', async () => {
    const { driver } = open({ directFiles: 3 });
    const listener = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
    const port = (listener.localAddress as { port: number }).port;
    const served: UringStream[] = [];
    const serving = (async () => {
      for await (const s of listener) served.push(s);
    })();
    const clients: Socket[] = [];
    const ended: boolean[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await nodeClient(port);
      ended.push(false);
      c.on('end', () => {
        ended[i] = true;
      });
      c.resume();
      clients.push(c);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(served.length).toBe(3);
    await served[0]!.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(served.length).toBe(4);
    await served[1]!.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(served.length).toBe(5);
    // Only the two the server closed read EOF; the waiting ones were taken, not dropped.
    expect(ended).toEqual([true, true, false, false, false]);
    for (const c of clients) c.destroy();
    await listener.close();
    await serving;
    for (const s of served) await s.close();
  });

  it('says once why a table was refused (more slots than the soft RLIMIT_NOFILE), and accepts on descriptors', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error & { code?: string }): void => {
      if (w.code === 'LOCH_URING_DIRECT_FILES') warnings.push(w.message);
    };
    process.on('warning', onWarning);
    try {
      driver = createUringDriver({ entries: 64, bufferCount: 64, bufferSize: 4096, directFiles: 1 << 20 });
      const ring = (
        driver as unknown as { host: { ring: { directFiles: number; info: { directFilesError?: number } } } }
      ).host.ring;
      expect(ring.directFiles).toBe(0);
      expect(ring.info.directFilesError).toBe(24); // EMFILE
      const listener = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
      const accepted = listener[Symbol.asyncIterator]().next();
      const client = await nodeClient((listener.localAddress as { port: number }).port);
      const server = (await accepted).value as UringStream;
      expect(server.direct).toBe(false);
      client.destroy();
      await server.close();
      await listener.close();
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain('EMFILE');
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('refuses to splice a direct stream (EOPNOTSUPP), and zeroCopy copies instead', async () => {
    const { driver } = open();
    const listener = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
    const port = (listener.localAddress as { port: number }).port;
    const it = listener[Symbol.asyncIterator]();
    const a = it.next();
    const ca = await nodeClient(port);
    const sa = (await a).value as UringStream;
    const b = it.next();
    const cb = await nodeClient(port);
    const sb = (await b).value as UringStream;
    await expect(driver.splice(sa, sb, 100)).rejects.toMatchObject({ code: 'EOPNOTSUPP' });
    const got = new Promise<string>((resolve) => {
      let text = '';
      cb.on('data', (d) => {
        text += d.toString();
      });
      cb.on('end', () => resolve(text));
    });
    const copying = zeroCopy(sa, sb, { driver });
    ca.end('through a copy');
    expect(await copying).toBe(14);
    expect(await got).toBe('through a copy');
    ca.destroy();
    cb.destroy();
    await sa.close();
    await sb.close();
    await listener.close();
  });
});

/** The child: 2 worker threads, each a ring with a direct table ('auto': the soft limit, 300). */
const CHILD = `
import { Worker } from 'node:worker_threads';
const WORKER = \`
  import { parentPort, workerData } from 'node:worker_threads';
  const tsx = await import(workerData.tsx);
  const { createUringDriver } = await tsx.tsImport(workerData.uring, workerData.uring);
  const driver = createUringDriver({ entries: 256, bufferCount: 64, bufferSize: 4096 });
  const listener = await driver.listenTcp({ host: '127.0.0.1', port: workerData.port, reusePort: true });
  parentPort.postMessage({ port: listener.localAddress.port, directFiles: driver.host.ring.directFiles });
  let held = 0;
  const streams = [];
  for await (const s of listener) {
    streams.push(s);
    held++;
    parentPort.postMessage({ held });
  }
\`;
const uring = process.env.URING_URL;
const tsx = process.env.TSX_API;
function start(port) {
  const w = new Worker(WORKER, { eval: true, workerData: { port, uring, tsx } });
  const state = { w, held: 0, port: undefined, directFiles: undefined };
  w.on('message', (m) => {
    if (m.error) { console.error(m.error); process.exit(1); }
    if (m.port !== undefined) { state.port = m.port; state.directFiles = m.directFiles; }
    if (m.held !== undefined) state.held = m.held;
  });
  return state;
}
const a = start(0);
while (a.port === undefined) await new Promise((r) => setTimeout(r, 10));
const b = start(a.port);
while (b.port === undefined) await new Promise((r) => setTimeout(r, 10));
console.log(JSON.stringify({ port: a.port, directFiles: [a.directFiles, b.directFiles] }));
process.stdin.on('data', async (d) => {
  const cmd = d.toString().trim();
  if (cmd === 'count') console.log(JSON.stringify({ held: [a.held, b.held] }));
  if (cmd === 'kill-a') { await a.w.terminate(); console.log(JSON.stringify({ killed: a.held })); }
  if (cmd === 'exit') process.exit(0);
});
`;

describe.skipIf(!direct)('io_uring direct descriptors past RLIMIT_NOFILE', () => {
  it("holds 500 connections in 2 workers under `ulimit -n 300`; a terminated worker's clients all read EOF", async () => {
    const uringUrl = new URL('./index.ts', import.meta.url).href;
    // Worker threads of the child load the TypeScript sources through tsx's API (as thread-entry.ts does).
    const tsxDir = dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
    const tsxApi = pathToFileURL(join(tsxDir, 'dist/esm/api/index.mjs')).href;
    const child = spawn(
      'bash',
      [
        '-c',
        `ulimit -n 300 && exec "${process.execPath}" --conditions=@loch/source --import tsx --input-type=module -e "$CHILD"`,
      ],
      {
        env: { ...process.env, CHILD, URING_URL: uringUrl, TSX_API: tsxApi, LOCH_URING_DIRECT_FILES: 'auto' },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d.toString();
    });
    const lines: unknown[] = [];
    let wake: (() => void) | undefined;
    let buffered = '';
    child.stdout.on('data', (d) => {
      buffered += d.toString();
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        lines.push(JSON.parse(buffered.slice(0, nl)));
        buffered = buffered.slice(nl + 1);
      }
      wake?.();
    });
    const next = async (): Promise<Record<string, unknown>> => {
      while (lines.length === 0) {
        if (child.exitCode !== null) throw new Error(`child exited: ${stderr}`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 200);
        });
      }
      return lines.shift() as Record<string, unknown>;
    };
    const clients: Socket[] = [];
    try {
      const started = await next();
      expect(started.directFiles).toEqual([300, 300]);
      const port = started.port as number;
      const eofs: Promise<boolean>[] = [];
      for (let i = 0; i < 500; i++) {
        const c = await nodeClient(port);
        c.on('error', () => undefined);
        eofs.push(new Promise((resolve) => c.once('end', () => resolve(true))));
        c.resume();
        clients.push(c);
      }
      let held: number[] = [0, 0];
      for (let i = 0; i < 50 && held[0]! + held[1]! < 500; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        child.stdin.write('count\n');
        held = (await next()).held as number[];
      }
      expect(held[0]! + held[1]!).toBe(500); // one process, RLIMIT_NOFILE 300
      expect(Math.min(held[0]!, held[1]!)).toBeGreaterThan(0);
      child.stdin.write('kill-a\n');
      const killed = (await next()).killed as number;
      expect(killed).toBe(held[0]);
      // Every client of the terminated worker reads EOF (within 2 s), none of the other's.
      let count = 0;
      for (const p of eofs) void p.then(() => count++);
      for (let i = 0; i < 20 && count < killed; i++) await new Promise((resolve) => setTimeout(resolve, 100));
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(count).toBe(killed);
    } finally {
      for (const c of clients) c.destroy();
      child.stdin.write('exit\n');
      child.kill();
    }
    expect(stderr).toBe('');
  }, 90_000);
});
