// setRecvLowWater (SO_RCVLOWAT) on io_uring streams, on descriptors and on direct slots: a
// receive waiting with the mark at 5 is not woken by a 4-byte write, and completes with 5 bytes
// once the fifth comes (without the mark the same peer gives a 4-byte chunk first: the control
// that makes the test fail if the call does nothing); a FIN still wakes it below the mark; an
// equal call makes no syscall; and where it cannot apply (Unix, legacy) it says false.
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadNative, loadTls, type NativeBinding } from '@loch/native';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLegacyDriver } from '../legacy/index.js';
import type { ByteStream, StreamListener } from '../stream.js';
import { createUringDriver, probeUring, type UringDriver } from './index.js';
import { SO_RCVLOWAT, SOL_SOCKET } from './sockopt.js';
import type { UringStream } from './stream.js';

const probe = probeUring();
const native = loadNative();
const nativeProbe = 'error' in native ? undefined : native.binding.probe();
// A direct stream sets the mark by a URING_CMD setsockopt record (Linux 6.7+).
const direct =
  probe.available && nativeProbe?.ok === true && nativeProbe.directFiles === true && nativeProbe.ops.uringCmd;

const tlsLoaded = loadTls();
const tlsEngine = 'tls' in tlsLoaded ? tlsLoaded.tls : undefined;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/**
 * Two event-loop turns: the ring's flush (setImmediate, scheduled when the receive was asked)
 * has submitted it, and the kernel tried it at once (nothing queued) and armed its poll.
 */
const afterFlush = async () => {
  for (let i = 0; i < 2; i++) await new Promise((resolve) => setImmediate(resolve));
};

function nodeClient(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const c = connect(port, '127.0.0.1', () => resolve(c));
    c.once('error', reject);
  });
}

function write(socket: Socket, bytes: number[]): Promise<void> {
  return new Promise((resolve, reject) =>
    socket.write(Uint8Array.from(bytes), (e) => (e ? reject(e) : resolve())),
  );
}

async function acceptPair(listener: StreamListener): Promise<{ server: ByteStream; client: Socket }> {
  const port = (listener.localAddress as { port: number }).port;
  const accepted = listener[Symbol.asyncIterator]().next();
  const client = await nodeClient(port);
  return { server: (await accepted).value as ByteStream, client };
}

/**
 * The first chunk `server` receives when its peer writes 4 bytes, then (after the 4 sit in the
 * server's receive queue: loopback delivers them within the write; the pause is margin) 1 more.
 * The receive is waiting before the 4 arrive: the mark holds back the wake-up, not a receive
 * that finds bytes already queued.
 */
async function firstChunkOf4Then1(server: ByteStream, client: Socket): Promise<number> {
  const first = server.recv();
  await afterFlush();
  await write(client, [1, 2, 3, 4]);
  // Loopback delivers the 4 within the write; the pause is margin (a late one can only make
  // the marked case read 4, a false failure, never a false pass).
  await sleep(50);
  await write(client, [5]);
  const chunk = await first;
  if (chunk === null) throw new Error('end of stream');
  const n = chunk.bytes.length;
  chunk.release();
  return n;
}

const modes = [
  { name: 'descriptors', directFiles: 0, runs: probe.available },
  { name: 'direct descriptors', directFiles: 256, runs: direct },
];

for (const mode of modes) {
  describe.skipIf(!mode.runs)(`io_uring setRecvLowWater (${mode.name})`, () => {
    let driver: UringDriver | undefined;
    afterEach(async () => {
      vi.restoreAllMocks();
      await driver?.close();
      driver = undefined;
    });

    function open(): { driver: UringDriver; binding: NativeBinding } {
      driver = createUringDriver({
        entries: 64,
        bufferCount: 64,
        bufferSize: 4096,
        directFiles: mode.directFiles,
      });
      const binding = (driver as unknown as { host: { binding: NativeBinding } }).host.binding;
      return { driver, binding };
    }

    it('holds a waiting receive until the mark: 4 bytes then 1 come as one 5-byte chunk (4 without the mark)', async () => {
      const { driver } = open();
      const listener = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
      const marked = await acceptPair(listener);
      expect(marked.server.setRecvLowWater?.(5)).toBe(true);
      expect(await firstChunkOf4Then1(marked.server, marked.client)).toBe(5);
      const plain = await acceptPair(listener);
      expect(await firstChunkOf4Then1(plain.server, plain.client)).toBe(4);
      // Back to 1 (the default): a 4-byte write wakes the reader again.
      expect(marked.server.setRecvLowWater?.(1)).toBe(true);
      expect(await firstChunkOf4Then1(marked.server, marked.client)).toBe(4);
      for (const p of [marked, plain]) {
        p.client.destroy();
        await p.server.close();
      }
      await listener.close();
    });

    it('still completes below the mark at end of stream: 3 bytes, then the FIN', async () => {
      const { driver } = open();
      const listener = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
      const { server, client } = await acceptPair(listener);
      expect(server.setRecvLowWater?.(5)).toBe(true);
      const first = server.recv();
      await afterFlush();
      client.end(Uint8Array.of(7, 8, 9));
      const chunk = await first;
      expect(chunk === null ? null : Array.from(chunk.bytes)).toEqual([7, 8, 9]);
      chunk?.release();
      expect(await server.recv()).toBeNull();
      await server.close();
      await listener.close();
    });

    it('makes no syscall for the value already set', async () => {
      const { driver, binding } = open();
      const listener = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
      const { server, client } = await acceptPair(listener);
      const setSockOpt = vi.spyOn(binding, 'setSockOpt');
      const push = vi.spyOn(
        (driver as unknown as { host: { ring: { push: () => void } } }).host.ring,
        'push',
      );
      const asks = () =>
        mode.directFiles > 0
          ? push.mock.calls.filter((c) => (c as unknown[])[6] === SO_RCVLOWAT).length
          : setSockOpt.mock.calls.filter((c) => c[1] === SOL_SOCKET && c[2] === SO_RCVLOWAT).length;
      expect(server.setRecvLowWater?.(1)).toBe(true); // the kernel's default
      expect(asks()).toBe(0);
      expect(server.setRecvLowWater?.(5)).toBe(true);
      expect(server.setRecvLowWater?.(5)).toBe(true);
      expect(asks()).toBe(1);
      expect(server.setRecvLowWater?.(2)).toBe(true);
      expect(asks()).toBe(2);
      expect(() => server.setRecvLowWater?.(0)).toThrow(RangeError);
      client.destroy();
      await server.close();
      expect(server.setRecvLowWater?.(5)).toBe(false);
      await listener.close();
    });
  });
}

describe.skipIf(!probe.available || tlsEngine === undefined)(
  'io_uring setRecvLowWater under in-ring TLS',
  () => {
    it('puts a mark set before back to 1 at attachTls, and says false after it: ciphertext', async () => {
      // In-ring TLS needs a descriptor stream.
      const driver = createUringDriver({ entries: 64, bufferCount: 64, bufferSize: 4096, directFiles: 0 });
      try {
        const listener = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
        const { server, client } = await acceptPair(listener);
        const served = server as UringStream;
        if (!driver.host.ring.tlsCapable) return;
        const context = new tlsEngine!.TlsContext(true, 0, 0, '', '');
        const events = { onTlsEvent: () => undefined, onTlsTransportEnd: () => undefined };
        expect(served.setRecvLowWater(5)).toBe(true);
        const setSockOpt = vi.spyOn(driver.host.binding, 'setSockOpt');
        expect(served.attachTls(new tlsEngine!.TlsSession(context), events)).toBe(0);
        // The mark set before goes back to 1: the socket's bytes are ciphertext now.
        expect(setSockOpt.mock.calls.filter((c) => c[2] === SO_RCVLOWAT).map((c) => c[3])).toEqual([1]);
        vi.restoreAllMocks();
        expect(served.setRecvLowWater(5)).toBe(false);
        client.destroy();
        await served.close();
        await listener.close();
      } finally {
        await driver.close();
      }
    });
  },
);

describe.skipIf(!direct)('io_uring setRecvLowWater after a refused record', () => {
  it('answers false on direct streams once the ring saw the kernel refuse one (before 6.7)', async () => {
    const driver = createUringDriver({ entries: 64, bufferCount: 64, bufferSize: 4096, directFiles: 64 });
    try {
      const listener = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
      const { server, client } = await acceptPair(listener);
      const ring = driver.host.ring;
      const push = vi.spyOn(ring, 'push');
      ring.directSockoptRefused = true;
      expect(server.setRecvLowWater?.(5)).toBe(false);
      expect(push).not.toHaveBeenCalled();
      vi.restoreAllMocks();
      client.destroy();
      await server.close();
      await listener.close();
    } finally {
      await driver.close();
    }
  });
});

describe.skipIf(!probe.available)('io_uring setRecvLowWater on a Unix stream', () => {
  it('says false: the kernel wakes a Unix reader on every write', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loch-lowat-'));
    const driver = createUringDriver({ entries: 64, bufferCount: 64, bufferSize: 4096 });
    try {
      const path = join(dir, 's.sock');
      const listener = await driver.listenUnix({ path });
      const accepted = listener[Symbol.asyncIterator]().next();
      const client = await driver.connectUnix({ path });
      const server = (await accepted).value!;
      expect(server.setRecvLowWater?.(5)).toBe(false);
      await client.close();
      await server.close();
      await listener.close();
    } finally {
      await driver.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('legacy setRecvLowWater', () => {
  it('says false: net.Socket has no SO_RCVLOWAT', async () => {
    const driver = createLegacyDriver();
    const listener = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
    const { server, client } = await acceptPair(listener);
    expect(server.setRecvLowWater?.(5)).toBe(false);
    client.destroy();
    await server.close();
    await listener.close();
    await driver.close();
  });
});
