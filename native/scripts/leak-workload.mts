/**
 * Workload of the leak check (leak-check.mjs): drives the io_uring driver of
 * @loch/uring-runtime through listen, many connect/echo/close cycles over TCP and Unix,
 * cancellations (abort of read, recv, accept, sleep; close with pending ops), refused connects
 * and splice, then a worker that is terminated without closing its driver. Fails (exit 1) when the
 * process's descriptors or io_uring instances are not back to their baseline. Needs the monorepo
 * checkout (it imports the driver from packages/uring-runtime/src). Not a test of behaviour.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ByteStream, StreamListener } from '../../packages/uring-runtime/src/stream.js';
import { createUringDriver } from '../../packages/uring-runtime/src/uring/index.js';

const cycles = Number(process.env.LEAK_CYCLES ?? 200);

function descriptors(): { fds: number; rings: number } {
  let rings = 0;
  const entries = readdirSync('/proc/self/fd');
  for (const fd of entries) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).includes('io_uring')) rings++;
    } catch {
      // the directory's own fd
    }
  }
  return { fds: entries.length, rings };
}

function serveEcho(listener: StreamListener): void {
  (async () => {
    for await (const s of listener) {
      (async () => {
        try {
          for (;;) {
            const chunk = await s.recv();
            if (chunk === null) break;
            await s.writeAll(chunk.bytes);
            chunk.release();
          }
        } catch {
          // peer went away
        }
        await s.close();
      })();
    }
  })().catch(() => undefined);
}

async function echoOnce(c: ByteStream, text: string): Promise<void> {
  await c.writeAll(Buffer.from(text));
  const buf = new Uint8Array(64);
  let got = 0;
  while (got < text.length) {
    const [n] = await c.read(buf.subarray(got));
    if (n === 0) throw new Error('early end of stream');
    got += n;
  }
}

async function workload(): Promise<void> {
  const driver = createUringDriver({ entries: 256, bufferCount: 256, bufferSize: 4096 });
  const tcp = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
  const port = tcp.localAddress.family === 'unix' ? 0 : tcp.localAddress.port;
  serveEcho(tcp);
  const path = join(tmpdir(), `loch-leak-${process.pid}.sock`);
  const unix = await driver.listenUnix({ path });
  serveEcho(unix);

  for (let done = 0; done < cycles; done += 20) {
    await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const c =
          i % 4 === 0
            ? await driver.connectUnix({ path })
            : await driver.connectTcp({ host: '127.0.0.1', port });
        await echoOnce(c, `cycle ${done + i}`);
        if (i % 5 === 0) {
          // Cancel a read by signal, then close with a recv pending.
          const ac = new AbortController();
          const reading = c.read(new Uint8Array(16), { signal: ac.signal }).catch(() => undefined);
          ac.abort();
          await reading;
          const receiving = c.recv().catch(() => undefined);
          await c.close();
          await receiving;
        } else {
          await c.close();
        }
      }),
    );
  }
  // Refused connects and aborted timers/accepts.
  const gone = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
  const gonePort = gone.localAddress.family === 'unix' ? 0 : gone.localAddress.port;
  await gone.close();
  for (let i = 0; i < 10; i++)
    await driver.connectTcp({ host: '127.0.0.1', port: gonePort }).catch(() => undefined);
  const ac = new AbortController();
  const sleeping = driver.sleep(60_000, { signal: ac.signal }).catch(() => undefined);
  const extra = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
  const accepting = extra.accept({ signal: ac.signal }).catch(() => undefined);
  ac.abort();
  await Promise.all([sleeping, accepting]);
  // Splice one message through a forwarder.
  const front = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
  const frontPort = front.localAddress.family === 'unix' ? 0 : front.localAddress.port;
  const forwarding = (async () => {
    const a = await front.accept();
    const b = await driver.connectTcp({ host: '127.0.0.1', port });
    const splice = driver.splice;
    await splice(a, b, 4096);
    await splice(b, a, 4096);
    await Promise.all([a.close(), b.close()]);
  })();
  const c = await driver.connectTcp({ host: '127.0.0.1', port: frontPort });
  await echoOnce(c, 'spliced');
  await forwarding;
  await c.close();
  await driver.close();
}

async function workerTerminatedWithoutClose(): Promise<void> {
  // Workers do not inherit tsx's loader hooks: register them first, then load the driver.
  const tsx = import.meta.resolve('tsx/esm/api');
  const driverUrl = new URL('../../packages/uring-runtime/src/uring/index.ts', import.meta.url).href;
  const source = `
    const { register } = await import(${JSON.stringify(tsx)});
    register();
    const { createUringDriver } = await import(${JSON.stringify(driverUrl)});
    const d = createUringDriver({ entries: 64, bufferCount: 64, bufferSize: 4096 });
    const l = await d.listenTcp({ host: '127.0.0.1', port: 0 });
    const c = await d.connectTcp({ host: '127.0.0.1', port: l.localAddress.port });
    const s = await l.accept();
    await c.writeAll(Buffer.from('x'));
    const chunk = await s.recv();
    chunk.release();
    // The armed accept and recv keep this thread alive, like a listening server: the parent
    // terminates it with the listener, both streams and the ring still open.
    (await import('node:worker_threads')).parentPort.postMessage('ready');
  `;
  const url = new URL(`data:text/javascript,${encodeURIComponent(source)}`);
  await new Promise<void>((resolve, reject) => {
    const w = new Worker(url);
    w.on('message', () => void w.terminate());
    w.on('error', reject);
    w.on('exit', () => resolve());
  });
}

const before = descriptors();
await workload();
await workerTerminatedWithoutClose();
const after = descriptors();
const ok = after.fds === before.fds && after.rings === before.rings;
console.log(JSON.stringify({ cycles, before, after, ok }));
if (!ok) process.exitCode = 1;
