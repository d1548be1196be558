/**
 * The per-thread io_uring ring as seen from TypeScript: the op slab keyed by user_data (slot and
 * generation), the submission record queue flushed once per loop turn with one native call, and
 * completion dispatch by slot with one JS call per drain. Also owns the provided-buffer pool for
 * multishot recv. Not for socket semantics (stream.ts, listener.ts) or the Driver API (driver.ts).
 */
import { constants } from 'node:os';
import type { NativeBinding, RingInfo, RingInit } from '@loch/native';
import { errnoName } from '../errors.js';
import { BufferBudget, type BufferBudgetOptions, type BufferStats } from '../internal/buffer-budget.js';
import { closeBatch, openBatch } from '../internal/target-delivery.js';
import { FdRegistry } from './fd-registry.js';
import { HeapBufferPool } from './heap-buffers.js';
import {
  CQ_STRIDE,
  CQE_F_MORE,
  OP_CANCEL,
  OP_CANCEL_FD,
  OP_CLOSE,
  OP_PLAIN_RELEASE,
  OP_PROVIDE,
  SQ_STRIDE,
} from './records.js';

/** Receives the completions of an op slot. Called once per CQE (several for multishot ops). */
export interface CompletionTarget {
  onCompletion(res: number, flags: number, slot: number): void;
}

/**
 * What a slot's target is, told to Ring.alloc: the ring calls each kind's completion function
 * (RingOptions.completions) from a call site of its own, a call of one known function that
 * calls its class's `onCompletion` without loading it from the target. Loading `onCompletion`
 * from the targets was a megamorphic load (LoadIC_Megamorphic, ~75 instructions) and a generic
 * call per completion: one call site saw every target class of the thread, and a class's own
 * objects come in several maps (bench/http-proxy/turn-cost-2026-12-06.md). A target given a
 * kind must be of the kind's class; TARGET_OTHER's are called through CompletionTarget.
 */
export const TARGET_OTHER = 0;
/** A UringStream's own receive (multishot or one-buffer recv, in-ring TLS recv). */
export const TARGET_STREAM = 1;
/** A stream's single-shot op (stream.ts StreamOp: sends, writevs, reads into a buffer, shutdown). */
export const TARGET_STREAM_OP = 2;
/** A stream's heap receive (stream.ts HeapRecv: its poll, then its recv). */
export const TARGET_HEAP_RECV = 3;
/** A listener's multishot accept (listener.ts UringListener). */
export const TARGET_LISTENER = 4;
/** The kinds the ring tells apart (TARGET_*). */
export type TargetKind =
  | typeof TARGET_OTHER
  | typeof TARGET_STREAM
  | typeof TARGET_STREAM_OP
  | typeof TARGET_HEAP_RECV
  | typeof TARGET_LISTENER;

/**
 * When queued records are flushed: 'immediate' once per event-loop turn, after every I/O callback
 * of the turn (in the loop's check phase, where setImmediate callbacks run: the addon's own check
 * handle, binding.armFlush, or a setImmediate with an addon built before it); 'tick' when the current tick's promise jobs are done
 * (process.nextTick queued from a promise job runs after the whole microtask queue drained);
 * 'microtask' at the next microtask checkpoint (queueMicrotask; can flush several times a tick).
 */
export type FlushMode = 'immediate' | 'tick' | 'microtask';

/**
 * The completion function of each target kind but TARGET_OTHER: calls the `onCompletion` of the
 * kind's class on the target, the method held in a constant (`method.call(target, ...)`), so the
 * call needs no load from the target and TurboFan, inlining the function, knows what it calls.
 */
export interface TargetCompletions {
  readonly stream: CompletionFn;
  readonly streamOp: CompletionFn;
  readonly heapRecv: CompletionFn;
  readonly listener: CompletionFn;
}

/** Hands a completion to `target` (of the kind's class). */
export type CompletionFn = (target: CompletionTarget, res: number, flags: number, slot: number) => void;

/** Each kind's completion function when a ring is given none: the target's own onCompletion. */
function viaTarget(target: CompletionTarget, res: number, flags: number, slot: number): void {
  target.onCompletion(res, flags, slot);
}

const VIA_TARGET: TargetCompletions = {
  stream: viaTarget,
  streamOp: viaTarget,
  heapRecv: viaTarget,
  listener: viaTarget,
};

/** Options of a ring. */
export interface RingOptions {
  /** Submission queue entries. Default 1024. */
  readonly entries: number;
  /** Provided buffers for multishot recv (power of two). */
  readonly bufferCount: number;
  /** Bytes per provided buffer. */
  readonly bufferSize: number;
  /** IORING_SETUP_SQPOLL. Default false. */
  readonly sqpoll: boolean;
  readonly flushMode: FlushMode;
  /** In-ring TLS plaintext buffers (at most 65535; 0: no in-ring TLS). Default 256. */
  readonly plainCount?: number | undefined;
  /** Bytes per plaintext buffer. Default 32 KiB. */
  readonly plainSize?: number | undefined;
  /** Receive budgets per stream and per thread (internal/buffer-budget.ts). */
  readonly buffers?: BufferBudgetOptions | undefined;
  /** Most bytes of free heap receive buffers kept for reuse (heap-buffers.ts). Default 0: none. */
  readonly heapPoolBytes?: number | undefined;
  /**
   * Most provided buffers in the kernel's ring at once, whatever the budget would let it hold
   * (Ring.warmBuffers; env LOCH_URING_WARM_BUFFERS). Default WARM_BUFFERS.
   */
  readonly warmBuffers?: number | undefined;
  /**
   * What each target kind's completions call (TARGET_*). Default: each target's onCompletion,
   * loaded from the target.
   */
  readonly completions?: TargetCompletions | undefined;
  /**
   * Slots of the ring's direct descriptor table (0 or absent: none): TCP listeners accept into
   * it (UringListener), so accepted sockets are not in the process's fd table. Default 0.
   */
  readonly directFiles?: number | undefined;
  /**
   * Most direct (accepted) streams open at once on this thread: past it the listeners stop
   * arming their accepts (connections wait in the kernel's backlog), and arm again when one
   * closes. Default: the table's size.
   */
  readonly maxConnections?: number | undefined;
}

const { ECANCELED, EMFILE } = constants.errno;
/** The refused-direct-table warning was emitted (once per process). */
let directWarned = false;

/**
 * Default of RingOptions.warmBuffers. The kernel takes provided buffers from its ring in FIFO
 * order, so a receive lands in the buffer returned as many receives ago as the ring holds: with
 * the budget's 144 (9 MiB of 64 KiB buffers) that memory was out of L2 when the copy wrote it
 * (bench/thrift/readings-2026-12-06e.md). Returns beyond this many wait on a stack in
 * JavaScript and go back most recent first, so receives cycle through this many buffers.
 */
export const WARM_BUFFERS = 32;

/**
 * Receives per buffer of the warm cap without one finding the ring empty after which a raised
 * cap halves (Ring.tookBuffer): a burst (64 connections' first requests at once took the cap from
 * 16 to 128, bench/thrift/readings-2026-12-07.md) does not keep the ring deep for good.
 */
const WARM_DECAY = 64;

/**
 * Most that WARM_DECAY grows to: each halving that a later burst undoes (ranDry raises the cap
 * again) doubles the receives the next halving waits for. Steady load that needs the raised cap
 * (HTTP/1.1 at 64 connections) otherwise ran the halved ring dry every ~2,000 requests, ~32
 * ENOBUFS receives each time (bench/thrift/readings-2026-12-07d.md, REVIEW F189).
 */
const WARM_DECAY_MAX = WARM_DECAY * 64;

/** RingOptions.warmBuffers, else env LOCH_URING_WARM_BUFFERS, else WARM_BUFFERS; at least 1. */
function resolveWarmBuffers(value: number | undefined): number {
  const env = process.env.LOCH_URING_WARM_BUFFERS;
  const v = value ?? (env !== undefined && env !== '' ? Number(env) : WARM_BUFFERS);
  if (!Number.isSafeInteger(v) || v < 1)
    throw new RangeError(`warmBuffers must be a positive integer, got ${v}`);
  return v;
}
/** The DEFER_TASKRUN experiment's warning went out on this thread (Ring's constructor). */
let deferWarned = false;

/**
 * node's own runNextTicks (`process._tickCallback`: the microtasks, then the nextTicks with the
 * microtasks after each and the unhandled rejections, node's order at a callback scope's end),
 * or undefined where calling it would print or throw: with `--pending-deprecation` (or
 * NODE_PENDING_DEPRECATION=1) node wraps it in DEP0134's warning (a function named `deprecated`).
 * Read per thread: a worker's process object has its own.
 */
const runTicks: (() => void) | undefined = (() => {
  const fn = (process as unknown as { readonly _tickCallback?: unknown })._tickCallback;
  return typeof fn === 'function' && fn.name === 'runNextTicks' ? (fn as () => void) : undefined;
})();
/**
 * Runs runTicks to the end; false when a nextTick threw. A nextTick that throws leaves its async
 * context on node's async id stack (processTicksAndRejections pops it only when the tick
 * returns), and the callback scope's end would find the stack corrupted and end the process
 * ("async hook stack has become corrupted"). So the error is not rethrown but reported at once
 * through the addon (binding.reportUncaught: node's own report of an exception that reaches a
 * callback's top, 'uncaughtException' or the thread's end, which clears that stack), and the
 * ticks queued after it are left to the scope's end, as node leaves them after such a report.
 */
function ticksRan(report: (error: unknown) => void): boolean {
  try {
    runTicks!();
    return true;
  } catch (e) {
    report(e);
    return false;
  }
}

/**
 * Ring.flushWant's values: no flush wanted; a flush in this loop iteration's check phase; in the
 * next iteration's (the addon's check handle stays started for one more poll phase).
 */
const FLUSH_NONE = 0;
const FLUSH_NOW = 1;
const FLUSH_NEXT = 2;
/** submitArgs[2], what submitShared's `bufs` is: @loch/native's SubmitBufs (NONE, VIEW, ARRAY). */
const SUBMIT_BUFS_NONE = 0;
const SUBMIT_BUFS_VIEW = 1;
const SUBMIT_BUFS_ARRAY = 2;
const onPoolPressure = (reader: PoolReader): void => reader.onPoolPressure();
const FREE = 0;
const IN_FLIGHT = 1;
const CANCELLING = 2;
/**
 * Op slots per page of the per-slot arrays (SlotPage): slot `s` is entry `s & SLOT_MASK` of page
 * `s >>> SLOT_SHIFT`. A ring starts with one page and adds one when every slot is taken.
 */
const SLOT_SHIFT = 10;
const SLOT_PAGE = 1 << SLOT_SHIFT;
const SLOT_MASK = SLOT_PAGE - 1;

/**
 * The per-slot state of SLOT_PAGE op slots. The ring's slots live in pages that are never
 * replaced: a ring that grows adds a page and copies nothing. Growing flat arrays instead (by
 * SLOT_STEP or an eighth, as before) left the replaced arrays to the GC: filling a worker to
 * 19,300 connections replaced ~6x the final size, malloc'd backing stores and old-space arrays
 * a busy worker kept until a major GC and its thread arena after that (issue 18,
 * bench/idle-memory/readings-2026-12-06.md). 26 B a slot: gens 4, next 4, states 1, kinds 1 (one
 * ArrayBuffer), targets and pinned 8 each.
 */
class SlotPage {
  /** Each slot's generation, in the op's user_data: a stale completion cannot reach a new op. */
  readonly gens: Uint32Array;
  /** FREE, IN_FLIGHT or CANCELLING. */
  readonly states: Uint8Array;
  /** The kind of each slot's target (TARGET_*), set at alloc: which call site dispatch uses. */
  readonly kinds: Uint8Array;
  /** The free list's link: the free slot after this one (-1: none). Stale while taken. */
  readonly next: Int32Array;
  /** Receives the slot's completions while its op is in flight. */
  readonly targets: (CompletionTarget | undefined)[] = [];
  /**
   * What each in-flight op's buffers are, kept reachable until the op's final completion
   * (native runs with `callerPins`, so it takes no napi reference per op): a Uint8Array, or an
   * array of them for writev.
   */
  readonly pinned: (Uint8Array | Uint8Array[] | undefined)[] = [];

  /** Slots `base` to `base + SLOT_PAGE - 1`, free and linked in order, the last to `after`. */
  constructor(base: number, after: number) {
    const memory = new ArrayBuffer(SLOT_PAGE * 10);
    this.gens = new Uint32Array(memory, 0, SLOT_PAGE);
    this.next = new Int32Array(memory, SLOT_PAGE * 4, SLOT_PAGE);
    this.states = new Uint8Array(memory, SLOT_PAGE * 8, SLOT_PAGE);
    this.kinds = new Uint8Array(memory, SLOT_PAGE * 9, SLOT_PAGE);
    for (let i = 0; i < SLOT_MASK; i++) this.next[i] = base + i + 1;
    this.next[SLOT_MASK] = after;
    // Holey arrays of the page's length, object elements from the start (undefined is no Smi),
    // so every page's arrays have one elements kind and their loads stay monomorphic.
    this.targets.length = SLOT_PAGE;
    this.targets[0] = undefined;
    this.pinned.length = SLOT_PAGE;
    this.pinned[0] = undefined;
  }
}

/** A stream of the ring (UringStream), as its registry sees it. */
export interface PoolReader {
  readonly fd: number;
  /**
   * The pool is under pressure: a plain stream holding bytes stops its multishot (it re-arms
   * within the rules); any other stream does nothing.
   */
  onPoolPressure(): void;
}

/**
 * The native op table's memory now (native/src/ring.h): `slots` slots of `slotBytes` each, and
 * `ops` SlotOps of `opBytes` (the state only sends, writevs, connects and timeouts keep until
 * their final completion), `opsHeld` of them held by slots now. An armed receive holds none.
 */
export interface SlotMemory {
  readonly slots: number;
  readonly slotBytes: number;
  readonly ops: number;
  readonly opBytes: number;
  readonly opsHeld: number;
}

/** Something waiting for provided buffers to come back (a recv that got ENOBUFS). */
export interface BufferWaiter {
  onBuffersAvailable(): void;
}

/**
 * One io_uring per JS thread. Ops are queued with `push*` and go to the kernel in one `submit`
 * per flush; `dispatch` hands each completion to the slot's target.
 */
export class Ring {
  readonly info: RingInfo;
  /** The provided-buffer pool; buffer `bid` is `pool.subarray(bid * bufferSize, ...)`. */
  readonly pool: Uint8Array;
  /**
   * The pool's ArrayBuffer (the pool starts at offset 0): `new Uint8Array(poolBuffer, off, n)`
   * makes a chunk's view without subarray()'s species lookup.
   */
  readonly poolBuffer: ArrayBuffer;
  readonly bufferSize: number;
  /** The thread's receive budgets: every stream of this ring charges its held bytes here. */
  readonly budget: BufferBudget;
  /**
   * The thread's free heap receive buffers (HeapRecv in stream.ts): a heap receive takes one
   * and its stream gives it back when nothing has it any more.
   */
  readonly heapBuffers: HeapBufferPool;
  /**
   * Multishot recvs carry a byte limit (sqe optlen: the kernel ends the recv once it received
   * that many bytes). Cleared when the kernel refuses one with EINVAL.
   */
  recvLimit = true;
  /** Provided buffers taken by plain streams' recvs and not given back yet. */
  buffersOut = 0;
  /**
   * Buffers kept out of the kernel's ring (Ring.publish): the kernel may fill only what is in it,
   * so held bytes plus the ring's buffers stay within the budget's share without promises.
   */
  private readonly withheld: number[] = [];
  readonly bufferCount: number;
  /**
   * Provided buffers streams that already hold bytes may have out together: the rest of the pool
   * (a quarter, at least 4) is kept for streams taking their first chunk.
   */
  readonly busyBuffers: number;
  /**
   * Provided buffers the kernel may have at once, out of its ring and in it together: 7/8 of the
   * pool (Ring.publish keeps the rest withheld). The kernel fills whatever multishot recvs are
   * armed from whatever its ring holds, before JavaScript sees a completion and stops them (with
   * COOP_TASKRUN at any syscall of the thread; a late thread sees many at once), and in an order
   * the pressure rules cannot foresee: trickled pieces that came one at a time, each seen before
   * the next, took all 64 of a 64-buffer pool. So the bound is the ring's, as the share's is.
   */
  readonly kernelBuffers: number;
  /**
   * Provided buffers out past which a stream within its base chunk receives into a heap buffer of
   * its own (HeapRecv in stream.ts) instead of the pool: an eighth of the pool (at least 2) is left.
   */
  readonly freshBuffers: number;
  /**
   * Buffers in the kernel's ring at or below which a stream within its base chunk receives into a
   * heap buffer (a growing stream waits only for an empty ring): an eighth of what the share lets
   * the kernel hold.
   */
  readonly freshFloor: number;
  /** One-buffer recvs in flight of streams that hold bytes (each may take a buffer). */
  busyRecvs = 0;
  /**
   * Most provided buffers kept in the kernel's ring now (below the budget's bound, which still
   * holds): receives cycle through few buffers whose memory is still in cache, since the
   * kernel's ring is FIFO and JavaScript returns the most recently released first (`withheld` is
   * a stack). Starts at RingOptions.warmBuffers; doubles when a recv found the ring empty while
   * the budget had room (ranDry: a burst took more between two drains), halves again after
   * WARM_DECAY receives per buffer of it without that (twice as many after each halving a burst
   * undid, up to WARM_DECAY_MAX), and goes back to its start at the idle trim.
   */
  warmBuffers: number;
  private readonly warmBase: number;
  /** ranDry raised the warm cap since the last flush. */
  private warmRaised = false;
  /** Receives (buffers taken) since the warm cap last changed. */
  private warmTaken = 0;
  /** Receives per buffer of the cap before it halves: WARM_DECAY, doubled per halving undone. */
  private warmDecay = WARM_DECAY;
  /** The cap halved since ranDry last raised it: a raise now undoes that halving. */
  private warmHalved = false;
  /**
   * The thread's open streams by descriptor (closed by their Driver's close(); the plain ones with
   * a multishot recv armed are stopped together when the pool is under pressure).
   */
  readonly streams = new FdRegistry<PoolReader>();
  /**
   * The open direct streams by slot of the direct descriptor table (a number space of its own:
   * slot 7 and descriptor 7 are different sockets). Its size is what maxConnections caps.
   */
  readonly directStreams = new FdRegistry<PoolReader>();
  /** Most direct streams at once (RingOptions.maxConnections, at most the table's size); 0 without a table. */
  readonly maxDirect: number;
  /**
   * Slots of the direct table taken or about to be: accepted sockets whose close direct has not
   * completed (streams, and accepted ones not handed out yet) plus the accepts armed, over every
   * listener of the thread. An accept is armed only while this stays within maxDirect, so an
   * armed accept always finds a free slot: an accept direct into a full table is not left in the
   * backlog as EMFILE would be, the kernel takes the connection, finds no slot and closes it
   * (ENFILE: the client reads EOF), so it must not happen.
   */
  private directSlots = 0;
  /**
   * The kernel refused an OP_SETSOCKOPT record on a slot (EOPNOTSUPP or EINVAL: no URING_CMD
   * setsockopt before Linux 6.7): direct streams' setRecvLowWater answers false from then on.
   */
  directSockoptRefused = false;
  /** Listeners that stopped arming at maxDirect: armed again when a slot frees. */
  private readonly atCap = new Set<{ arm(): void }>();
  /** Half the pool went out and the multishots of streams holding bytes were stopped. */
  private pressure = false;
  /**
   * In-ring TLS: the plaintext pool's memory (TLS streams' recv chunks are views of it) and its
   * buffers' size; plaintext buffer `id` starts at `id * plainSize`.
   */
  readonly plainBuffer: ArrayBuffer;
  readonly plainPool: Uint8Array;
  readonly plainSize: number;
  /** Plaintext buffers lent to readers now. */
  private plainLent = 0;
  private readonly plainCount: number;
  /**
   * Plaintext buffers kept from the ring's free list (releasePlain): the ring decrypts only into
   * buffers on it, so held bytes plus its buffers stay within the thread's cap, whichever TLS
   * streams it feeds (their recvs give the provided buffers back at once, so the kernel's ring
   * does not bound them).
   */
  private readonly withheldPlain: number[] = [];
  /**
   * Plaintext buffers always left on the ring's free list, whatever the thread holds: native
   * gives the last ones (kPlainReserve in ring_tls.cc) only to conns whose reader holds none (a
   * new request; a flooded proxy reader keeps one). As a plain stream's base read, such a stream must
   * never wait for held bytes to come down: idle plain streams keeping one chunk each can hold
   * more than the cap for good, and with no buffer on the list every TLS read and handshake
   * waited (packages/tls/test/receive-budget.test.ts).
   */
  private readonly plainReserve: number;
  /**
   * Fault injection (dropCompletions): every completion from now on is dropped unseen, so the
   * thread's I/O and ring timers stop while its JavaScript runs on (a wedged worker).
   */
  private dropping = false;
  /** Records queued for the next flush. */
  private count = 0;
  private readonly capacity: number;
  private readonly sq: Int32Array;
  private readonly cq: Int32Array;
  /**
   * Buffers referenced by queued records, by index. Entries past `bufCount` are stale (cleared
   * after each flush so they pin nothing); the array keeps its capacity between flushes.
   */
  private readonly bufs: (Uint8Array | undefined)[] = [];
  private bufCount = 0;
  /** The addon takes a flush's lone buffer as submit's `bufs` itself (ringInfo.submitView). */
  private readonly submitView: boolean;
  /**
   * submitShared's arguments, shared with the addon: [n, drain (0 | 1), what bufs is
   * (@loch/native's SubmitBufs)]. Written before each call: the addon then reads no napi
   * arguments but `bufs` (~230 instructions a flush, bench/thrift/readings-2026-12-06g.md).
   */
  private readonly submitArgs = new Int32Array(3);
  /** The addon took submitArgs (ringInfo.submitArgs): flushes call submitShared. */
  private readonly sharedSubmit: boolean;
  /** The op slots' state, SLOT_PAGE slots a page (SlotPage); only ever appended to. */
  private readonly pages: SlotPage[] = [];
  /** The first free slot (its page's `next` links the rest; -1: none). The last freed comes first. */
  private freeHead = 0;
  private scheduled = false;
  /** Buffer returns queued since the last flush, and how many may wait for a ride. */
  private pendingProvides = 0;
  private readonly provideBatch: number;
  private dispatching = false;
  /** Index of the CQE being dispatched (to clean up after a target that threw). */
  private current = 0;
  private destroyed = false;
  private starved: BufferWaiter[] = [];
  private readonly flushMode: FlushMode;
  /** The kinds' completion functions (RingOptions.completions), one field each: monomorphic loads. */
  private readonly completeStream: CompletionFn;
  private readonly completeStreamOp: CompletionFn;
  private readonly completeHeapRecv: CompletionFn;
  private readonly completeListener: CompletionFn;
  /**
   * 'immediate' mode's flush is armed in the addon (binding.armFlush: a libuv check handle runs
   * it in the same phase a setImmediate would, without node's Immediate, its async context and
   * its ref toggling: ~1,200 instructions per loop turn; bench/thrift/readings-2026-12-05c.md).
   * False with an addon built before it, and in the other modes.
   */
  private readonly nativeFlush: boolean;
  /**
   * The completion callback flushes what it queues itself (nativeFlush and runTicks): it runs
   * the nextTicks and promise jobs its completions made (node's order, as the callback scope's
   * end would), then submits, in the same callback scope: a wakeup turn makes one scope, not a
   * second one in the check phase (bench/http-proxy/turn-cost-2026-12-06b.md).
   */
  private readonly pollFlush: boolean;
  /** The addon's report of an uncaught exception (ticksRan); pollFlush needs it. */
  private readonly reportUncaught: ((error: unknown) => void) | undefined;
  /** The completion callback is running (pollFlush): schedule() leaves the flush to its end. */
  private inPoll = false;
  /** A flush was asked for while inPoll: the callback flushes, or arms the check at its end. */
  private deferred = false;
  /**
   * Shared with the addon (init's flushWant, FLUSH_*; ring.h's kFlush*): FLUSH_NOW while the
   * armed flush has work, FLUSH_NONE once a flush ran, FLUSH_NEXT for the next iteration's. The
   * completion callback takes over a flush armed before it (completeAndFlush); the addon's check
   * handle, still started, then makes no call into JavaScript unless something was queued since
   * (an addon built before it calls, and the flush finds nothing to do).
   */
  private readonly flushWant = new Int32Array(1);
  private readonly flushBound = (): void => {
    // A flush drains completions too: what they deliver goes at its end (target-delivery.ts).
    const outer = openBatch();
    try {
      this.flush();
    } finally {
      closeBatch(outer);
    }
  };
  private readonly onCompleteBound = (n: number): void => {
    if (this.pollFlush) {
      this.completeAndFlush(n);
      return;
    }
    // Each call is one completion batch: its deliveries go at its end, without a microtask.
    const outer = openBatch();
    try {
      this.dispatch(n);
    } finally {
      closeBatch(outer);
    }
  };

  /**
   * The completion callback with pollFlush: takes over a flush armed before it, dispatches the
   * batch, runs the nextTicks and promise jobs it made (where handlers queue their writes), and
   * flushes what they queued, once. What the flush's own completions queue (receives that came
   * meanwhile) waits for the next loop iteration (FLUSH_NEXT), as it did when the flush ran in
   * the check phase; what is queued once the callback returned goes out in the check phase as
   * before. A target's throw propagates as before (an uncaught exception once the batch is
   * dispatched); a tick's is reported as uncaught here (ticksRan). Either way what was queued
   * goes in the check phase.
   */
  private completeAndFlush(n: number): void {
    if (this.scheduled) {
      // A flush armed before (by a check phase's completions, a timer): this callback's.
      this.scheduled = false;
      this.flushWant[0] = FLUSH_NONE;
      this.deferred = true;
    }
    this.inPoll = true;
    try {
      const outer = openBatch();
      try {
        this.dispatch(n);
      } finally {
        closeBatch(outer);
      }
      // A nextTick threw (reported): the check phase flushes, in a callback scope of its own.
      if (!ticksRan(this.reportUncaught!) || !this.deferred || this.destroyed) return;
      this.deferred = false;
      const batch = openBatch();
      try {
        this.flushNow(true);
      } finally {
        closeBatch(batch);
      }
      if (!ticksRan(this.reportUncaught!)) return;
      if (this.deferred && this.count > 0 && !this.destroyed) {
        // What the flush's completions queued (receives that came meanwhile, mostly) waits for
        // the next loop iteration, as when the flush ran in the check phase: another poll phase
        // to gather more, and a completion callback there flushes it with its own.
        this.deferred = false;
        this.inPoll = false;
        this.schedule();
        if (this.scheduled) this.flushWant[0] = FLUSH_NEXT;
      }
    } finally {
      this.inPoll = false;
      if (this.deferred) {
        this.deferred = false;
        if (this.count > 0 && !this.destroyed) this.schedule();
      }
    }
  }

  constructor(
    private readonly binding: NativeBinding,
    options: RingOptions,
  ) {
    this.flushMode = options.flushMode;
    const completions = options.completions ?? VIA_TARGET;
    this.completeStream = completions.stream;
    this.completeStreamOp = completions.streamOp;
    this.completeHeapRecv = completions.heapRecv;
    this.completeListener = completions.listener;
    this.nativeFlush = options.flushMode === 'immediate' && typeof binding.armFlush === 'function';
    this.reportUncaught = binding.reportUncaught;
    this.pollFlush = this.nativeFlush && runTicks !== undefined && this.reportUncaught !== undefined;
    // Each record can take two SQEs (connect + linked timeout); keep a batch within the SQ.
    this.capacity = Math.max(16, options.entries >> 1);
    this.sq = new Int32Array(this.capacity * SQ_STRIDE);
    this.cq = new Int32Array(options.entries * 4 * CQ_STRIDE);
    this.bufferSize = options.bufferSize;
    this.bufferCount = options.bufferCount;
    this.busyBuffers = Math.max(1, options.bufferCount - Math.max(4, options.bufferCount >> 2));
    this.freshBuffers = Math.max(1, options.bufferCount - Math.max(2, options.bufferCount >> 3));
    this.kernelBuffers = options.bufferCount - (options.bufferCount >> 3);
    this.budget = new BufferBudget(options.buffers, options.bufferSize);
    this.heapBuffers = new HeapBufferPool(options.heapPoolBytes ?? 0);
    // What the kernel may fill at first: as many whole buffers as the share holds.
    const published = Math.min(this.kernelBuffers, Math.floor(this.budget.share / options.bufferSize));
    this.freshFloor = Math.max(2, published >> 3);
    this.warmBase = this.warmBuffers = resolveWarmBuffers(options.warmBuffers);
    this.provideBatch = Math.max(1, options.bufferCount >> 3);
    this.poolBuffer = new ArrayBuffer(options.bufferCount * options.bufferSize);
    this.pool = new Uint8Array(this.poolBuffer);
    this.plainCount = options.plainCount ?? 256;
    this.plainSize = options.plainSize ?? 32 * 1024;
    // Untouched pages of a large ArrayBuffer are not resident: a thread without TLS pays nothing.
    this.plainBuffer = new ArrayBuffer(this.plainCount * this.plainSize);
    this.plainPool = new Uint8Array(this.plainBuffer);
    // The ring starts with as many plaintext buffers as the cap holds; the rest wait here.
    this.plainReserve = Math.min(8, this.plainCount >> 3);
    const plainPublished = Math.min(
      this.plainCount,
      Math.max(this.plainReserve, Math.floor(this.budget.workerCap / this.plainSize)),
    );
    this.pages.push(new SlotPage(0, -1));
    const init: RingInit = {
      entries: options.entries,
      sqpoll: options.sqpoll,
      pool: this.pool,
      bufferCount: options.bufferCount,
      bufferSize: options.bufferSize,
      callerPins: true,
      publishedBuffers: Math.min(published, this.warmBuffers),
      plainPool: this.plainPool,
      plainCount: this.plainCount,
      plainSize: this.plainSize,
      plainPublished,
      ...(this.nativeFlush ? { onFlush: this.flushBound, flushWant: this.flushWant } : {}),
      submitArgs: this.submitArgs,
      // Issue 18, bench/http-proxy/direct-descriptors-2026-12-07.md: a direct descriptor table
      // that TCP listeners accept into (native/README.md, "Direct descriptors").
      ...(options.directFiles !== undefined && options.directFiles > 0
        ? { directFiles: options.directFiles }
        : {}),
    };
    this.info = binding.init(this.sq, this.cq, this.onCompleteBound, init);
    const table = this.info.directFiles ?? 0;
    this.maxDirect = table === 0 ? 0 : Math.min(table, options.maxConnections ?? table);
    const refused = this.info.directFilesError;
    if (refused !== undefined && !directWarned) {
      // Asked for and refused: the thread runs on descriptors (the process's RLIMIT_NOFILE caps
      // its connections again). Said once per process, with why.
      directWarned = true;
      process.emitWarning(
        `io_uring direct descriptors (directFiles ${options.directFiles}) refused: ${errnoName(refused)}` +
          (refused === EMFILE ? ' (more slots than the soft RLIMIT_NOFILE; "auto" asks for that many)' : '') +
          '; accepted connections use descriptors.',
        { code: 'LOCH_URING_DIRECT_FILES' },
      );
    }
    this.submitView = this.info.submitView === true;
    this.sharedSubmit = this.info.submitArgs === true && typeof binding.submitShared === 'function';
    if (this.info.deferTaskrun && !deferWarned) {
      // The LOCH_URING_DEFER_TASKRUN=1 experiment took: say once per thread what it costs.
      deferWarned = true;
      process.emitWarning(
        'LOCH_URING_DEFER_TASKRUN=1: this ring runs DEFER_TASKRUN, an experiment. On kernel 6.18 its ' +
          'eventfd is signalled from an RCU callback, so every wakeup waits for a grace period (~16 ms; ' +
          'a Thrift relay made 63 calls in 2 s). Do not use it to serve (native/README.md).',
        { code: 'LOCH_URING_DEFER_TASKRUN' },
      );
    }
    // Native put only the first `published` buffers in the kernel's ring (an older build: all).
    const put = this.info.publishedBuffers;
    if (put !== undefined) for (let bid = options.bufferCount - 1; bid >= put; bid--) this.withheld.push(bid);
    // Likewise the plaintext buffers (an older build put them all on its free list: none kept).
    const plainPut = this.info.plainPublished;
    if (plainPut !== undefined)
      for (let id = this.plainCount - 1; id >= plainPut; id--) this.withheldPlain.push(id);
  }

  /**
   * A plain stream's recv took a provided buffer. When that makes half the pool out, every armed
   * multishot of a stream that holds bytes stops at once rather than at its own next completion
   * (each could take one more buffer first, which many trickling streams add up to; a stream
   * within its base re-arms a multishot until 3/4 are out); the check runs again once the pool
   * came back below 3/8.
   */
  tookBuffer(): void {
    const out = ++this.buffersOut;
    if (out >= this.bufferCount >> 1) {
      if (!this.pressure) {
        this.pressure = true;
        this.streams.forEach(onPoolPressure);
        this.directStreams.forEach(onPoolPressure);
      }
    } else if (this.pressure && out < (this.bufferCount * 3) >> 3) this.pressure = false;
    if (++this.warmTaken >= this.warmBuffers * this.warmDecay && this.warmBuffers > this.warmBase) {
      // No burst outgrew the cap for a while: back towards its start (the ring drains down to it
      // as receives take buffers, returns waiting on the stack).
      this.warmBuffers = Math.max(this.warmBase, this.warmBuffers >> 1);
      this.warmTaken = 0;
      this.warmHalved = true;
    }
    this.publish();
  }

  /** Provided buffers in the kernel's ring now, as far as JavaScript knows (TLS recvs borrow some). */
  get buffersIn(): number {
    return this.bufferCount - this.buffersOut - this.withheld.length;
  }

  /**
   * Provided buffers the budget lets the kernel's ring hold now (the share less held bytes, and
   * kernelBuffers): what buffersIn would be without the warm cap, which only delays buffers the
   * ring tops up at each completion. What a recv asks when it decides whether the ring is out.
   */
  get buffersOpen(): number {
    const byShare = Math.floor((this.budget.share - this.budget.held) / this.bufferSize);
    const open = Math.min(byShare, this.kernelBuffers - this.buffersOut);
    return Math.max(this.buffersIn, open);
  }

  /**
   * A recv found the kernel's ring empty (ENOBUFS). When the warm cap, not the budget, left it
   * empty (a burst took more buffers between two drains than the cap), the cap doubles, so a
   * thread whose bursts are larger settles at a cap that covers them.
   */
  ranDry(): void {
    // Once per flush: the burst's other recvs that found the ring empty are in the same drain.
    if (!this.warmRaised && this.warmBuffers < this.bufferCount && this.buffersOpen > this.warmBuffers) {
      this.warmBuffers = Math.min(this.warmBuffers * 2, this.bufferCount);
      this.warmRaised = true;
      this.warmTaken = 0;
      // The last halving was too soon for this load: the next one waits twice as long.
      if (this.warmHalved) this.warmDecay = Math.min(this.warmDecay * 2, WARM_DECAY_MAX);
      this.warmHalved = false;
    }
    // Always: a recv may have been armed on room the ring had not been topped up to yet.
    this.publish();
  }

  /**
   * Puts withheld buffers back in the kernel's ring while held bytes plus the ring's buffers stay
   * within the share: the kernel then cannot receive past the thread's budget, whichever streams
   * it fills, and a stream's recv needs no promise. And while the buffers out plus those in the
   * ring stay within `kernelBuffers`: the kernel cannot take the whole pool, however late this
   * thread sees its completions. Called when buffers were taken or given back.
   */
  publish(): void {
    const budget = this.budget;
    if (this.withheldPlain.length > 0) this.publishPlain();
    const withheld = this.withheld;
    if (withheld.length === 0) return;
    const room = Math.min(
      Math.floor((budget.share - budget.held) / this.bufferSize) - this.buffersIn,
      this.kernelBuffers - (this.bufferCount - withheld.length),
      this.warmBuffers - this.buffersIn,
    );
    for (let i = 0; i < room && withheld.length > 0; i++) this.queueProvide(withheld.pop()!);
  }

  /**
   * Drops every completion from now on (a fault for tests of supervision, never undone): what
   * a ring whose completions stop coming looks like to the thread's streams and timers.
   */
  dropCompletions(): void {
    this.dropping = true;
  }

  /** True when the ring can carry TLS sessions (in-ring TLS). */
  get tlsCapable(): boolean {
    return this.info.plainPool === true && this.info.bufRing && typeof this.binding.tlsAttach === 'function';
  }

  /** A TLS stream's recv handed plaintext buffer `id` to a reader. */
  lendPlain(): void {
    this.plainLent++;
    // Held bytes count what chunks carry, buffers may be part full: room for more buffers.
    if (this.withheldPlain.length > 0) this.publishPlain();
  }

  /**
   * Returns plaintext buffer `id` to the ring. Like provide(), the return rides along with the
   * next flush, unless half the pool is lent out (a stream the ring stopped for want of
   * plaintext buffers may be waiting for it): then it schedules one.
   */
  releasePlain(id: number): void {
    this.plainLent--;
    const budget = this.budget;
    const plainIn = this.plainIn;
    if (plainIn >= this.plainReserve && (plainIn + 1) * this.plainSize + budget.held > budget.workerCap) {
      // The ring still hears that its reader let go (it counts each conn's buffers), not freed.
      this.withheldPlain.push(id);
      this.queuePlainRelease(id, 1);
      return;
    }
    this.queuePlainRelease(id, 0);
  }

  /**
   * Gives withheld plaintext buffers back to the ring while the thread's cap has room for them,
   * and always up to the reserve kept for TLS streams within their base.
   */
  private publishPlain(): void {
    const plain = this.withheldPlain;
    const plainIn = this.plainIn;
    const room = Math.max(
      this.plainReserve - plainIn,
      Math.floor((this.budget.workerCap - this.budget.held) / this.plainSize) - plainIn,
    );
    for (let i = 0; i < room && plain.length > 0; i++) this.queuePlainRelease(plain.pop()!, 0);
  }

  /** Plaintext buffers on the ring's free list, as far as JavaScript knows. */
  private get plainIn(): number {
    return this.plainCount - this.plainLent - this.withheldPlain.length;
  }

  /** Queues plaintext buffer `id`'s return to the ring's free list (`keep` 1: released, not freed). */
  private queuePlainRelease(id: number, keep: number): void {
    if (this.count === this.capacity) this.flushNow(false);
    const o = this.count++ * SQ_STRIDE;
    const sq = this.sq;
    sq[o] = OP_PLAIN_RELEASE;
    sq[o + 1] = -1;
    sq[o + 2] = -1;
    sq[o + 3] = 0;
    sq[o + 4] = 0;
    sq[o + 5] = -1;
    sq[o + 6] = id;
    sq[o + 7] = keep;
    if (keep !== 0) return;
    if (this.plainLent >= this.plainCount >> 1 || ++this.pendingProvides >= this.provideBatch)
      this.schedule();
    if (this.starved.length > 0) {
      this.schedule();
      const waiting = this.starved;
      this.starved = [];
      for (const w of waiting) w.onBuffersAvailable();
    }
  }

  /** The native op table's memory now; undefined with an addon built before it counted it. */
  slotMemory(): SlotMemory | undefined {
    return (this.info as RingInfo & { readonly slotMemory?: () => SlotMemory }).slotMemory?.();
  }

  /** The receive budgets' numbers, with the provided buffers out of the kernel's ring. */
  bufferStats(): BufferStats {
    return this.budget.stats(this.buffersOut, this.bufferCount, this.heapBuffers.counts());
  }

  /**
   * Lets go of the free heap receive buffers (the thread's idle trim); returns the bytes dropped.
   * The warm cap goes back to its start (the ring drains down to it as buffers come back).
   */
  trimBuffers(): number {
    this.warmBuffers = this.warmBase;
    this.warmTaken = 0;
    this.warmDecay = WARM_DECAY;
    this.warmHalved = false;
    return this.heapBuffers.trim();
  }

  /** True once destroy() ran. */
  get isDestroyed(): boolean {
    return this.destroyed;
  }

  /**
   * Takes a slot for an op whose completions go to `target`, a target of kind `kind` (TARGET_*:
   * which of dispatch's call sites calls it).
   */
  alloc(target: CompletionTarget, kind: TargetKind = TARGET_OTHER): number {
    let slot = this.freeHead;
    if (slot < 0) slot = this.grow();
    const page = this.pages[slot >>> SLOT_SHIFT]!;
    const i = slot & SLOT_MASK;
    this.freeHead = page.next[i]!;
    page.states[i] = IN_FLIGHT;
    page.gens[i] = (page.gens[i]! + 1) >>> 0;
    page.targets[i] = target;
    page.kinds[i] = kind;
    return slot;
  }

  /** True when cancel() was requested for the slot's current op. */
  isCancelling(slot: number): boolean {
    return this.pages[slot >>> SLOT_SHIFT]!.states[slot & SLOT_MASK] === CANCELLING;
  }

  /**
   * Queues an op record. `buf` (when given) is kept reachable until the op's final CQE.
   * For writev, pass the buffers with `pushBuffers` and their first index as `bufIndex`.
   */
  push(
    op: number,
    fd: number,
    slot: number,
    len: number,
    buf: Uint8Array | undefined,
    aux: number,
    aux2 = 0,
  ): void {
    this.reserve();
    let index = -1;
    if (buf !== undefined) {
      index = this.bufCount++;
      this.bufs[index] = buf;
      this.pages[slot >>> SLOT_SHIFT]!.pinned[slot & SLOT_MASK] = buf; // a plain store: cheaper than telling pool views apart
    }
    this.record(op, fd, slot, len, index, aux, aux2);
  }

  /**
   * Queues buffers for the writev record of `slot` (kept reachable until its final
   * completion); returns the index of the first.
   */
  pushBuffers(slot: number, bufs: readonly Uint8Array[], from: number, to: number): number {
    this.reserve();
    const first = this.bufCount;
    const pin = bufs.slice(from, to);
    for (let i = 0; i < pin.length; i++) this.bufs[this.bufCount++] = pin[i]!;
    this.pages[slot >>> SLOT_SHIFT]!.pinned[slot & SLOT_MASK] = pin;
    return first;
  }

  /** Queues a record whose buffers were added with pushBuffers. */
  record(op: number, fd: number, slot: number, len: number, bufIndex: number, aux: number, aux2 = 0): void {
    if (this.count === this.capacity) {
      if (bufIndex >= 0) throw new Error('ring: reserve() before queueing buffers');
      this.flushNow(false);
    }
    const o = this.count++ * SQ_STRIDE;
    const sq = this.sq;
    sq[o] = op;
    sq[o + 1] = fd;
    sq[o + 2] = slot;
    sq[o + 3] = slot >= 0 ? this.pages[slot >>> SLOT_SHIFT]!.gens[slot & SLOT_MASK]! | 0 : 0;
    sq[o + 4] = len;
    sq[o + 5] = bufIndex;
    sq[o + 6] = aux;
    sq[o + 7] = aux2;
    this.schedule();
  }

  /** Makes room for one record, so buffer indexes queued next stay valid. */
  reserve(): void {
    if (this.count === this.capacity) this.flushNow(false);
  }

  /** The direct descriptor table's size (0: none, or refused: info.directFilesError says why). */
  get directFiles(): number {
    return this.info.directFiles ?? 0;
  }

  /**
   * Takes a slot of the direct table for an accept `listener` arms (true), or says the table is
   * at maxDirect (false: `listener` is armed again once a slot frees, directSlotFreed). The slot
   * stays taken while the accept is armed and, if it accepted, until the socket's close direct
   * completed; an accept that ends without a connection gives it back (directSlotFreed).
   */
  takeDirectSlot(listener: { arm(): void }): boolean {
    if (this.directSlots < this.maxDirect) {
      this.directSlots++;
      return true;
    }
    this.atCap.add(listener);
    return false;
  }

  /**
   * A slot taken by takeDirectSlot is free again: a direct socket's close direct completed, or an
   * armed accept ended without a connection (cancelled, failed). Listeners at the cap arm again.
   */
  directSlotFreed(): void {
    this.directSlots--;
    if (this.atCap.size === 0) return;
    const waiting = [...this.atCap];
    this.atCap.clear();
    for (const l of waiting) l.arm();
  }

  /** Slots of the direct table taken or armed for (see directSlots): for tests and stats. */
  get directSlotsTaken(): number {
    return this.directSlots;
  }

  /** Requests cancellation of the op in `slot` (IORING_OP_ASYNC_CANCEL). Its buffer still comes back. */
  cancel(slot: number): void {
    const page = this.pages[slot >>> SLOT_SHIFT]!;
    const i = slot & SLOT_MASK;
    if (page.states[i] !== IN_FLIGHT) return;
    page.states[i] = CANCELLING;
    this.record(OP_CANCEL, -1, -1, 0, -1, slot, page.gens[i]! | 0);
  }

  /** Cancels every op on `fd` (`fdOps`: FIXED_FILE_OP when `fd` is a direct slot). */
  cancelFd(fd: number, fdOps = 0): void {
    this.record(OP_CANCEL_FD | fdOps, fd, -1, 0, -1, 0);
  }

  /**
   * Cancels every op on `fd` and closes it in the same submission: the close is hardlinked after
   * the cancel (it runs once the cancel completed, whatever the cancel found); `slot`'s target
   * hears the close. Where cancelFd and a close once the ops completed take two flushes.
   */
  cancelFdAndClose(fd: number, slot: number, fdOps = 0): void {
    if (this.count + 2 > this.capacity) this.flushNow(false);
    this.record(OP_CANCEL_FD | fdOps, fd, -1, 0, -1, 0, 1);
    this.record(OP_CLOSE | fdOps, fd, slot, 0, -1, 0);
  }

  /**
   * Returns provided buffer `bid` to the kernel, and wakes recvs that ran out of buffers. The
   * return rides along with the next flush; it only schedules one of its own when many are
   * pending or a recv is starved, so a release costs no extra loop turn or native call.
   * `decrypted`: it carried a TLS stream's plaintext (the ring decrypted a reader's records into
   * the buffer their ciphertext came in, when its plaintext pool had none for it).
   */
  provide(bid: number, decrypted = false): void {
    this.buffersOut--;
    if (this.withheldPlain.length > 0) this.publishPlain();
    const budget = this.budget;
    if (
      this.buffersIn * this.bufferSize + budget.held > budget.share ||
      this.bufferCount - this.withheld.length > this.kernelBuffers ||
      this.buffersIn > this.warmBuffers
    ) {
      // The kernel could fill it past the share (or, with an addon that put the whole pool in
      // its ring at setup, past kernelBuffers): kept until held bytes come back (publish()).
      // Or the ring holds its warm cap: kept on top of the stack, the next one publish() puts in.
      this.withheld.push(bid);
      // A TLS reader's plaintext in it (the ring counts it as that conn's until it hears): the
      // ring hears of the release now, so the conn's next request is not taken for a backlog.
      if (decrypted) this.queueProvide(bid, 1);
      return;
    }
    this.queueProvide(bid);
  }

  /** Queues buffer `bid`'s return to the kernel's ring (`keep` 1: released, kept out of it). */
  private queueProvide(bid: number, keep = 0): void {
    if (this.count === this.capacity) this.flushNow(false);
    const o = this.count++ * SQ_STRIDE;
    const sq = this.sq;
    sq[o] = OP_PROVIDE;
    sq[o + 1] = -1;
    sq[o + 2] = -1;
    sq[o + 3] = 0;
    sq[o + 4] = 0;
    sq[o + 5] = -1;
    sq[o + 6] = bid;
    sq[o + 7] = keep;
    if (keep !== 0) return;
    // Half the warm cap waiting is a flush of its own: a thread that only receives (no send to
    // carry the returns) would otherwise find the capped ring empty.
    if (++this.pendingProvides >= Math.min(this.provideBatch, this.warmBuffers >> 1)) this.schedule();
    if (this.starved.length > 0) {
      this.schedule();
      const waiting = this.starved;
      this.starved = [];
      for (const w of waiting) w.onBuffersAvailable();
    }
  }

  /**
   * Flushes queued records on this turn if there are any: a TLS stream's reader is about to
   * wait, and the plaintext buffers it gave back may be what the ring waits for to go on.
   */
  kick(): void {
    if (this.count > 0) this.schedule();
  }

  /** Registers a recv that got ENOBUFS, to re-arm when a buffer comes back. */
  waitForBuffers(waiter: BufferWaiter): void {
    // Returns already queued reach the kernel before anything queued now: retry right away.
    if (this.pendingProvides > 0) waiter.onBuffersAvailable();
    else this.starved.push(waiter);
  }

  /** Submits every queued record now. */
  flush(): void {
    this.scheduled = false;
    this.flushWant[0] = FLUSH_NONE;
    this.flushNow(!this.dispatching);
  }

  /**
   * Cancels in-flight ops, unpins their buffers and closes the ring. Ops still in flight
   * complete with -ECANCELED, so no promise is left pending.
   */
  destroy(): void {
    if (this.destroyed) return;
    this.flush();
    this.destroyed = true;
    // Native cancels and waits for in-flight ops before it returns; only then let go of their buffers.
    this.binding.destroy();
    for (const page of this.pages) page.pinned.fill(undefined);
    // Heap receives still in flight give their buffers back below (completed as cancelled): dropped.
    this.heapBuffers.close();
    const pages = this.pages;
    for (let p = 0; p < pages.length; p++) {
      const { targets, states } = pages[p]!;
      for (let i = 0; i < SLOT_PAGE; i++) {
        const target = targets[i];
        if (target === undefined || states[i] === FREE) continue;
        states[i] = CANCELLING;
        targets[i] = undefined;
        try {
          target.onCompletion(-ECANCELED, 0, (p << SLOT_SHIFT) | i);
        } catch {
          // a target's failure must not stop the others from settling
        }
        states[i] = FREE;
      }
    }
  }

  private flushNow(drain: boolean): void {
    const n = this.count;
    if (n === 0 || this.destroyed) return;
    this.count = 0;
    this.pendingProvides = 0;
    this.warmRaised = false;
    const used = this.bufCount;
    // A lone buffer goes as itself where the addon takes it (submitView): no element lookup in
    // native (~600 instructions; a wakeup turn's flush usually carries one send).
    const view = used === 1 && this.submitView;
    const given = view ? this.bufs[0] : used > 0 ? (this.bufs as Uint8Array[]) : undefined;
    let got: number;
    if (this.sharedSubmit) {
      const args = this.submitArgs;
      args[0] = n;
      args[1] = drain ? 1 : 0;
      args[2] = view ? SUBMIT_BUFS_VIEW : used > 0 ? SUBMIT_BUFS_ARRAY : SUBMIT_BUFS_NONE;
      got = this.binding.submitShared!(given);
    } else {
      got = this.binding.submit(n, given, drain);
    }
    if (used > 0) {
      // A loop, not bufs.fill(): fill() on a holey array is a call into C++ (Builtin_ArrayPrototypeFill,
      // ~200 instructions for the one or two buffers a flush carries; bench/thrift/readings-2026-12-05c.md).
      const bufs = this.bufs;
      for (let i = 0; i < used; i++) bufs[i] = undefined;
      this.bufCount = 0;
    }
    if (got > 0) this.dispatch(got);
  }

  private schedule(): void {
    if (this.scheduled) {
      // Queued outside a completion callback while its leftovers wait (FLUSH_NEXT): this check phase's.
      if (this.flushWant[0] === FLUSH_NEXT && !this.inPoll) this.flushWant[0] = FLUSH_NOW;
      return;
    }
    if (this.inPoll) {
      // The completion callback flushes at its end (completeAndFlush), or arms the check then.
      this.deferred = true;
      return;
    }
    this.scheduled = true;
    if (this.nativeFlush) {
      this.flushWant[0] = FLUSH_NOW;
      // -EBADF (no ring, no onFlush: not on a live ring) must not leave the records unsent.
      if (this.binding.armFlush!() < 0) setImmediate(this.flushBound);
    } else if (this.flushMode === 'immediate') setImmediate(this.flushBound);
    else if (this.flushMode === 'tick') process.nextTick(this.flushBound);
    else queueMicrotask(this.flushBound);
  }

  /**
   * Hands every drained CQE to its slot's target. A target that throws costs no other target its
   * completion: the batch carries on and the first exception is rethrown at the end.
   */
  private dispatch(n: number): void {
    if (this.dropping) return;
    this.dispatching = true;
    let failed = false;
    let failure: unknown;
    let i = 0;
    while (i < n) {
      try {
        i = this.dispatchFrom(i, n);
      } catch (e) {
        // The completion at this.current threw: free its slot as dispatchFrom would have.
        const o = this.current * CQ_STRIDE;
        if ((this.cq[o + 2]! & CQE_F_MORE) === 0 && !this.destroyed) this.free(this.cq[o]!);
        i = this.current + 1;
        if (!failed) {
          failed = true;
          failure = e;
        }
      }
    }
    this.dispatching = false;
    if (failed) throw failure;
  }

  /** Dispatches CQEs [from, n) with no handler in the loop; returns n. */
  private dispatchFrom(from: number, n: number): number {
    const cq = this.cq;
    const pages = this.pages;
    for (let i = from; i < n; i++) {
      // A target destroyed the ring (closed the driver): destroy() settled every op still in
      // flight, these included, and freed nothing that a later CQE of this batch may free again.
      if (this.destroyed) return n;
      const o = i * CQ_STRIDE;
      const slot = cq[o]!;
      const res = cq[o + 1]!;
      const flags = cq[o + 2]!;
      const page = pages[slot >>> SLOT_SHIFT]!;
      const targets = page.targets;
      const at = slot & SLOT_MASK;
      const target = targets[at];
      this.current = i;
      const final = (flags & CQE_F_MORE) === 0;
      // Final CQE: native has already unpinned the slot's buffers. The target is dropped first
      // (a destroy() from inside it must not complete it twice) but may still ask
      // isCancelling(), so the slot is freed after it ran.
      if (final) targets[at] = undefined;
      if (target !== undefined) {
        // One call site per kind (TARGET_*), each calling one function: no load from the target.
        switch (page.kinds[at]) {
          case TARGET_STREAM:
            this.completeStream(target, res, flags, slot);
            break;
          case TARGET_STREAM_OP:
            this.completeStreamOp(target, res, flags, slot);
            break;
          case TARGET_HEAP_RECV:
            this.completeHeapRecv(target, res, flags, slot);
            break;
          case TARGET_LISTENER:
            this.completeListener(target, res, flags, slot);
            break;
          default:
            target.onCompletion(res, flags, slot);
        }
      }
      if (final) this.freeIn(page, slot);
    }
    return n;
  }

  /** Returns a slot whose op reached its final completion to the free list. */
  private free(slot: number): void {
    this.freeIn(this.pages[slot >>> SLOT_SHIFT]!, slot);
  }

  /** free() with the slot's page looked up. */
  private freeIn(page: SlotPage, slot: number): void {
    const i = slot & SLOT_MASK;
    page.targets[i] = undefined;
    page.pinned[i] = undefined;
    page.states[i] = FREE;
    page.next[i] = this.freeHead;
    this.freeHead = slot;
  }

  /**
   * One more page of op slots once every one is taken (a server's idle connections each keep
   * one, their armed receive); returns its first slot, which heads the free list now. Nothing is
   * copied or replaced (SlotPage), and at most a page's slots are unused.
   */
  private grow(): number {
    const base = this.pages.length << SLOT_SHIFT;
    this.pages.push(new SlotPage(base, -1));
    this.freeHead = base;
    return base;
  }
}
