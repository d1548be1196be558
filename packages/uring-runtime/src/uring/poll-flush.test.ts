// The ring's completion callback flushes what its completions' nextTicks and promise jobs queue,
// in the same callback (Ring.completeAndFlush), over a fake binding that completes each record's
// op inline when the submit drains and counts what arms the addon's check handle: a wakeup turn
// makes one callback scope, not a second one for the flush (bench/http-proxy/turn-cost-2026-12-06b.md).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { NativeBinding } from '@loch/native';
import { describe, expect, it } from 'vitest';
import { probeUring } from './probe.js';
import { CQ_STRIDE, OP_NOP, SQ_STRIDE } from './records.js';
import { type CompletionTarget, Ring } from './ring.js';

interface FakeRing {
  readonly binding: NativeBinding;
  /** Each submit's records, by their aux field. */
  readonly submits: number[][];
  /** armFlush() calls: each is a check-phase callback scope of its own. */
  armed: number;
  /** Check phases that made no call (flushWant 0: the completion callback flushed already). */
  skipped: number;
  /** The ring's flushWant (init's): 0 none, 1 this check phase, 2 the next one's. */
  want(): number;
  /** Delivers completions of `slots` as the addon's poll callback does (one callback). */
  poll(slots: readonly number[]): void;
  /** The check phase, as the addon's OnCheck: runs the flush callback if it was armed and wanted. */
  check(): void;
}

/** A binding whose draining submit completes every record with a slot at once (res 0). */
function fakeRing(): FakeRing {
  let sq: Int32Array = new Int32Array(0);
  let cq: Int32Array = new Int32Array(0);
  let onComplete: (n: number) => void = () => undefined;
  let onFlush: () => void = () => undefined;
  let flushWant: Int32Array = new Int32Array(1);
  let pending = false;
  const fake: FakeRing = {
    binding: {
      init(
        s: Int32Array,
        c: Int32Array,
        complete: (n: number) => void,
        init: { onFlush?: () => void; flushWant?: Int32Array },
      ) {
        sq = s;
        cq = c;
        onComplete = complete;
        if (init.onFlush !== undefined) onFlush = init.onFlush;
        if (init.flushWant !== undefined) flushWant = init.flushWant;
        return { features: 0, flags: 0, bufRing: false };
      },
      submit(n: number, _bufs: unknown, drain: boolean) {
        const auxes: number[] = [];
        let got = 0;
        for (let i = 0; i < n; i++) {
          auxes.push(sq[i * SQ_STRIDE + 6]!);
          const slot = sq[i * SQ_STRIDE + 2]!;
          if (slot < 0 || !drain) continue;
          const o = got++ * CQ_STRIDE;
          cq[o] = slot;
          cq[o + 1] = 0;
          cq[o + 2] = 0;
        }
        fake.submits.push(auxes);
        return got;
      },
      armFlush() {
        fake.armed++;
        pending = true;
        return 0;
      },
      // No test here makes a nextTick throw (the child processes below do, with the addon's).
      reportUncaught(error: unknown) {
        throw error;
      },
      destroy() {},
    } as unknown as NativeBinding,
    submits: [],
    armed: 0,
    skipped: 0,
    want: () => flushWant[0]!,
    poll(slots) {
      slots.forEach((slot, i) => {
        cq[i * CQ_STRIDE] = slot;
        cq[i * CQ_STRIDE + 1] = 1;
        cq[i * CQ_STRIDE + 2] = 0;
      });
      onComplete(slots.length);
    },
    check() {
      if (!pending) return;
      if (flushWant[0] === 2) {
        flushWant[0] = 1; // stays armed: the next loop iteration's check phase
        return;
      }
      pending = false;
      if (flushWant[0] === 0) fake.skipped++;
      else onFlush();
    },
  };
  return fake;
}

const OPTIONS = {
  entries: 64,
  bufferCount: 4,
  bufferSize: 64,
  sqpoll: false,
  flushMode: 'immediate',
} as const;

/** A target that records its completions and then runs `then`. */
class Target implements CompletionTarget {
  readonly seen: number[] = [];
  constructor(private readonly then: () => void = () => undefined) {}
  onCompletion(_res: number, _flags: number, slot: number): void {
    this.seen.push(slot);
    this.then();
  }
}

/**
 * Runs `fn` from the event loop (an immediate's callback), as the addon's poll callback runs. Not
 * from a test's own frame: that is a promise job, and V8 runs no microtask checkpoint inside one
 * (node's runMicrotasks() does nothing there; the promise jobs would wait for the check phase).
 */
function fromLoop<T>(fn: () => T): Promise<T> {
  return new Promise((resolve, reject) => {
    setImmediate(() => {
      try {
        resolve(fn());
      } catch (e) {
        reject(e);
      }
    });
  });
}

/** Queues a NOP record carrying `aux` for `target` (a new slot), as a handler's write would. */
function queue(ring: Ring, aux: number, target: CompletionTarget = new Target()): number {
  const slot = ring.alloc(target);
  ring.push(OP_NOP, -1, slot, 0, undefined, aux);
  return slot;
}

describe("the ring's completion callback flushes what its completions queue", () => {
  it("sends a write a promise job queues after a completion in the same callback, and the write's completion with it", async () => {
    const fake = fakeRing();
    const ring = new Ring(fake.binding, OPTIONS);
    const send = new Target();
    let sendSlot = -1;
    const recv = ring.alloc(
      new Target(() => {
        void Promise.resolve().then(() => {
          sendSlot = queue(ring, 7, send);
        });
      }),
    );
    await fromLoop(() => fake.poll([recv]));
    expect(fake.submits).toEqual([[7]]);
    expect(fake.armed).toBe(0);
    expect(send.seen).toEqual([sendSlot]);
    ring.destroy();
  });

  it("runs the completions' nextTicks before their promise jobs (node's order), then flushes once", async () => {
    const fake = fakeRing();
    const ring = new Ring(fake.binding, OPTIONS);
    const recv = ring.alloc(
      new Target(() => {
        void Promise.resolve().then(() => queue(ring, 2));
        process.nextTick(() => queue(ring, 1));
        queue(ring, 0);
      }),
    );
    await fromLoop(() => fake.poll([recv]));
    expect(fake.submits).toEqual([[0, 1, 2]]);
    expect(fake.armed).toBe(0);
    ring.destroy();
  });

  it("flushes once per callback: what the flush's completions queue waits for the next loop iteration", async () => {
    const fake = fakeRing();
    const ring = new Ring(fake.binding, OPTIONS);
    let next = 0;
    // Each send's completion queues the next send from a promise job, 3 sends in all.
    const chain = (): Target =>
      new Target(() => {
        if (next < 3) void Promise.resolve().then(() => queue(ring, next++, chain()));
      });
    await fromLoop(() => fake.poll([ring.alloc(chain())]));
    expect(fake.submits).toEqual([[0]]);
    expect(fake.armed).toBe(1);
    expect(fake.want()).toBe(2);
    // This iteration's check phase makes no call; a completion callback in the next one sends
    // send 1 with what its own completion queued (10).
    fake.check();
    expect(fake.submits).toEqual([[0]]);
    const recv = ring.alloc(new Target(() => void Promise.resolve().then(() => queue(ring, 10))));
    await fromLoop(() => fake.poll([recv]));
    expect(fake.submits).toEqual([[0], [1, 10]]);
    expect(fake.skipped).toBe(0);
    // Send 1's completion queued send 2: no completion callback comes, the next check sends it.
    expect(fake.want()).toBe(2);
    fake.check();
    await fromLoop(() => fake.check());
    expect(fake.submits).toEqual([[0], [1, 10], [2]]);
    ring.destroy();
  });

  it('takes over a flush armed before the callback: the check phase then makes no call', async () => {
    const fake = fakeRing();
    const ring = new Ring(fake.binding, OPTIONS);
    queue(ring, 1); // as from a timer
    expect(fake.armed).toBe(1);
    const recv = ring.alloc(new Target(() => void Promise.resolve().then(() => queue(ring, 2))));
    await fromLoop(() => fake.poll([recv]));
    expect(fake.submits).toEqual([[1, 2]]);
    fake.check();
    expect(fake.skipped).toBe(1);
    expect(fake.submits).toEqual([[1, 2]]);
    ring.destroy();
  });

  it('sends in this check phase what is queued outside a callback while its leftovers wait for the next', async () => {
    const fake = fakeRing();
    const ring = new Ring(fake.binding, OPTIONS);
    const send = new Target(() => void Promise.resolve().then(() => queue(ring, 2)));
    const recv = ring.alloc(new Target(() => void Promise.resolve().then(() => queue(ring, 1, send))));
    await fromLoop(() => fake.poll([recv]));
    expect(fake.submits).toEqual([[1]]);
    expect(fake.want()).toBe(2);
    queue(ring, 3); // another I/O callback of the poll phase
    expect(fake.want()).toBe(1);
    fake.check();
    expect(fake.submits).toEqual([[1], [2, 3]]);
    ring.destroy();
  });

  it("lets a throwing target's error surface after the batch, and sends what the others queued in the check phase", async () => {
    const fake = fakeRing();
    const ring = new Ring(fake.binding, OPTIONS);
    const failing = new Target(() => {
      queue(ring, 1);
      throw new Error('target failed');
    });
    const other = new Target(() => queue(ring, 2));
    const slots = [ring.alloc(failing), ring.alloc(other)];
    await expect(fromLoop(() => fake.poll(slots))).rejects.toThrow('target failed');
    expect(other.seen).toEqual([slots[1]]);
    expect(fake.armed).toBe(1);
    fake.check();
    expect(fake.submits).toEqual([[1, 2]]);
    ring.destroy();
  });

  it('keeps a promise job that flushes the ring itself or destroys it from a second submit or an armed check', async () => {
    const fake = fakeRing();
    const ring = new Ring(fake.binding, OPTIONS);
    const flushing = ring.alloc(
      new Target(() => {
        void Promise.resolve().then(() => {
          queue(ring, 1);
          ring.flush();
        });
      }),
    );
    await fromLoop(() => fake.poll([flushing]));
    expect(fake.submits).toEqual([[1]]);
    expect(fake.armed).toBe(0);
    const destroying = ring.alloc(
      new Target(() => {
        queue(ring, 2);
        void Promise.resolve().then(() => ring.destroy());
      }),
    );
    await fromLoop(() => fake.poll([destroying]));
    expect(fake.submits).toEqual([[1], [2]]); // destroy() flushed what was queued, once
    expect(fake.armed).toBe(0);
    expect(ring.isDestroyed).toBe(true);
  });

  it('arms the check phase as before for records queued outside the callback (a timer, an immediate)', () => {
    const fake = fakeRing();
    const ring = new Ring(fake.binding, OPTIONS);
    queue(ring, 1);
    expect(fake.armed).toBe(1);
    fake.check();
    expect(fake.submits).toEqual([[1]]);
    ring.destroy();
  });
});

const RING = fileURLToPath(new URL('./ring.ts', import.meta.url));
const NATIVE = fileURLToPath(new URL('../../../../native/index.js', import.meta.url));
const RECORDS = fileURLToPath(new URL('./records.ts', import.meta.url));

/**
 * A node process of its own (node's options are per process; a throwing nextTick is reported as
 * uncaught): a ring over a minimal fake binding, an async hook enabled (node then checks its async
 * id stack in JavaScript too), and the completions of SCENARIO, delivered from the loop:
 * - order: one completion whose nextTick and promise job each queue a record (1 and 2) and whose
 *   other promise rejects unhandled;
 * - throw: a completion that queues record 1, then a nextTick that throws and one that queues 3;
 *   a second completion that queues 2.
 * Prints the submits (their records' aux), the armFlush calls, the completions seen, and the
 * unhandled rejections and uncaught exceptions the process heard.
 */
const CHILD = `
import { createHook } from 'node:async_hooks';
import { Ring } from ${JSON.stringify(RING)};
import { CQ_STRIDE, OP_NOP, SQ_STRIDE } from ${JSON.stringify(RECORDS)};
import { loadNative } from ${JSON.stringify(NATIVE)};
createHook({ before() {}, after() {} }).enable();
let sq, cq, onComplete, onFlush;
const submits = [];
let armed = 0;
const seen = [];
const unhandled = [];
const uncaught = [];
process.on('unhandledRejection', (reason) => unhandled.push(reason.message));
// 'forever' has no handler: a process whose reports end it must end, not spin.
if (process.env.SCENARIO !== 'forever') process.on('uncaughtException', (error) => uncaught.push(error.message));
const binding = {
  init(s, c, complete, init) { sq = s; cq = c; onComplete = complete; onFlush = init.onFlush; return { features: 0, flags: 0, bufRing: false }; },
  submit(n) { const a = []; for (let i = 0; i < n; i++) a.push(sq[i * SQ_STRIDE + 6]); submits.push(a); return 0; },
  armFlush() { armed++; return 0; },
  // The addon's: node's own report of an uncaught exception (the fake ring needs no io_uring).
  reportUncaught: loadNative().binding.reportUncaught,
  destroy() {},
};
const ring = new Ring(binding, { entries: 64, bufferCount: 4, bufferSize: 64, sqpoll: false, flushMode: 'immediate' });
const queue = (aux) => ring.push(OP_NOP, -1, ring.alloc({ onCompletion() {} }), 0, undefined, aux);
const target = (name, then) => ring.alloc({ onCompletion() { seen.push(name); then(); } });
const forever = () => { process.nextTick(forever); throw new Error('again'); };
const slots = process.env.SCENARIO === 'forever'
  ? [target('a', () => process.nextTick(forever))]
  : process.env.SCENARIO === 'throw'
  ? [
      target('a', () => {
        queue(1);
        process.nextTick(() => { throw new Error('tick failed'); });
        process.nextTick(() => queue(3));
      }),
      target('b', () => queue(2)),
    ]
  : [
      target('a', () => {
        void Promise.resolve().then(() => queue(2));
        process.nextTick(() => queue(1));
        void Promise.reject(new Error('nobody listens'));
      }),
    ];
let inCallback = -1;
// From the loop, as the poll callback (not the module's evaluation: a promise job).
setImmediate(() => {
  slots.forEach((slot, i) => { cq[i * CQ_STRIDE] = slot; cq[i * CQ_STRIDE + 1] = 0; cq[i * CQ_STRIDE + 2] = 0; });
  onComplete(slots.length);
  inCallback = submits.length;
});
// The check phase of a later turn, after the immediate's nextTicks and promise jobs.
setImmediate(() => { if (armed > 0) onFlush(); });
setImmediate(() => console.log(JSON.stringify({ inCallback, submits, armed, seen, unhandled, uncaught })));
`;

function child(
  scenario: string,
  args: readonly string[] = [],
  env: NodeJS.ProcessEnv = {},
): ReturnType<typeof spawnSync> {
  return spawnSync(
    process.execPath,
    [...args, '--conditions=@loch/source', '--import', 'tsx', '--input-type=module', '-e', CHILD],
    { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env, SCENARIO: scenario } },
  );
}

describe.skipIf(!probeUring().available)("the ring's completion callback in a process of its own", () => {
  it('flushes in the callback and still reports an unhandled rejection', () => {
    const out = child('order');
    expect(out.stderr).toBe('');
    expect(JSON.parse(String(out.stdout))).toEqual({
      inCallback: 1,
      submits: [[1, 2]],
      armed: 0,
      seen: ['a'],
      unhandled: ['nobody listens'],
      uncaught: [],
    });
  }, 90_000); // a node + tsx start

  it('reports a throwing nextTick as uncaught, runs the ticks after it, and sends the records in the check phase', () => {
    const out = child('throw');
    expect(out.stderr).toBe(''); // e.g. no "async hook stack has become corrupted"
    expect(out.status).toBe(0);
    expect(JSON.parse(String(out.stdout))).toEqual({
      inCallback: 0,
      submits: [[1, 2, 3]],
      armed: 1,
      seen: ['a', 'b'],
      unhandled: [],
      uncaught: ['tick failed'],
    });
  }, 90_000);

  it('ends the process, never hangs, on a nextTick that throws and queues itself again (REVIEW F164)', () => {
    const out = child('forever');
    expect(out.signal).toBeNull(); // not killed by spawnSync's timeout
    expect(out.status).not.toBe(0);
    // node's report of the first throw, not the scope's end finding the async id stack corrupted.
    expect(out.stderr).toContain('Error: again');
    expect(out.stderr).not.toContain('async hook stack');
  }, 90_000);

  it.each([
    ['--pending-deprecation', '--throw-deprecation'],
    ['--throw-deprecation', 'NODE_PENDING_DEPRECATION=1'],
  ])(
    "never calls node's deprecated process._tickCallback (%s %s): the check phase flushes as before",
    (...opts) => {
      const args = opts.filter((o) => o.startsWith('--'));
      const env = Object.fromEntries(opts.filter((o) => !o.startsWith('--')).map((o) => o.split('=')));
      const out = child('order', args, env);
      // DEP0134 would print, or throw with --throw-deprecation.
      expect(out.stderr).toBe('');
      expect(out.status).toBe(0);
      expect(JSON.parse(String(out.stdout))).toEqual({
        inCallback: 0,
        submits: [[1, 2]],
        armed: 1,
        seen: ['a'],
        unhandled: ['nobody listens'],
        uncaught: [],
      });
    },
    90_000,
  );
});

const RUNTIME = fileURLToPath(new URL('../runtime.ts', import.meta.url));

/**
 * The same through the addon (its poll callback's napi callback scope, whose end checks node's
 * async id stack), an async hook enabled: a ring stream served to a node:net client (libuv's
 * socket: its bytes reach the ring's receive through the poll, not through a flush's drain),
 * answering each ping from a promise job of the poll callback that queues a throwing nextTick.
 */
const REAL = `
import { createHook } from 'node:async_hooks';
import { connect } from 'node:net';
import { createRuntime } from ${JSON.stringify(RUNTIME)};
createHook({ before() {}, after() {} }).enable();
const uncaught = [];
process.on('uncaughtException', (error) => uncaught.push(error.message));
const runtime = await createRuntime({ driver: 'uring', idleTrimMs: 0, log: () => undefined });
const listener = await runtime.driver.listenTcp({ host: '127.0.0.1', port: 0 });
const accepted = listener.accept();
const client = connect(listener.localAddress.port, '127.0.0.1');
client.setEncoding('utf8');
const server = await accepted;
const text = (stream) => new Promise((resolve, reject) => stream.recvTo({ onRecv(chunk, error) {
  if (error !== undefined || chunk === null) return reject(error ?? new Error('early end of stream'));
  const t = Buffer.from(chunk.bytes).toString();
  chunk.release();
  resolve(t);
} }));
const replies = [];
for (let i = 0; i < 3; i++) {
  const got = text(server);
  const reply = new Promise((resolve) => client.once('data', resolve));
  client.write('ping ' + i);
  const ping = await got;
  process.nextTick(() => { throw new Error('tick failed ' + i); });
  server.writeTo(Buffer.from('pong to ' + ping), { onWritten(error) { if (error !== undefined) throw error; } });
  replies.push(await reply);
}
client.destroy();
await server.close();
await listener.close();
await runtime.close();
console.log(JSON.stringify({ replies, uncaught }));
`;

describe.skipIf(!probeUring().available)("the ring's completion callback on the addon", () => {
  it('reports a nextTick that throws in the poll callback as uncaught and goes on, in a process of its own', () => {
    const out = spawnSync(
      process.execPath,
      ['--conditions=@loch/source', '--import', 'tsx', '--input-type=module', '-e', REAL],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(out.stderr).toBe(''); // e.g. no "async hook stack has become corrupted"
    expect(out.status).toBe(0);
    expect(JSON.parse(String(out.stdout))).toEqual({
      replies: ['pong to ping 0', 'pong to ping 1', 'pong to ping 2'],
      uncaught: ['tick failed 0', 'tick failed 1', 'tick failed 2'],
    });
  }, 90_000);
});
