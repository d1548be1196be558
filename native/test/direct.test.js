// Direct (registered) descriptors on the ring (issue 18; bench/http-proxy/direct-descriptors-2026-12-07.md):
// init's directFiles table, ACCEPT_DIRECT (one-shot with the peer's address, multishot), records
// on a slot (IOSQE_FIXED_FILE in the op word), close direct, CANCEL_FD by slot, setsockopt by
// URING_CMD, directAddress, a full table (ENFILE), and a worker's teardown ending its direct
// sockets. Each ring runs in a worker (one ring per thread); its clients are node:net sockets.
import { connect } from 'node:net';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { loadNative } from '../index.js';

const loaded = loadNative();
const probe = 'error' in loaded ? undefined : loaded.binding.probe();
const direct = probe?.ok === true && probe.directFiles === true;
const indexUrl = new URL('../index.js', import.meta.url).href;

/**
 * Source of the helpers a test worker gets: `ring(options)` inits the thread's ring and returns
 * `op(record, bufs)` (a promise of the op's first completion [res, flags]) and `ops(record, bufs,
 * count)` (its first `count` completions), plus `decode(bytes)` for a sockaddr_in.
 */
const helpers = `
  const FIXED = 1 << 8;
  function ring(binding, options) {
    const sq = new Int32Array(8 * 64), cq = new Int32Array(3 * 256);
    const want = new Map();
    let next = 1;
    const take = (n) => {
      for (let i = 0; i < n; i++) {
        const slot = cq[i * 3], res = cq[i * 3 + 1], flags = cq[i * 3 + 2];
        const w = want.get(slot);
        if (w === undefined) continue;
        w.got.push([res, flags]);
        if (w.got.length >= w.count) { want.delete(slot); w.resolve(w.count === 1 ? w.got[0] : w.got); }
      }
    };
    const info = binding.init(sq, cq, take, { entries: 64, ...options });
    const ops = (record, bufs, count) => new Promise((resolve) => {
      const slot = next++;
      want.set(slot, { resolve, count, got: [] });
      const r = record.slice();
      r[2] = slot;
      sq.set(r, 0);
      take(binding.submit(1, bufs, true));
    });
    const op = (record, bufs) => ops(record, bufs, 1);
    return { info, op, ops };
  }
  const decode = (b) => ({ family: b[0] | (b[1] << 8), port: (b[2] << 8) | b[3], address: b.slice(4, 8).join('.') });
  const fdCount = () => require('node:fs').readdirSync('/proc/self/fd').length;
`;

/** Runs `body` (an async function's source taking (binding, Op, post)) in a worker; resolves its result. */
function inWorker(body, onMessage) {
  const source = `
    const { parentPort } = require('node:worker_threads');
    const net = require('node:net');
    ${helpers}
    import(${JSON.stringify(indexUrl)}).then(async ({ loadNative, Op }) => {
      const { binding } = loadNative();
      const result = await (${body})(binding, Op, (m) => parentPort.postMessage({ progress: m }));
      parentPort.postMessage({ result });
    }).catch((e) => parentPort.postMessage({ result: { error: String((e && e.stack) || e) } }));
  `;
  return new Promise((resolve, reject) => {
    const w = new Worker(source, { eval: true });
    let result;
    w.on('message', (m) => {
      if ('progress' in m) onMessage?.(m.progress, w);
      else result = m.result;
    });
    w.on('error', reject);
    w.on('exit', () => resolve(result));
  });
}

describe.skipIf(!direct)('@loch/native direct descriptors', () => {
  it('accepts into slots with the peer address, sends and receives on them, closes them direct; the fd table does not grow', async () => {
    const r = await inWorker(`async (binding, Op) => {
      const { info, op } = ring(binding, { directFiles: 64 });
      const listener = binding.listenTcp('127.0.0.1', 0, 16, false, false);
      const port = binding.address(listener, false).port;
      const out = { directFiles: info.directFiles, accepted: [], clientPorts: [] };
      const clients = [];
      let before = 0;
      for (let i = 0; i < 3; i++) {
        if (i === 1) before = fdCount(); // after the first connection (libuv's own first descriptors)
        const addr = new Uint8Array(128);
        const accepting = op([Op.ACCEPT_DIRECT, listener, 0, 0, 128, 0, 0, 0], addr);
        const c = net.connect(port, '127.0.0.1');
        await new Promise((res) => c.once('connect', res));
        clients.push(c);
        const [slot] = await accepting;
        out.accepted.push({ slot, peer: decode(addr), len: new DataView(addr.buffer).getUint32(124, true) });
        out.clientPorts.push(c.localPort);
      }
      out.fdsGrew = fdCount() - before; // 2 clients' own; the sockets accepted for them are slots
      const buf = new Uint8Array(16);
      const reading = op([Op.RECV | FIXED, 0, 0, 0, 16, 0, 0, 0], buf);
      clients[0].write('hi');
      const [n] = await reading;
      out.received = Buffer.from(buf.subarray(0, n)).toString();
      const got = new Promise((res) => clients[1].once('data', (d) => res(d.toString())));
      out.sent = (await op([Op.SEND | FIXED, 1, 0, 0, 3, 0, 0, 0], new TextEncoder().encode('abc')))[0];
      out.clientGot = await got;
      out.peerOf2 = binding.directAddress(2, true);
      out.localOf2 = binding.directAddress(2, false);
      out.setsockopt = (await op([Op.SETSOCKOPT | FIXED, 2, 0, 0, 0, 0, 6, 1], undefined))[0]; // TCP_NODELAY off
      // Records keyed by real fd elsewhere take no slot: a splice's input, a TLS conn's recv.
      out.spliceOnSlot = (await op([Op.SPLICE | FIXED, 2, 0, 0, 16, 0, 1, 0], undefined))[0];
      out.tlsRecvOnSlot = (await op([Op.RECV_MULTI | FIXED, 2, 0, 0, 0, 0, 1, 0], undefined))[0];
      out.directInstall = info.directInstall;
      const ended = new Promise((res) => clients[0].once('end', () => res(true)));
      clients[0].resume();
      out.closed = (await op([Op.CLOSE | FIXED, 0, 0, 0, 0, 0, 0, 0], undefined))[0];
      out.clientSawEnd = await ended;
      // The freed slot is the lowest free one again.
      const addr = new Uint8Array(128);
      const accepting = op([Op.ACCEPT_DIRECT, listener, 0, 0, 128, 0, 0, 0], addr);
      const c = net.connect(port, '127.0.0.1');
      out.reused = (await accepting)[0];
      for (const x of [...clients, c]) x.destroy();
      binding.destroy();
      return out;
    }`);
    expect(r.error).toBeUndefined();
    expect(r.directFiles).toBe(64);
    expect(r.accepted.map((a) => a.slot)).toEqual([0, 1, 2]);
    expect(r.accepted.map((a) => a.peer.port)).toEqual(r.clientPorts);
    expect(r.accepted.every((a) => a.peer.family === 2 && a.peer.address === '127.0.0.1')).toBe(true);
    expect(r.accepted.map((a) => a.len)).toEqual([16, 16, 16]); // sizeof(sockaddr_in), in the last 4 bytes
    expect(r.fdsGrew).toBe(2);
    expect(r.received).toBe('hi');
    expect(r.sent).toBe(3);
    expect(r.clientGot).toBe('abc');
    if (probe.ops.fixedFdInstall) {
      expect(r.peerOf2).toEqual({ family: 'ipv4', address: '127.0.0.1', port: r.clientPorts[2] });
      expect(r.localOf2.family).toBe('ipv4');
    }
    if (probe.ops.uringCmd) expect([0, -95]).toContain(r.setsockopt); // -EOPNOTSUPP before 6.7
    expect(r.spliceOnSlot).toBe(-22);
    expect(r.tlsRecvOnSlot).toBe(-22);
    expect(r.directInstall).toBe(probe.ops.fixedFdInstall);
    expect(r.closed).toBe(0);
    expect(r.clientSawEnd).toBe(true);
    expect(r.reused).toBe(0);
  });

  it("cancels a slot's ops by slot (CANCEL_FD with the FIXED bit), and multishot accept direct fills slots", async () => {
    const r = await inWorker(`async (binding, Op) => {
      const { op, ops } = ring(binding, { directFiles: 8 });
      const path = require('node:path').join(require('node:os').tmpdir(), 'loch-direct-' + process.pid + '-' + Date.now() + '.sock');
      const listener = binding.listenUnix(path, 16);
      const accepting = ops([Op.ACCEPT_DIRECT, listener, 0, 0, 0, 0, 1, 0], undefined, 2);
      const a = net.connect(path), b = net.connect(path);
      const got = await accepting;
      const out = { slots: got.map((g) => g[0]).sort(), more: got.map((g) => (g[1] & 2) !== 0) };
      const buf = new Uint8Array(8);
      const reading = op([Op.RECV | FIXED, out.slots[0], 0, 0, 8, 0, 0, 0], buf);
      await op([Op.NOP, -1, 0, 0, 0, 0, 0, 0], undefined);
      // No completion of its own: the recv's is the answer (-ECANCELED).
      const sq = [Op.CANCEL_FD | FIXED, out.slots[0], 0, 0, 0, 0, 0, 0];
      op(sq, undefined);
      out.recv = (await reading)[0];
      a.destroy();
      b.destroy();
      binding.destroy();
      require('node:fs').rmSync(path, { force: true });
      return out;
    }`);
    expect(r.error).toBeUndefined();
    expect(r.slots).toEqual([0, 1]);
    expect(r.more).toEqual([true, true]);
    expect(r.recv).toBe(-125); // -ECANCELED
  });

  it('reports a full table as ENFILE from the accept, and a refused table as directFilesError', async () => {
    const r = await inWorker(`async (binding, Op) => {
      const { op } = ring(binding, { directFiles: 2 });
      const listener = binding.listenTcp('127.0.0.1', 0, 16, false, false);
      const port = binding.address(listener, false).port;
      const res = [];
      const clients = [];
      for (let i = 0; i < 3; i++) {
        const accepting = op([Op.ACCEPT_DIRECT, listener, 0, 0, 128, 0, 0, 0], new Uint8Array(128));
        clients.push(net.connect(port, '127.0.0.1'));
        res.push((await accepting)[0]);
      }
      for (const c of clients) c.destroy();
      binding.destroy();
      // Larger than the soft RLIMIT_NOFILE: refused, the ring still works on descriptors.
      const big = ring(binding, { directFiles: 1 << 30 }).info;
      binding.destroy();
      const none = ring(binding, {});
      const acceptWithout = (await none.op([Op.ACCEPT_DIRECT, listener, 0, 0, 128, 0, 0, 0], new Uint8Array(128)))[0];
      binding.destroy();
      return { res, big: { directFiles: big.directFiles, error: big.directFilesError }, acceptWithout };
    }`);
    expect(r.error).toBeUndefined();
    expect(r.res).toEqual([0, 1, -23]); // -ENFILE
    expect(r.big).toEqual({ directFiles: 0, error: 24 }); // EMFILE
    expect(r.acceptWithout).toBe(-9); // -EBADF: no table
  });

  it('a worker terminated with direct connections open: every client reads EOF, and shutdownOwned counts the slots', async () => {
    const N = 50;
    const clients = [];
    const eofs = [];
    const done = inWorker(
      `async (binding, Op, post) => {
        const { op } = ring(binding, { directFiles: 128 });
        const listener = binding.listenTcp('127.0.0.1', 0, 128, false, false);
        post({ port: binding.address(listener, false).port });
        const slots = [];
        for (let i = 0; i < ${N}; i++) slots.push((await op([Op.ACCEPT_DIRECT, listener, 0, 0, 128, 0, 0, 0], new Uint8Array(128)))[0]);
        // A recv armed on each: the kernel holds a reference to each socket's file.
        for (const s of slots) op([Op.RECV | FIXED, s, 0, 0, 16, 0, 0, 0], new Uint8Array(16));
        await op([Op.NOP, -1, 0, 0, 0, 0, 0, 0], undefined);
        post({ ready: slots.length });
        await new Promise(() => {}); // until terminated
      }`,
      (m, w) => {
        if (m.port !== undefined) {
          for (let i = 0; i < N; i++) {
            const c = connect(m.port, '127.0.0.1');
            c.on('error', () => {});
            eofs.push(new Promise((res) => c.once('end', () => res(true)).once('close', () => res(false))));
            c.resume();
            clients.push(c);
          }
        } else if (m.ready !== undefined) {
          w.terminate();
        }
      },
    );
    await done;
    const ended = await Promise.race([
      Promise.all(eofs),
      new Promise((res) => setTimeout(() => res('timeout'), 2000)),
    ]);
    for (const c of clients) c.destroy();
    expect(ended).toEqual(Array(N).fill(true));
    // shutdownOwned() (a dying worker's 'exit' event) ends direct sockets too.
    const r = await inWorker(`async (binding, Op) => {
      const { op } = ring(binding, { directFiles: 8 });
      const listener = binding.listenTcp('127.0.0.1', 0, 8, false, false);
      const port = binding.address(listener, false).port;
      const cs = [];
      for (let i = 0; i < 3; i++) {
        const accepting = op([Op.ACCEPT_DIRECT, listener, 0, 0, 128, 0, 0, 0], new Uint8Array(128));
        const c = net.connect(port, '127.0.0.1');
        c.resume();
        cs.push(new Promise((res) => c.once('end', () => res(true))));
        await accepting;
      }
      const n = binding.shutdownOwned();
      const ends = await Promise.all(cs);
      binding.destroy();
      return { n, ends };
    }`);
    expect(r.error).toBeUndefined();
    expect(r.n).toBe(4); // the listener and 3 slots
    expect(r.ends).toEqual([true, true, true]);
  });
});
