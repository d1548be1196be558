// Heap receive buffers from the thread's free list, over real loopback sockets (io_uring only: the
// legacy driver has no heap receives). A tiny provided-buffer pool whose buffers four readers
// keep makes every base read of the other streams a heap receive (HeapRecv in stream.ts). Checked:
// a heap receive reuses a buffer given back (allocations counted), every path gives the buffer
// back (release, close with a queued chunk, release after close, end of stream, reset, driver
// close), the list keeps at most its bound, the idle trim empties it, and, over random sequences
// of receives, releases and closes, a buffer is never on the list or lent twice while a chunk
// still has it (each kept chunk's bytes stay what the peer sent).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { loadTls, memoryTrimmer } from '@loch/native';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { BufferStats } from '../internal/buffer-budget.js';
import { createRuntime } from '../runtime.js';
import type { ByteStream, RecvChunk, StreamListener } from '../stream.js';
import { createUringDriver, probeUring, type UringDriver } from './index.js';
import type { UringStream } from './stream.js';

const probe = probeUring();
if (!probe.available) console.warn(`heap receive pool tests skipped: ${probe.reason}`);
const tlsLoaded = loadTls();
const tlsEngine = 'tls' in tlsLoaded ? tlsLoaded.tls : undefined;

/** A tiny pool: four readers keeping a chunk each leave the kernel's ring empty. */
const TINY = { entries: 64, bufferCount: 4, bufferSize: 1024 } as const;

type Served = ByteStream & { readonly heapRecvBytes: number; readonly heldBytes: number };

function portOf(l: StreamListener): number {
  const a = l.localAddress;
  if (a.family === 'unix') throw new Error('not a TCP listener');
  return a.port;
}

async function until(what: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Pressured {
  readonly port: number;
  /** A connected peer and its served stream (whose base reads are heap receives). */
  pair(): Promise<{ peer: ByteStream; served: Served }>;
  /** A node:net peer and its served stream. */
  netPair(): Promise<{ peer: Socket; served: Served }>;
  /** True when the chunk is a view of a heap buffer (not the provided or plaintext pool). */
  isHeap(chunk: RecvChunk): boolean;
  /** True when the chunk's buffer is on the thread's free list. */
  heapListed(chunk: RecvChunk): boolean;
  stats(): BufferStats;
  close(): Promise<void>;
}

/**
 * A listener on `driver` whose four first streams keep a pooled chunk each (their recvs armed
 * before any byte came, so each took one of the four provided buffers): the kernel's ring is
 * empty, and every base read of another stream is a heap receive.
 */
async function pressured(driver: UringDriver): Promise<Pressured> {
  const l = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
  const port = portOf(l);
  const accepted = l[Symbol.asyncIterator]();
  const accept = async () => (await accepted.next()).value as Served;
  const streams: { close(): unknown }[] = [];
  const held: RecvChunk[] = [];
  const ring = driver.host.ring;
  const isHeap = (c: RecvChunk) => c.bytes.buffer !== ring.poolBuffer && c.bytes.buffer !== ring.plainBuffer;
  const holders: { peer: ByteStream; served: Served }[] = [];
  for (let i = 0; i < TINY.bufferCount; i++) {
    const peer = await driver.connectTcp({ host: '127.0.0.1', port });
    const served = await accept();
    streams.push(peer, served);
    holders.push({ peer, served });
  }
  const reads = holders.map(({ served }) => served.recv());
  await Promise.all(holders.map(({ peer }, i) => peer.writeAll(new Uint8Array([i]))));
  for (const chunk of await Promise.all(reads)) {
    expect(isHeap(chunk!)).toBe(false);
    held.push(chunk!);
  }
  expect(ring.buffersIn).toBe(0);
  return {
    port,
    async pair() {
      const peer = await driver.connectTcp({ host: '127.0.0.1', port });
      const served = await accept();
      streams.push(peer, served);
      return { peer, served };
    },
    async netPair() {
      const peer = netConnect(port, '127.0.0.1');
      await new Promise<void>((resolve, reject) => peer.once('connect', resolve).once('error', reject));
      peer.on('error', () => undefined);
      const served = await accept();
      streams.push({ close: () => peer.destroy() }, served);
      return { peer, served };
    },
    isHeap,
    heapListed: (c) => ring.heapBuffers.holds(c.bytes.buffer),
    stats: () => driver.bufferStats(),
    async close() {
      for (const h of held) h.release();
      await Promise.all(streams.map((s) => s.close()));
      await l.close();
    },
  };
}

describe.skipIf(!probe.available)('uring driver: heap receive buffers from the thread free list', () => {
  it('a heap receive reuses the buffer the last chunk gave back (allocations counted)', async () => {
    const driver = createUringDriver(TINY);
    try {
      const p = await pressured(driver);
      const { peer, served } = await p.pair();
      const before = p.stats();
      const buffers = new Set<ArrayBufferLike>();
      for (let i = 0; i < 20; i++) {
        const next = served.recv();
        await peer.writeAll(Buffer.from(`message ${i}`));
        const chunk = (await next)!;
        expect(p.isHeap(chunk)).toBe(true);
        expect(Buffer.from(chunk.bytes).toString()).toBe(`message ${i}`);
        buffers.add(chunk.bytes.buffer);
        chunk.release();
      }
      const after = p.stats();
      // One 1 KiB buffer, made once and reused 19 times (20 allocations before the free list).
      expect(buffers.size).toBe(1);
      expect(after.heapAllocated - before.heapAllocated).toBe(1);
      expect(after.heapReused - before.heapReused).toBe(19);
      expect(after.heapLent).toBe(0);
      expect(after.heapPooled).toBe(1024);
      await p.close();
    } finally {
      await driver.close();
    }
  });

  it('gives the buffer back on every path: release, close with a queued chunk, release after close, end, reset, driver close', async () => {
    const driver = createUringDriver(TINY);
    let lentAtClose: RecvChunk | undefined;
    try {
      const p = await pressured(driver);
      const taken = () => p.stats().heapAllocated + p.stats().heapReused;

      // A queued chunk (its recv() was withdrawn before the bytes came): close() gives it back.
      {
        const { peer, served } = await p.pair();
        const ac = new AbortController();
        const pending = served.recv({ signal: ac.signal }).catch(() => null);
        await new Promise((r) => setTimeout(r, 20)); // its heap poll is armed
        ac.abort();
        expect(await pending).toBeNull();
        await peer.writeAll(Buffer.from('queued'));
        await until(() => served.heldBytes > 0);
        expect(served.heapRecvBytes).toBe(1024);
        expect(p.stats().heapLent).toBe(1);
        await served.close();
        expect(p.stats().heapLent).toBe(0);
        expect(p.stats().heapPooled).toBe(1024);
      }

      // A lent chunk outlives its stream's close: the buffer goes back at its release.
      {
        const { peer, served } = await p.pair();
        const next = served.recv();
        await peer.writeAll(Buffer.from('lent'));
        const chunk = (await next)!;
        expect(p.isHeap(chunk)).toBe(true);
        await served.close();
        expect(p.stats().heapLent).toBe(1);
        expect(p.stats().heapPooled).toBe(0); // the one buffer on the list is this chunk's
        chunk.release();
        chunk.release(); // twice: no second give-back
        expect(p.stats()).toMatchObject({ heapLent: 0, heapPooled: 1024 });
      }

      // End of stream: the poll says readable, the recv into the buffer reads 0, it goes back.
      {
        const { peer, served } = await p.pair();
        const before = taken();
        const next = served.recv();
        await new Promise((r) => setTimeout(r, 20));
        await peer.close();
        expect(await next).toBeNull();
        expect(taken() - before).toBe(1);
        expect(p.stats()).toMatchObject({ heapLent: 0, heapPooled: 1024 });
      }

      // A reset: the recv fails (ECONNRESET), the buffer goes back.
      {
        const { peer, served } = await p.netPair();
        const before = taken();
        const next = served.recv().then(
          () => 'ended',
          (e: { code?: string }) => e.code,
        );
        await new Promise((r) => setTimeout(r, 20));
        peer.resetAndDestroy();
        expect(await next).toBe('ECONNRESET');
        expect(taken() - before).toBe(1);
        expect(p.stats()).toMatchObject({ heapLent: 0, heapPooled: 1024 });
      }

      // Driver close with a chunk still lent: the list is emptied and keeps nothing after.
      {
        const { peer, served } = await p.pair();
        const next = served.recv();
        await peer.writeAll(Buffer.from('at close'));
        lentAtClose = (await next)!;
        expect(p.isHeap(lentAtClose)).toBe(true);
      }
      await p.close();
      await driver.close();
      expect(driver.bufferStats()).toMatchObject({ heapPooled: 0, heapLent: 1 });
      lentAtClose.release();
      expect(driver.bufferStats()).toMatchObject({ heapPooled: 0, heapLent: 0 });
    } finally {
      await driver.close();
    }
  });

  it('after a heap read that filled 16 KiB with more waiting the next goes at once with its buffer; a quiet stream holds none, after a full read or a partial one', async () => {
    const driver = createUringDriver(TINY);
    try {
      const p = await pressured(driver);
      const { peer, served } = await p.pair();
      const tick = () => new Promise((r) => setTimeout(r, 20));
      const readOne = async (data: Buffer | null) => {
        if (data !== null) await peer.writeAll(data);
        await tick(); // every byte is in the socket before the read
        const chunk = (await served.recv())!;
        expect(p.isHeap(chunk)).toBe(true);
        const n = chunk.bytes.byteLength;
        chunk.release();
        return n;
      };
      expect(await readOne(Buffer.alloc(1024, 1))).toBe(1024); // fills the 1 KiB first read
      // 16 KiB and 1 byte waiting: the 16 KiB read leaves bytes in the socket (bulk), so the
      // next read goes at once with its buffer.
      expect(await readOne(Buffer.alloc(16385, 2))).toBe(16384);
      const bulkNext = served.recv();
      expect(served.heapRecvBytes).toBe(16384); // armed with its buffer: no poll first
      const one = (await bulkNext)!;
      expect(one.bytes.byteLength).toBe(1);
      one.release();
      // A partial read: a quiet stream waits on its poll, holding no buffer.
      const afterPartial = served.recv();
      await tick();
      expect(served.heapRecvBytes).toBe(0);
      await peer.writeAll(Buffer.alloc(1024, 3));
      const partialNext = (await afterPartial)!;
      expect(partialNext.bytes.byteLength).toBe(1024);
      partialNext.release();
      const fill = served.recv(); // the read after a full 1 KiB one is 16 KiB
      await peer.writeAll(Buffer.alloc(16384, 4));
      const full = (await fill)!;
      // If the peer was still sending when the read ran it may be short: read up to 16 KiB.
      let got = full.bytes.byteLength;
      full.release();
      while (got < 16384) got += await readOne(null);
      // A read that filled 16 KiB and emptied the socket may be a burst's last: a stream that
      // goes quiet then holds no buffer either (a direct recv would hold 16 KiB until the peer
      // speaks: every idle connection whose last burst was 16 KiB, under pool pressure).
      const afterFull = served.recv();
      expect(served.heapRecvBytes).toBe(0);
      await tick();
      expect(served.heapRecvBytes).toBe(0);
      await peer.writeAll(Buffer.from('x'));
      const x = (await afterFull)!;
      expect(Buffer.from(x.bytes).toString()).toBe('x');
      x.release();
      expect(p.stats().heapLent).toBe(0);
      await p.close();
    } finally {
      await driver.close();
    }
  });

  it('keeps at most heapPoolBytes of free buffers', async () => {
    const driver = createUringDriver({ ...TINY, heapPoolBytes: 3 * 1024 });
    try {
      const p = await pressured(driver);
      const pairs: Awaited<ReturnType<Pressured['pair']>>[] = [];
      for (let i = 0; i < 6; i++) pairs.push(await p.pair()); // in turn: accept order is connect order
      const round = async (tag: string) => {
        const reads = pairs.map(({ served }) => served.recv());
        await Promise.all(pairs.map(({ peer }, i) => peer.writeAll(Buffer.from(`${tag} ${i}`))));
        const chunks = await Promise.all(reads);
        expect(chunks.every((c) => p.isHeap(c!))).toBe(true);
        expect(new Set(chunks.map((c) => c!.bytes.buffer)).size).toBe(6);
        expect(p.stats().heapLent).toBe(6);
        for (const c of chunks) c!.release();
      };
      await round('one');
      expect(p.stats()).toMatchObject({ heapLent: 0, heapPooled: 3 * 1024, heapPeakPooled: 3 * 1024 });
      const before = p.stats();
      await round('two');
      const after = p.stats();
      expect(after.heapReused - before.heapReused).toBe(3);
      expect(after.heapAllocated - before.heapAllocated).toBe(3);
      expect(after.heapPeakPooled).toBe(3 * 1024);
      await p.close();
    } finally {
      await driver.close();
    }
  });

  it.skipIf(memoryTrimmer() === undefined)('the idle trim empties the free list', async () => {
    const runtime = await createRuntime({
      driver: 'uring',
      uring: TINY,
      idleTrimMs: 40,
      log: () => undefined,
    });
    try {
      const driver = runtime.driver as UringDriver;
      const p = await pressured(driver);
      const { peer, served } = await p.pair();
      const next = served.recv();
      await peer.writeAll(Buffer.from('before the trim'));
      const trims = runtime.idleTrims;
      (await next)!.release();
      expect(runtime.bufferStats()!.heapPooled).toBe(1024);
      await until(() => runtime.idleTrims > trims);
      expect(runtime.bufferStats()!.heapPooled).toBe(0);
      // And a heap receive after it makes a new buffer.
      const again = served.recv();
      await peer.writeAll(Buffer.from('after'));
      (await again)!.release();
      expect(runtime.bufferStats()!).toMatchObject({ heapPooled: 1024, heapLent: 0 });
      await p.close();
    } finally {
      await runtime.close();
    }
  });

  it('never lends a buffer twice or keeps one a chunk still has (random receive/release/close)', async () => {
    type Op =
      | { readonly kind: 'send'; readonly stream: number; readonly size: number }
      | { readonly kind: 'recv'; readonly stream: number }
      | { readonly kind: 'release'; readonly pick: number }
      | { readonly kind: 'close'; readonly stream: number };
    const STREAMS = 4;
    /** Two 16 KiB buffers and some 1 KiB ones: both classes come back and go out again. */
    const BOUND = 40 * 1024;
    const op: fc.Arbitrary<Op> = fc.oneof(
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant('send' as const),
          stream: fc.nat(STREAMS - 1),
          size: fc.integer({ min: 1, max: 3000 }),
        }),
      },
      {
        weight: 5,
        arbitrary: fc.record({ kind: fc.constant('recv' as const), stream: fc.nat(STREAMS - 1) }),
      },
      { weight: 4, arbitrary: fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }) },
      {
        weight: 1,
        arbitrary: fc.record({ kind: fc.constant('close' as const), stream: fc.nat(STREAMS - 1) }),
      },
    );
    const driver = createUringDriver({ ...TINY, heapPoolBytes: BOUND });
    let heapChunks = 0;
    try {
      const p = await pressured(driver);
      const ring = driver.host.ring;
      let seed = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(op, { minLength: 10, maxLength: 40 }), async (ops) => {
          const streams: {
            peer: ByteStream;
            served: Served;
            sent: number[];
            read: number;
            open: boolean;
            kept: number;
          }[] = [];
          for (let i = 0; i < STREAMS; i++) {
            const { peer, served } = await p.pair(); // in turn: accept order is connect order
            streams.push({ peer, served, sent: [], read: 0, open: true, kept: 0 });
          }
          /** Chunks kept unreleased, with the bytes they must still show. */
          const kept: { chunk: RecvChunk; expected: Buffer; owner: (typeof streams)[number] }[] = [];
          const check = () => {
            const heapBuffers = new Set<ArrayBufferLike>();
            for (const k of kept) {
              // A buffer lent again (to another recv) while this chunk has it would be overwritten.
              expect(Buffer.from(k.chunk.bytes).equals(k.expected)).toBe(true);
              if (!p.isHeap(k.chunk)) continue;
              expect(heapBuffers.has(k.chunk.bytes.buffer)).toBe(false);
              heapBuffers.add(k.chunk.bytes.buffer);
              expect(ring.heapBuffers.holds(k.chunk.bytes.buffer)).toBe(false);
            }
            // No recv is armed between steps: the buffers lent are exactly the kept chunks'.
            expect(p.stats().heapLent).toBe(heapBuffers.size);
            expect(p.stats().heapPooled).toBeLessThanOrEqual(BOUND);
          };
          for (const o of ops) {
            if (o.kind === 'send') {
              const s = streams[o.stream]!;
              if (!s.open) continue;
              const data = Buffer.alloc(o.size, 0);
              for (let i = 0; i < o.size; i++) data[i] = (seed + i * 7) & 0xff;
              seed++;
              for (const b of data) s.sent.push(b);
              await s.peer.writeAll(data);
            } else if (o.kind === 'recv') {
              const s = streams[o.stream]!;
              // Only within the base (a stream past it waits for budget while the ring is out)
              // and only when bytes were sent (a recv would wait for the peer).
              if (!s.open || s.kept > 0 || s.read >= s.sent.length) continue;
              const chunk = (await s.served.recv())!;
              const n = chunk.bytes.byteLength;
              const expected = Buffer.from(s.sent.slice(s.read, s.read + n));
              s.read += n;
              expect(Buffer.from(chunk.bytes).equals(expected)).toBe(true);
              if (p.isHeap(chunk)) heapChunks++;
              kept.push({ chunk, expected, owner: s });
              s.kept++;
            } else if (o.kind === 'release') {
              if (kept.length === 0) continue;
              const [k] = kept.splice(o.pick % kept.length, 1);
              k!.chunk.release();
              k!.owner.kept--;
            } else {
              const s = streams[o.stream]!;
              if (!s.open) continue;
              s.open = false;
              await s.served.close(); // its kept chunks stay lent until released
            }
            check();
          }
          for (const k of kept.splice(0)) k.chunk.release();
          await Promise.all(streams.flatMap((s) => [s.served.close(), s.peer.close()]));
          expect(p.stats().heapLent).toBe(0);
          expect(p.stats().heapPooled).toBeLessThanOrEqual(BOUND);
        }),
        { numRuns: 30 },
      );
      // The property ran over heap chunks, and buffers were reused across runs.
      expect(heapChunks).toBeGreaterThan(30);
      expect(p.stats().heapReused).toBeGreaterThan(0);
      expect(p.stats().heapPeakPooled).toBeGreaterThan(16 * 1024);
      await p.close();
    } finally {
      await driver.close();
    }
  });
  it.skipIf(tlsEngine === undefined)(
    "in-ring TLS: a heap receive gives its buffer back once the ring fed it to the session, a plain-HTTP peer's raw bytes at release",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'loch-heap-tls-'));
      // In-ring TLS needs a descriptor (a direct stream refuses it: direct.test.ts), so fd streams
      // whatever LOCH_URING_DIRECT_FILES says.
      const driver = createUringDriver({ ...TINY, directFiles: 0 });
      try {
        const key = join(dir, 'key.pem');
        const cert = join(dir, 'cert.pem');
        execFileSync(
          'openssl',
          [
            'req',
            '-x509',
            '-newkey',
            'ec',
            '-pkeyopt',
            'ec_paramgen_curve:P-256',
            '-nodes',
            '-subj',
            '/CN=localhost',
            '-days',
            '2',
            '-keyout',
            key,
            '-out',
            cert,
          ],
          { stdio: 'ignore' },
        );
        const context = new tlsEngine!.TlsContext(true, 0, 0, '', '');
        expect(
          context.addCertificate(readFileSync(cert, 'utf8'), readFileSync(key, 'utf8'), ['localhost'], true),
        ).toBeUndefined();
        const p = await pressured(driver);
        expect(driver.host.ring.tlsCapable).toBe(true);
        const events = { onTlsEvent: () => undefined, onTlsTransportEnd: () => undefined };
        const taken = () => p.stats().heapAllocated + p.stats().heapReused;
        const before = taken();

        // A TLS client: the handshake's and the request's ciphertext come by heap receives (the
        // kernel's ring is empty), their plaintext in the ring's plaintext buffers.
        const tlsPair = await p.netPair();
        const tlsServed = tlsPair.served as unknown as UringStream;
        expect(tlsServed.attachTls(new tlsEngine!.TlsSession(context), events)).toBe(0);
        const client = tlsConnect({
          socket: tlsPair.peer,
          rejectUnauthorized: false,
          servername: 'localhost',
        });
        client.on('error', () => undefined);
        await new Promise<void>((resolve, reject) =>
          client.once('secureConnect', resolve).once('error', reject),
        );
        for (let i = 0; i < 5; i++) {
          const next = tlsServed.recv();
          client.write(`request ${i}`);
          const chunk = (await next)!;
          expect(Buffer.from(chunk.bytes).toString()).toBe(`request ${i}`);
          expect(p.isHeap(chunk)).toBe(false);
          chunk.release();
        }
        // Several heap receives, their buffers reused; only the armed one is out.
        expect(taken() - before).toBeGreaterThanOrEqual(4);
        expect(p.stats().heapReused).toBeGreaterThan(0);
        expect(p.stats().heapLent).toBeLessThanOrEqual(1);
        client.destroy();
        await tlsServed.close();
        expect(p.stats().heapLent).toBe(0);

        // A peer speaking plain HTTP to the TLS stream: its bytes come back raw in the heap
        // buffer, as a chunk; the buffer goes back when it is released.
        const plainPair = await p.netPair();
        const plainServed = plainPair.served as unknown as UringStream;
        expect(plainServed.attachTls(new tlsEngine!.TlsSession(context), events)).toBe(0);
        const next = plainServed.recv();
        plainPair.peer.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
        const raw = (await next)!;
        expect(Buffer.from(raw.bytes).toString()).toBe('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
        expect(p.isHeap(raw)).toBe(true);
        const lent = p.stats().heapLent;
        expect(lent).toBeGreaterThanOrEqual(1);
        await plainServed.close();
        expect(p.stats().heapLent).toBe(1); // the raw chunk's, kept past the close
        expect(p.heapListed(raw)).toBe(false);
        raw.release();
        expect(p.stats().heapLent).toBe(0);
        expect(p.heapListed(raw)).toBe(true);
        await p.close();
      } finally {
        await driver.close();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
