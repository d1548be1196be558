// What an idle io_uring stream costs the thread (issue 18: memory per idle keep-alive connection),
// over real loopback sockets: a parked plain stream carries its rarely used state (TLS, the chunk
// queue, close and failure state) out of the object, its booleans in one field, and the ring keeps
// its open streams by descriptor number instead of in hash sets. Counted in fields and registry
// entries (Node 20 has no pointer compression: every field is 8 bytes).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RecvChunk, RecvTarget, StreamListener } from '../stream.js';
import { FdRegistry } from './fd-registry.js';
import { createUringDriver, probeUring, type UringDriver } from './index.js';
import type { UringStream } from './stream.js';

const probe = probeUring();
if (!probe.available) console.warn(`idle stream tests skipped: ${probe.reason}`);

function portOf(l: StreamListener): number {
  const a = l.localAddress;
  if (a.family === 'unix') throw new Error('not a TCP listener');
  return a.port;
}

/** A keep-alive server's reader: takes each chunk, releases it and parks again. */
class Parker implements RecvTarget {
  chunks = 0;
  constructor(readonly stream: UringStream) {}
  onRecv(chunk: RecvChunk | null): void {
    if (chunk === null) return;
    this.chunks++;
    chunk.release();
    this.stream.recvTo(this);
  }
}

async function until(what: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * A served stream that got one request and is parked for the next, as an idle keep-alive one.
 * `ask` is what the server read of its peer: the facts (a TLS-capable server) or the remote
 * address only (a plain one: RuntimeStream.hasPlainFacts).
 */
async function parkedPair(
  driver: UringDriver,
  listener: StreamListener,
  port: number,
  ask: 'facts' | 'remoteAddress' = 'facts',
  host = '127.0.0.1',
) {
  const accepted = listener.accept();
  const peer = (await driver.connectTcp({ host, port })) as UringStream;
  const served = (await accepted) as UringStream;
  void served[ask]; // a server reads every connection's client address once
  const parker = new Parker(served);
  served.recvTo(parker);
  await peer.writeAll(new TextEncoder().encode('GET / HTTP/1.1\r\n\r\n'));
  await until(() => parker.chunks === 1);
  return { peer, served };
}

describe.skipIf(!probe.available)('uring driver: an idle stream', () => {
  it('a parked plain stream holds 15 fields (33 before the rare parts moved out, 17 before its facts held its remote address and its TLS state its conn id, 15 before its in-flight count went into its bits, 14 before its peer became text and a port)', async () => {
    const driver = createUringDriver({ entries: 64, bufferCount: 16, bufferSize: 4096 });
    try {
      const listener = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
      const { served } = await parkedPair(driver, listener, portOf(listener));
      // Own properties are the object's fields: TypeScript's `private` ones are plain properties.
      const fields = Object.getOwnPropertyNames(served);
      expect(fields.length).toBeLessThanOrEqual(15);
      for (const gone of [
        'tlsSent',
        'tlsEvents',
        'chunkBid',
        'chunkHead',
        'eof',
        'closing',
        'heapCode',
        'remote',
        'tls',
        'inFlight',
      ])
        expect(fields).not.toContain(gone);
      // The remote address is the facts' client address: one object, no field of its own.
      expect(served.remoteAddress).toBe(served.facts.clientAddress);
      // A plain idle stream has made none of its rare parts.
      const internals = served as unknown as { rare?: unknown; queue?: unknown; tlsState?: unknown };
      expect(internals.rare).toBeUndefined();
      expect(internals.queue).toBeUndefined();
      expect(internals.tlsState).toBeUndefined();
      expect(served.kind).toBe('tcp');
      expect(served.closing).toBe(false);
      await listener.close();
    } finally {
      await driver.close();
    }
  });

  it('a stream asked only its remote address holds no facts object (64 B per idle connection) and no address object (48 B)', async () => {
    const driver = createUringDriver({ entries: 64, bufferCount: 16, bufferSize: 4096 });
    try {
      const listener = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
      const { peer, served } = await parkedPair(driver, listener, portOf(listener), 'remoteAddress');
      const address = served.remoteAddress;
      expect(address).toEqual(peer.localAddress);
      // No field of the parked stream holds a facts object (whose key is clientAddress) or an
      // address object of its own (whose key is family; its local address is the listener's,
      // shared by every connection): the peer is its text and a port.
      const held = Object.values(served).filter(
        (v) =>
          typeof v === 'object' &&
          v !== null &&
          v !== listener.localAddress &&
          ('clientAddress' in v || 'family' in v),
      );
      expect(held).toEqual([]);
      // Asked again, the same address (no second getpeername: the stream kept it).
      expect(served.remoteAddress).toEqual(address);
      // Asked later, the facts are made on the address, and kept with it.
      const facts = served.facts;
      expect(facts.clientAddress).toEqual(address);
      expect(served.facts).toBe(facts);
      expect(served.remoteAddress).toBe(facts.clientAddress);
      await listener.close();
    } finally {
      await driver.close();
    }
  });

  it("an IPv6 peer's address comes back as IPv6 with its port, kept as text", async () => {
    const driver = createUringDriver({ entries: 64, bufferCount: 16, bufferSize: 4096 });
    try {
      const listener = await driver.listenTcp({ host: '::1', port: 0 });
      const a = await parkedPair(driver, listener, portOf(listener), 'remoteAddress', '::1');
      const b = await parkedPair(driver, listener, portOf(listener), 'remoteAddress', '::1');
      expect(a.served.remoteAddress).toEqual(a.peer.localAddress);
      expect(a.served.remoteAddress).toMatchObject({ family: 'ipv6', address: '::1' });
      expect(b.served.remoteAddress).toEqual(b.peer.localAddress);
      const text = (s: UringStream) => (s as unknown as { peer: unknown }).peer;
      expect(text(a.served)).toBe('::1');
      // The facts made later carry the same address.
      expect(a.served.facts.clientAddress).toEqual(a.peer.localAddress);
      await listener.close();
    } finally {
      await driver.close();
    }
  });

  it("an armed receive's native slot is 32 bytes and holds no send state (152 before)", async () => {
    const driver = createUringDriver({ entries: 64, bufferCount: 16, bufferSize: 4096 });
    try {
      const ring = driver.host.ring;
      const listener = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
      const port = portOf(listener);
      // 64 served streams parked with their multishot receive armed; each pair carried a request
      // (a send: the op state a receive does not need).
      const pairs = [];
      for (let i = 0; i < 64; i++) pairs.push(await parkedPair(driver, listener, port));
      const mem = ring.slotMemory();
      expect(mem).toBeDefined();
      expect(mem!.slots).toBeGreaterThanOrEqual(64);
      expect(mem!.slotBytes).toBeLessThanOrEqual(32);
      // The sends' state went back to the spares at their completions: a few made, none held by
      // the 64 armed receives.
      expect(mem!.ops).toBeLessThanOrEqual(8);
      expect(mem!.opsHeld).toBe(0);
      for (const p of pairs) await p.peer.close();
      await listener.close();
    } finally {
      await driver.close();
    }
  });

  it('a stream whose receive went to a heap buffer (the pool was out) parks without its rare part', async () => {
    // A burst of new connections can take the whole pool: their receives go to heap buffers,
    // whose table lives in the stream's rare part. Once the chunk is released and the receive
    // is armed from the pool again, the parked stream keeps no rare part (~140 B).
    const driver = createUringDriver({ entries: 64, bufferCount: 4, bufferSize: 1024 });
    try {
      const listener = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
      const port = portOf(listener);
      // Three readers keep a pooled chunk each: the pool is out, so base reads go to the heap.
      const held: RecvChunk[] = [];
      const peers: UringStream[] = [];
      for (let i = 0; i < 3; i++) {
        const accepted = listener.accept();
        const c = (await driver.connectTcp({ host: '127.0.0.1', port })) as UringStream;
        peers.push(c);
        const s = (await accepted) as UringStream;
        await c.writeAll(new Uint8Array([i]));
        held.push((await s.recv())!);
      }
      const accepted = listener.accept();
      const peer = (await driver.connectTcp({ host: '127.0.0.1', port })) as UringStream;
      const served = (await accepted) as UringStream & { readonly heapRecvBytes: number };
      const reading = served.recv();
      await peer.writeAll(new TextEncoder().encode('GET / HTTP/1.1\r\n\r\n'));
      const chunk = (await reading)!;
      expect(served.heapRecvBytes).toBeGreaterThan(0); // it came in a heap buffer
      // The pool comes back, the request's chunk is released, the stream parks for the next one.
      for (const h of held) h.release();
      chunk.release();
      const parker = new Parker(served);
      served.recvTo(parker);
      expect(served.heapRecvBytes).toBe(0);
      expect((served as unknown as { rare?: unknown }).rare).toBeUndefined();
      // It still serves: the next request arrives through the pool.
      await peer.writeAll(new Uint8Array([1, 2, 3]));
      await until(() => parker.chunks === 1);
      for (const p of [...peers, peer]) await p.close();
      await listener.close();
    } finally {
      await driver.close();
    }
  });

  it('a Unix stream still says so (its kind is one of the packed bits)', async () => {
    const driver = createUringDriver({ entries: 64, bufferCount: 16, bufferSize: 4096 });
    const dir = mkdtempSync(join(tmpdir(), 'loch-idle-'));
    try {
      const path = join(dir, 's.sock');
      const listener = await driver.listenUnix({ path });
      const accepted = listener.accept();
      const client = (await driver.connectUnix({ path })) as UringStream;
      const served = (await accepted) as UringStream;
      expect([client.kind, served.kind]).toEqual(['unix', 'unix']);
      await client.close();
      expect(client.closing).toBe(true);
      await listener.close();
    } finally {
      await driver.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the ring keeps its open streams by descriptor; a driver closes only its own', async () => {
    // Descriptor streams (ring.streams; direct ones are in ring.directStreams, direct.test.ts).
    const a = createUringDriver({ entries: 64, bufferCount: 16, bufferSize: 4096, directFiles: 0 });
    const b = createUringDriver({ entries: 64, bufferCount: 16, bufferSize: 4096, directFiles: 0 });
    const ring = a.host.ring;
    expect(b.host.ring).toBe(ring); // one ring per thread, shared by both drivers
    const before = ring.streams.size;
    const listener = await b.listenTcp({ host: '127.0.0.1', port: 0 });
    const port = portOf(listener);
    const parkedB = await parkedPair(b, listener, port);
    const accepted = listener.accept();
    const onA = (await a.connectTcp({ host: '127.0.0.1', port })) as UringStream;
    const servedForA = (await accepted) as UringStream;
    // Four open streams: each is one slot of the registry, at its descriptor.
    expect(ring.streams.size).toBe(before + 4);
    expect(ring.streams.values()).toEqual(
      expect.arrayContaining([onA, servedForA, parkedB.peer, parkedB.served]),
    );
    await a.close();
    expect(onA.closing).toBe(true);
    // b's streams are untouched by a's close and still carry bytes.
    expect(parkedB.served.closing).toBe(false);
    expect(parkedB.peer.closing).toBe(false);
    await parkedB.peer.writeAll(new Uint8Array([1, 2, 3]));
    await until(() => ring.streams.size === before + 3);
    await b.close();
    expect(ring.streams.size).toBe(before);
  });
});

describe('FdRegistry', () => {
  it('keeps a stream whose descriptor was reused before it left, and forgets each once', () => {
    const registry = new FdRegistry<{ fd: number; name: string }>();
    const old = { fd: 7, name: 'old' };
    const reused = { fd: 7, name: 'new' };
    const other = { fd: 3, name: 'other' };
    registry.add(old);
    registry.add(other);
    registry.add(reused); // the kernel gave 7 to a new stream before the old one left
    registry.add(reused); // adding twice counts once
    expect(registry.size).toBe(3);
    expect(registry.values().map((s) => s.name)).toEqual(['other', 'new', 'old']);
    registry.delete(old);
    registry.delete(old);
    expect(registry.size).toBe(2);
    const seen: string[] = [];
    registry.forEach((s) => {
      seen.push(s.name);
    });
    expect(seen).toEqual(['other', 'new']);
    registry.delete(reused);
    registry.delete(other);
    expect(registry.size).toBe(0);
    expect(registry.values()).toEqual([]);
  });

  it('keeps streams on every page of descriptors, far apart and past page ends (issue 18)', () => {
    const registry = new FdRegistry<{ fd: number }>();
    const fds = [0, 5, 1_023, 1_024, 1_025, 2_047, 2_048, 19_300, 70_000];
    const items = fds.map((fd) => ({ fd }));
    // Out of order: a later descriptor first, so pages are made out of order too.
    for (const item of [...items].reverse()) registry.add(item);
    expect(registry.size).toBe(fds.length);
    expect(registry.values()).toEqual(items);
    for (const item of items) registry.add(item); // each once
    expect(registry.size).toBe(fds.length);
    registry.delete(items[3]!);
    registry.delete({ fd: 2_048 }); // not the registered one: kept
    registry.delete({ fd: 500_000 }); // no page: nothing
    expect(registry.values().map((s) => s.fd)).toEqual([0, 5, 1_023, 1_025, 2_047, 2_048, 19_300, 70_000]);
    const seen: number[] = [];
    registry.forEach((s) => {
      seen.push(s.fd);
    });
    expect(seen).toEqual([0, 5, 1_023, 1_025, 2_047, 2_048, 19_300, 70_000]);
    expect(registry.size).toBe(fds.length - 1);
    // The pages are made as descriptors land in them, and kept: none replaced by a later add.
    const pages = (registry as unknown as { pages: unknown[] }).pages;
    const page1 = pages[1];
    registry.add({ fd: 100_000 });
    expect(pages[1]).toBe(page1);
    expect(pages.filter((p) => p !== undefined)).toHaveLength(6);
  });
});
