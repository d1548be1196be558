// The warm cap on the kernel's provided-buffer ring (Ring.warmBuffers), over real loopback
// sockets (io_uring only). The kernel takes buffers from its ring in FIFO order; with the cap,
// released buffers wait on a stack and go back most recent first, so receives cycle through
// warmBuffers + 1 buffers instead of everything the budget lets the ring hold. Checked: one
// stream's receives reuse that few buffers (bytes intact); a burst larger than the cap (the
// kernel receives on 16 sockets before the thread drains once) still delivers every stream's
// bytes and doubles the cap; steady receives halve it again, the idle trim puts it back; the
// budget's own bound still rules.
import { writeSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { ByteStream, RecvChunk, StreamListener } from '../stream.js';
import { createUringDriver, probeUring } from './index.js';

const probe = probeUring();
if (!probe.available) console.warn(`warm buffer tests skipped: ${probe.reason}`);

const SIZE = 1024;

function portOf(l: StreamListener): number {
  const a = l.localAddress;
  if (a.family === 'unix') throw new Error('not a TCP listener');
  return a.port;
}

/** A node:net client and the served stream it connected to. */
async function netPairs(l: StreamListener, n: number): Promise<{ peers: Socket[]; served: ByteStream[] }> {
  const accepted = l[Symbol.asyncIterator]();
  const peers: Socket[] = [];
  const served: ByteStream[] = [];
  for (let i = 0; i < n; i++) {
    const peer = netConnect(portOf(l), '127.0.0.1');
    await new Promise<void>((resolve, reject) => peer.once('connect', resolve).once('error', reject));
    peer.on('error', () => undefined);
    peers.push(peer);
    served.push((await accepted.next()).value as ByteStream);
  }
  return { peers, served };
}

/** The socket's descriptor, to write to it synchronously (no event-loop turn in between). */
function fdOf(s: Socket): number {
  const fd = (s as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('no fd');
  return fd;
}

describe.skipIf(!probe.available)('uring driver: the warm cap on the provided-buffer ring', () => {
  it("one stream's receives cycle through warmBuffers + 1 buffers, not the budget's many", async () => {
    const driver = createUringDriver({ entries: 64, bufferCount: 64, bufferSize: SIZE, warmBuffers: 4 });
    const ring = driver.host.ring;
    const l = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
    try {
      expect(ring.warmBuffers).toBeGreaterThan(2);
      expect(ring.warmBuffers).toBeLessThanOrEqual(8);
      const { peers, served } = await netPairs(l, 1);
      const ids = new Set<number>();
      for (let i = 0; i < 40; i++) {
        const next = served[0]!.recv();
        peers[0]!.write(`message ${i}`);
        const chunk = (await next)!;
        expect(chunk.bytes.buffer).toBe(ring.poolBuffer);
        expect(Buffer.from(chunk.bytes).toString()).toBe(`message ${i}`);
        ids.add(Math.floor(chunk.bytes.byteOffset / SIZE));
        chunk.release();
      }
      // Without the cap the ring held the budget's 56 buffers and 40 receives took 40 of them.
      expect(ids.size).toBeLessThanOrEqual(5);
      expect(ring.buffersIn).toBeLessThanOrEqual(4);
      for (const p of peers) p.destroy();
      for (const s of served) await s.close();
    } finally {
      await l.close();
      await driver.close();
    }
  });

  it('a burst past the cap delivers every stream its bytes and doubles the cap; steady receives and the idle trim bring it back', async () => {
    const driver = createUringDriver({ entries: 64, bufferCount: 64, bufferSize: SIZE, warmBuffers: 2 });
    const ring = driver.host.ring;
    const l = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
    try {
      const { peers, served } = await netPairs(l, 16);
      const reads = served.map((s) => s.recv());
      await new Promise((r) => setTimeout(r, 50)); // every recv is armed
      // Synchronous writes: the kernel runs each receive (task work) at this thread's next
      // syscall, so all 16 take a buffer before JavaScript drains once. The ring holds 2.
      for (let i = 0; i < peers.length; i++) writeSync(fdOf(peers[i]!), `burst ${i}`);
      const chunks = (await Promise.all(reads)) as RecvChunk[];
      expect(chunks.map((c) => Buffer.from(c.bytes).toString())).toEqual(peers.map((_, i) => `burst ${i}`));
      // Doubled once for the burst (its 14 empty-ring recvs came in one drain), not 14 times.
      expect(ring.warmBuffers).toBeGreaterThan(2);
      expect(ring.warmBuffers).toBeLessThanOrEqual(8);
      for (const c of chunks) c.release();
      const raised = ring.warmBuffers;
      // WARM_DECAY (64) receives per buffer of the cap without a burst: it halves towards 2.
      for (let i = 0; i < raised * 64; i++) {
        const next = served[1]!.recv();
        peers[1]!.write(`steady ${i}`);
        const chunk = (await next)!;
        expect(Buffer.from(chunk.bytes).toString()).toBe(`steady ${i}`);
        chunk.release();
      }
      expect(ring.warmBuffers).toBe(Math.max(2, raised >> 1));
      driver.trimBuffers();
      expect(ring.warmBuffers).toBe(2);
      // The ring drains back down to the cap as receives take buffers and returns wait.
      for (let i = 0; i < 4; i++) {
        const again = served[0]!.recv();
        peers[0]!.write(`after ${i}`);
        const chunk = (await again)!;
        expect(Buffer.from(chunk.bytes).toString()).toBe(`after ${i}`);
        chunk.release();
      }
      expect(ring.buffersIn).toBeLessThanOrEqual(2);
      for (const p of peers) p.destroy();
      for (const s of served) await s.close();
    } finally {
      await l.close();
      await driver.close();
    }
  });

  it('a burst that undoes a halving makes the next halving wait twice as long', async () => {
    const driver = createUringDriver({ entries: 64, bufferCount: 64, bufferSize: SIZE, warmBuffers: 2 });
    const ring = driver.host.ring;
    const l = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
    try {
      const { peers, served } = await netPairs(l, 16);
      /** All 16 streams receive before JavaScript drains once (as in the test above). */
      const burst = async (tag: string): Promise<void> => {
        const reads = served.map((s) => s.recv());
        await new Promise((r) => setTimeout(r, 50));
        for (let i = 0; i < peers.length; i++) writeSync(fdOf(peers[i]!), `${tag} ${i}`);
        const chunks = (await Promise.all(reads)) as RecvChunk[];
        expect(chunks.map((c) => Buffer.from(c.bytes).toString())).toEqual(
          peers.map((_, i) => `${tag} ${i}`),
        );
        for (const c of chunks) c.release();
      };
      /** `n` receives on one stream, one at a time. */
      const steady = async (n: number): Promise<void> => {
        for (let i = 0; i < n; i++) {
          const next = served[1]!.recv();
          peers[1]!.write(`steady ${i}`);
          const chunk = (await next)!;
          expect(Buffer.from(chunk.bytes).toString()).toBe(`steady ${i}`);
          chunk.release();
        }
      };
      await burst('first');
      const raised = ring.warmBuffers;
      expect(raised).toBeGreaterThan(2);
      await steady(raised * 64); // WARM_DECAY receives per buffer: halved
      expect(ring.warmBuffers).toBe(raised >> 1);
      await burst('second'); // undoes the halving
      expect(ring.warmBuffers).toBe(raised);
      await steady(raised * 64); // no longer enough
      expect(ring.warmBuffers).toBe(raised);
      await steady(raised * 64); // twice WARM_DECAY
      expect(ring.warmBuffers).toBe(raised >> 1);
      // The idle trim starts over: the cap, and the wait back to WARM_DECAY receives a buffer.
      driver.trimBuffers();
      expect(ring.warmBuffers).toBe(2);
      await burst('after the trim');
      const raisedAgain = ring.warmBuffers;
      expect(raisedAgain).toBeGreaterThan(2);
      await steady(raisedAgain * 64);
      expect(ring.warmBuffers).toBe(raisedAgain >> 1);
      for (const p of peers) p.destroy();
      for (const s of served) await s.close();
    } finally {
      await l.close();
      await driver.close();
    }
  });

  it('the budget still bounds the ring below the cap (a small share)', async () => {
    // Share: 256 KiB - 64 KiB reserve = 192 KiB = 3 buffers of 64 KiB, below a cap of 32.
    const driver = createUringDriver({
      entries: 64,
      bufferCount: 64,
      bufferSize: 64 * 1024,
      warmBuffers: 32,
      buffers: { workerBytes: 256 * 1024, streamBytes: 192 * 1024 },
    });
    const ring = driver.host.ring;
    try {
      expect(ring.buffersIn).toBe(3);
      expect(ring.buffersOpen).toBe(3);
    } finally {
      await driver.close();
    }
  });

  it('refuses a cap below 1', () => {
    expect(() => createUringDriver({ warmBuffers: 0 })).toThrow(/warmBuffers/);
  });
});
