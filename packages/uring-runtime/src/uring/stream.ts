/**
 * ByteStream on the io_uring ring: the driver primitives recvTo() (multishot recv with the
 * provided-buffer ring), read(buf) into a caller buffer, and writeTo()/sendTo() (send/sendmsg
 * that resubmit the rest after a short send, cancellable by AbortSignal), plus shutdown and close
 * with cancellation. recv(), iteration, writeAll and writev come from StreamForms
 * (internal/stream-forms.ts). Not for connection setup (driver.ts) or accepting (listener.ts).
 *
 * Read policy: multishot recv is armed only when a reader asks (recvTo(), so recv() and the
 * iterator, or read() while it is already armed) and stays armed while data flows, across messages
 * of a keep-alive connection; an idle armed connection holds no buffer (the kernel takes one from
 * the ring only when bytes arrive) and no budget (see arm()). Chunks that arrive with no
 * reader queue up to RECV_HIGH_WATER, then the multishot is cancelled and the kernel's socket
 * buffer (TCP flow control) holds the rest until a reader comes back. read(buf) takes bytes
 * already queued first, waits in the reader queue while the multishot is armed or other readers
 * wait, and otherwise issues a plain recv into `buf`; while that one is in flight nothing else
 * receives (readers queue behind it, and its completion arms for them), so readers of every
 * kind get the bytes in call order.
 */
import { constants } from 'node:os';
import type { NativeAddress, NativeBinding, NativeFailure, NativeTlsSession } from '@loch/native';
import { RuntimeError } from '../errors.js';
import { BASE_CHUNKS, type BudgetWaiter } from '../internal/buffer-budget.js';
import { PromiseWrite, StreamForms } from '../internal/stream-forms.js';
import { deliverRecv, deliverWritten } from '../internal/target-delivery.js';
import {
  type ConnectionFacts,
  type IoOptions,
  type IoResult,
  plainFacts,
  type RecvChunk,
  type RecvTarget,
  type SocketAddress,
  type WriteTarget,
} from '../stream.js';
import { LARGE_HEAP_BYTES, SMALL_HEAP_BYTES } from './heap-buffers.js';
import {
  CQE_BUFFER_SHIFT,
  CQE_F_BUFFER,
  CQE_F_MORE,
  CQE_F_PLAIN,
  CQE_F_SOCK_NONEMPTY,
  CQE_F_TLS_EVENT,
  FIXED_FILE_OP,
  MAX_IOV,
  OP_CLOSE,
  OP_POLL,
  OP_RECV,
  OP_RECV_MULTI,
  OP_RECV_SELECT,
  OP_SEND,
  OP_SETSOCKOPT,
  OP_SHUTDOWN,
  OP_TLS_CLOSE_NOTIFY,
  OP_WRITEV,
  TLS_PEER_CLOSED,
} from './records.js';
import {
  type BufferWaiter,
  type CompletionTarget,
  type PoolReader,
  type Ring,
  TARGET_HEAP_RECV,
  TARGET_STREAM,
  TARGET_STREAM_OP,
  type TargetCompletions,
} from './ring.js';
import { IPPROTO_TCP, SO_RCVLOWAT, SOL_SOCKET, TCP_NODELAY } from './sockopt.js';
import { tlsSentIndex, tlsSentPage } from './tls-sent.js';

const { EBUSY, ECANCELED, EINVAL, ENOBUFS, ENOTCONN, ENOTSUP, EOPNOTSUPP, EPIPE } = constants.errno;
/** Chunks queued without a reader before the multishot recv is cancelled (backpressure). */
const RECV_HIGH_WATER = 16;
/**
 * In-ring TLS: plaintext a session may already hold when its recv is armed (the ciphertext of one
 * incomplete record, at most 16 KiB of plaintext), kept out of what the recv may take. A session
 * waiting for plaintext buffers holds more: the ring counts that ciphertext as taken by the recv
 * (ArmTlsRecv in native/src/ring_tls.cc), so the stream's cap holds.
 */
const TLS_HELD_SLACK = 16 * 1024;
const UNKNOWN_ADDRESS: SocketAddress = { family: 'ipv4', address: '0.0.0.0', port: 0 };
/** Added to UringStream.peerPort for an IPv6 peer (ports are below it). */
const IPV6_PEER = 65536;

/** What a stream needs from its driver. */
export interface StreamHost {
  readonly binding: NativeBinding;
  readonly ring: Ring;
}

/**
 * IP address strings seen on this thread, so the address of every connection from one client
 * (or every local address of one listener) shares one string instead of a fresh one per
 * connection (a server holds one per idle connection). Bounded: cleared when it fills up.
 */
const addressStrings = new Map<string, string>();
const MAX_ADDRESS_STRINGS = 4096;

function internAddress(text: string): string {
  const known = addressStrings.get(text);
  if (known !== undefined) return known;
  if (addressStrings.size >= MAX_ADDRESS_STRINGS) addressStrings.clear();
  addressStrings.set(text, text);
  return text;
}

/**
 * Converts a native address or failure to a SocketAddress (unknown on failure). The family is
 * one of the module's constant strings and the IP string is interned: native hands out new
 * strings on every call.
 */
export function toSocketAddress(a: NativeAddress | { errno: number }): SocketAddress {
  if (!('family' in a)) return UNKNOWN_ADDRESS;
  if (a.family === 'unix') return a;
  return { family: a.family === 'ipv6' ? 'ipv6' : 'ipv4', address: internAddress(a.address), port: a.port };
}

/** A write after one that was cut mid-way (WRITE_BROKEN): EPIPE with the buffer handed back. */
function brokenWriteError(
  syscall: string,
  address: SocketAddress | undefined,
  buffer?: Uint8Array,
): RuntimeError {
  return RuntimeError.fromErrno(-EPIPE, syscall, address, buffer);
}

/**
 * An aborted or cancelled op's error: ECANCELED with the buffer handed back. Made without a stack
 * trace (its `stack` is its message line): close() makes one for the receive a server connection
 * leaves armed while its handler works (the client watch), so under connection churn one a
 * connection, and capturing its stack walked and translated the optimized frames below close()
 * every time (churn-2026-12-07.md's 2.4 %; close-deopts-2026-12-07.md). Where it was cancelled
 * says nothing the code and syscall do not.
 */
export function cancelledError(
  syscall: string,
  address: SocketAddress | undefined,
  buf?: Uint8Array,
): RuntimeError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return RuntimeError.fromErrno(-ECANCELED, syscall, address, buf);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/**
 * What a TLS stream carried by the ring (in-ring TLS) tells its owner: the session's state
 * changes, reported by the completion drain, and the end of the stream below during the handshake.
 */
export interface RingTlsEvents {
  /**
   * TLS state flags (TLS_* of records.ts: handshake done, peer closed, new session, failed).
   * Returns the error the stream's readers get from now on, if the session failed and they should.
   */
  onTlsEvent(flags: number): RuntimeError | undefined;
  /** The stream ended (`error` undefined) or failed while the handshake was still running. */
  onTlsTransportEnd(error: RuntimeError | undefined): void;
}

/**
 * A received chunk lent to the reader: a view of the provided-buffer pool (code = buffer id), or
 * on a TLS stream carried by the ring of its plaintext pool (code = -(id + 1)).
 */
class PooledChunk implements RecvChunk {
  constructor(
    readonly bytes: Uint8Array,
    private readonly stream: UringStream,
    /** The buffer's code; RELEASED once released. */
    private code: number,
    /** The bytes this chunk counts in its stream's held bytes (the whole received chunk). */
    private readonly charge: number,
  ) {}
  release(): void {
    const code = this.code;
    if (code === RELEASED) return;
    this.code = RELEASED;
    this.stream.giveBackChunk(code, this.charge);
  }
}

const RELEASED = 0x7fffffff;

/**
 * Codes at or below HEAP_BASE name a chunk received into a heap buffer (HeapRecv) instead of the
 * pool; plaintext codes are -(id + 1) with id < 65536, pool codes are >= 0.
 */
const HEAP_BASE = -0x10000000;
/** A JS-only completion flag: the chunk is the stream's pending heap buffer (HeapRecv). */
const CQE_F_HEAP = 1 << 12;
/** Size of a heap receive after one that filled its buffer (more was waiting). */
const HEAP_RECV_BYTES = LARGE_HEAP_BYTES;
/**
 * Size of a heap receive otherwise (nginx's client_header_buffer_size, 1k, then its large
 * buffers): in a slowloris every trickled byte may come by a heap read (ENOBUFS in each
 * second's burst), and each costs this much while the stream holds it: 10,000 connections'
 * first bytes took 143 MiB at 16 KiB. A read that fills it makes the next one HEAP_RECV_BYTES.
 */
const SMALL_HEAP_RECV_BYTES = SMALL_HEAP_BYTES;

/**
 * One recv into a heap buffer of its own, for a stream holding nothing while the provided-buffer
 * pool is nearly out (streams whose readers are blocked each keep one): the stream's first bytes
 * never wait for ENOBUFS behind a flood. Its completion goes to the stream as a final one.
 *
 * Two steps: a poll for readability first, and only then the buffer and its recv (which finds
 * the bytes already there). A heap recv armed with its buffer would hold it for as long as the
 * peer stays quiet: a slowloris's 10,000 connections, each sending a byte a second, got ENOBUFS
 * in every second's burst (the pool's buffers come back only between batches) and each then
 * waited for its next byte on 16 KiB of its own (issue 16: +130 MiB). A quiet stream holds none:
 * only when its last heap read filled HEAP_RECV_BYTES and left bytes waiting in the socket (bytes
 * coming in bulk: StreamRare.heapBulk) does the recv go at once with its buffer, one submission
 * instead of two.
 *
 * The buffer comes from the thread's free list (Ring.heapBuffers) and goes back to it once
 * nothing has it: its chunk released (or dropped at close), or its recv ended without one.
 */
class HeapRecv implements CompletionTarget {
  /** The receive buffer, taken once the socket is readable (undefined while the poll waits). */
  buf: Uint8Array | undefined = undefined;
  /** Bytes the recv asks for (the buffer may be larger: its size class). */
  want = 0;
  constructor(
    readonly stream: UringStream,
    readonly len: number,
    readonly code: number,
  ) {}
  onCompletion(res: number, flags: number, slot: number): void {
    this.stream.onHeapCompletion(this, res, flags, slot);
  }
}

/** poll(2)'s readable bit: a heap recv's first step waits for it. */
const POLLIN = 1;

/** A read(buf) waiting on the multishot recv: copies from the chunks it brings. */
class RecvWaiter {
  onAbort: (() => void) | undefined = undefined;
  constructor(
    readonly buf: Uint8Array,
    readonly resolve: (value: IoResult<Uint8Array>) => void,
    readonly reject: (error: RuntimeError) => void,
    readonly signal: AbortSignal | undefined,
  ) {}
}

/**
 * A reader queue entry is a read(buf) waiter, not a recvTo() target: a constructor compare
 * (see isOneBuffer: no InstanceOf builtin), and RecvWaiter has no subclasses.
 */
function isRecvWaiter(w: Waiter): w is RecvWaiter {
  return w.constructor === RecvWaiter;
}

/** A waiting reader: a read(buf), or a recvTo() target held as is (recv() is one of those). */
type Waiter = RecvWaiter | RecvTarget;

/** How a StreamOp settles on success. */
const AS_READ = 1; // [res, buf], and res === 0 marks end of stream
const AS_VOID = 3; // undefined
const AS_WRITE_ALL = 4; // buf, once every byte went out (a short send resubmits the rest)
const AS_WRITEV_ALL = 5; // the total, once every byte of `bufs` went out (short sends resubmit)
// (The write modes are the highest: `mode >= AS_WRITE_ALL` tells a write, see StreamOp.settled.)

type Settle = (value: never) => void;

/**
 * A write's data is one buffer, not a list. Not `instanceof Uint8Array`: Array.isArray is inlined
 * where TurboFan can leave an instanceof to the InstanceOf builtin (a GetProperty of
 * Symbol.hasInstance and a prototype walk, ~200 instructions: THRIFT's relay count).
 */
function isOneBuffer(data: Uint8Array | readonly Uint8Array[]): data is Uint8Array {
  return !Array.isArray(data);
}
type Fail = (error: RuntimeError) => void;

function noop(): void {}

/**
 * One in-flight single-shot op of a stream (read into caller buffer, send, writev, shutdown);
 * a write settles its WriteTarget, read and shutdown their promise.
 *
 * Write records (sendTo) are reused: one goes back to the thread's spare list (spareOps) once it
 * settled at its op's final completion, and the thread's next write takes it (writeOp). The rule
 * that makes this safe: a record is given back only from settled(), which runs once, at the
 * completion that ends the op (a short send's completion resubmits the same record instead and
 * returns before it; the ring has dropped the slot's target before it calls a final completion),
 * after its abort listener was removed; and it lets go of everything it referenced. So nothing
 * still holds a record on the spare list: no ring slot, no signal, no target. A completion with
 * CQE_F_MORE (none for these ops today) never gives one back. Per thread, not per stream: a
 * spare per stream would keep ~190 B on every idle connection (issue 18). Read ops (promises,
 * rare on the hot path) stay fresh; a shutdown's record and a close_notify's (each settles a
 * target, with noop resolve/reject) are given back as a write's is: writeOp resets every field a
 * write reads, and a shutdown's mode (AS_VOID) is not a write, so it never calls writeSettled.
 */
class StreamOp implements CompletionTarget {
  slot = -1;
  /** Bytes sent so far (AS_WRITE_ALL, AS_WRITEV_ALL). */
  done = 0;
  /** Bytes to send in all (AS_WRITEV_ALL). */
  total = 0;
  onAbort: (() => void) | undefined = undefined;
  /** The buffers of a writev still to send (AS_WRITEV_ALL). */
  bufs: readonly Uint8Array[] | undefined = undefined;
  /** On the thread's spare list (or about to be): a write record between two writes. */
  spare = false;
  constructor(
    public stream: UringStream,
    public syscall: string,
    public buf: Uint8Array | undefined,
    public mode: number,
    readonly resolve: Settle,
    readonly reject: Fail,
    public signal: AbortSignal | undefined,
    /** Told the outcome instead of a promise (writes). */
    public target: WriteTarget | undefined,
  ) {}

  onCompletion(res: number, flags: number, slot: number): void {
    if (this.spare) throw new Error('uring stream: a completion for a write record already given back');
    const stream = this.stream;
    stream.opFinished();
    const mode = this.mode;
    if (mode === AS_WRITE_ALL && res >= 0) {
      stream.sent += res;
      const buf = this.buf!;
      const done = (this.done += res);
      if (done < buf.length) {
        if (!stream.closing && !stream.ring.isCancelling(slot)) {
          // A short send: the same op (and promise) carries on with the rest, in a new slot.
          stream.resubmit(this, OP_SEND, buf.subarray(done));
          return;
        }
        res = -ECANCELED;
      } else {
        this.settled(undefined, buf, flags);
        return;
      }
    } else if (mode === AS_WRITEV_ALL && res >= 0) {
      stream.sent += res;
      const done = (this.done += res);
      if (done < this.total) {
        if (!stream.closing && !stream.ring.isCancelling(slot)) {
          stream.resubmitv(this, res);
          return;
        }
        res = -ECANCELED;
      } else {
        this.settled(undefined, done, flags);
        return;
      }
    }
    const buf = this.buf;
    if (res >= 0 || (mode === AS_VOID && res === -ENOTCONN)) {
      // (ENOTCONN: shutdown of a socket the peer already closed.)
      if (mode === AS_READ && res === 0) stream.markEnd();
      this.settled(undefined, mode === AS_VOID ? undefined : [res, buf], flags);
    } else if (stream.ring.isCancelling(slot) || stream.closing || res === -ECANCELED)
      this.settled(cancelledError(this.syscall, stream.addressForError(), buf), undefined, flags);
    else
      this.settled(
        RuntimeError.fromErrno(res, this.syscall, stream.addressForError(), buf),
        undefined,
        flags,
      );
    // Readers that queued behind a read's own recv go on from here, after its bytes.
    if (mode === AS_READ) stream.readOnceDone();
  }

  /**
   * Settles the op (its promise or its writeTo target) and drops its abort listener; a write
   * record then goes back to the thread's spare list (see the class comment), unless the
   * completion says more are due (`flags` with CQE_F_MORE).
   */
  private settled(error: RuntimeError | undefined, value: unknown, flags: number): void {
    const onAbort = this.onAbort;
    if (onAbort !== undefined) this.signal?.removeEventListener('abort', onAbort);
    const target = this.target;
    const stream = this.stream;
    const write = this.mode >= AS_WRITE_ALL;
    // A write that failed after part of it went out (an abort, a reset) cut the peer's byte
    // stream mid-write: nothing may follow it (see writeSettled).
    const cut = write && error !== undefined && this.done > 0;
    if (this.resolve === noop && (flags & CQE_F_MORE) === 0) giveBackOp(this);
    // Through the delivery queue, not called here: in completion order with the receives. A
    // promise write's target only settles its promise, itself deferred: told at once (known by
    // its constructor: PromiseWrite has no subclasses, and no InstanceOf builtin, see isOneBuffer).
    if (target !== undefined && (target as { constructor: unknown }).constructor === PromiseWrite)
      target.onWritten(error);
    else if (target !== undefined) deliverWritten(target, error);
    else if (error !== undefined) this.reject(error);
    else (this.resolve as (value: unknown) => void)(value);
    // The stream's next write (queued behind this one) starts now, after this one's last byte.
    if (write) stream.writeSettled(cut);
  }
}

/** Write records between two writes (see StreamOp), the thread's; at most MAX_SPARE_OPS. */
const spareOps: StreamOp[] = [];
/** Writes in flight at once that a thread reuses records for (~190 B each kept at most). */
const MAX_SPARE_OPS = 128;

/** A write record of `stream`: a spare one reused, or a new one (see StreamOp). */
function writeOp(
  stream: UringStream,
  syscall: string,
  buf: Uint8Array | undefined,
  mode: number,
  signal: AbortSignal | undefined,
  target: WriteTarget,
): StreamOp {
  const op = spareOps.pop();
  if (op === undefined) return new StreamOp(stream, syscall, buf, mode, noop, noop, signal, target);
  op.spare = false;
  op.stream = stream;
  op.syscall = syscall;
  op.buf = buf;
  op.mode = mode;
  op.signal = signal;
  op.target = target;
  op.done = 0;
  op.total = 0;
  return op;
}

/**
 * A settled write record back to the spare list: it lets go of its buffers, target and signal
 * (a spare must pin nothing), and is marked so a completion reaching it throws instead of
 * settling another write.
 */
function giveBackOp(op: StreamOp): void {
  op.spare = true;
  op.slot = -1;
  // Not the stream either: a spare would keep a closed stream (and its ring) reachable.
  (op as { stream: UringStream | undefined }).stream = undefined;
  op.target = undefined;
  op.buf = undefined;
  op.bufs = undefined;
  op.signal = undefined;
  op.onAbort = undefined;
  if (spareOps.length < MAX_SPARE_OPS) spareOps.push(op);
}

/** @internal Write records on this thread's spare list (tests). */
export function spareWriteOps(): number {
  return spareOps.length;
}

/**
 * A write (or a shutdown()) that waits for the stream's write in flight (see sendTo): `data`
 * undefined is a shutdown, whose target settles its promise; CLOSE_NOTIFY an in-ring TLS
 * close_notify (tlsCloseNotify) queued behind TLS writes past TLS_WRITES_IN_FLIGHT.
 */
class QueuedWrite {
  onAbort: (() => void) | undefined = undefined;
  constructor(
    readonly data: Uint8Array | readonly Uint8Array[] | undefined,
    readonly target: WriteTarget,
    readonly signal: AbortSignal | undefined,
  ) {}
}

/**
 * What a stream needs only while closing, splicing or serving several readers at once: kept out
 * of the stream object (one field instead of six) and created on first use.
 */
class StreamRare {
  closePromise: Promise<void> | undefined = undefined;
  finishClose: (() => void) | undefined = undefined;
  /** The close went to the ring with the cancel of the armed receive (closeWithReceive). */
  closeSent = false;
  /** That close completed. */
  closeDone = false;
  /** Readers after the first one (rare), in order. */
  moreWaiters: Waiter[] | undefined = undefined;
  /** Writes (and shutdowns) started while a write was in flight, in call order (see sendTo). */
  writes: QueuedWrite[] | undefined = undefined;
  /** Pipe pair for splice (O_NONBLOCK), created on first use, kept until close. */
  pipe: [number, number] | undefined = undefined;
  /** Splice pumps using the socket (O_NONBLOCK is set while there is one). */
  pumps = 0;
  /** Called once an armed multishot recv has finished (stopReading()). */
  onDisarmed: (() => void) | undefined = undefined;
  /**
   * Heap receive buffers by code (HeapRecv, armTlsHeap), from the recv that took one from the
   * thread's free list until it goes back there (see dropHeap).
   */
  heap: Map<number, Uint8Array> | undefined = undefined;
  /** The next heap code. */
  heapSeq = 0;
  /** The last heap read filled its buffer: the next one is HEAP_RECV_BYTES, not the small size. */
  heapLarge = false;
  /**
   * The last heap read filled a HEAP_RECV_BYTES buffer and the socket still had bytes waiting
   * after it (the kernel's SOCK_NONEMPTY): bytes are coming in bulk, so the next heap read goes to
   * the kernel at once, without its poll (see armHeap).
   */
  heapBulk = false;
  /** The code of the heap chunk a HeapRecv just completed (onHeapCompletion -> onCompletion). */
  heapCode = 0;
  /** The receive failure a recv saw (readers get it once the queued chunks are taken). */
  failure: RuntimeError | undefined = undefined;
  /**
   * SO_RCVLOWAT as this stream set it (setRecvLowWater): 1 is the kernel's default, 0 unknown
   * (a direct stream's record was refused), so an equal call makes no syscall. Here, not a field
   * of the stream: only streams that set a mark (a Thrift relay's) pay for it.
   */
  recvLowWater = 1;
}

/**
 * True when `rare` holds nothing a new StreamRare would not (its heap table empty): a stream may
 * drop it. The heap sequence restarts with a new one, which is safe with no heap code in use.
 */
function isSpare(rare: StreamRare): boolean {
  return (
    rare.closePromise === undefined &&
    rare.finishClose === undefined &&
    !rare.closeSent &&
    !rare.closeDone &&
    (rare.moreWaiters === undefined || rare.moreWaiters.length === 0) &&
    (rare.writes === undefined || rare.writes.length === 0) &&
    rare.pipe === undefined &&
    rare.pumps === 0 &&
    rare.onDisarmed === undefined &&
    !rare.heapLarge &&
    !rare.heapBulk &&
    rare.failure === undefined &&
    rare.recvLowWater === 1
  );
}

/**
 * In-ring TLS state of a stream (attachTls): made when a session is attached, so a plain stream
 * (every idle keep-alive connection of a plain listener) carries one field for it instead of four.
 */
class StreamTls {
  /** The ring's conn id + 1 while the ring carries the session, 0 once detached. */
  conn = 0;
  /**
   * The page where the ring keeps the conn's ciphertext sent count (tls-sent.ts, at the conn id's
   * tlsSentIndex): read while the ring carries the session, not past close or detach (the id is
   * reused then).
   */
  counts: Float64Array | undefined = undefined;
  /** The ring's ciphertext count last read (sentBytes), kept past close and detach. */
  sent = 0;
  /** Past its base: share bytes promised to the armed recv, not received yet. */
  promise = 0;
  /** The heap code of the buffer a base read armed into (armTlsHeap; 0: none). */
  heap = 0;
  constructor(
    /** The session's owner (undefined once detached). */
    public events: RingTlsEvents | undefined,
  ) {}
}

/**
 * Received chunks queued with no reader waiting (buffer code, length) in [head, tail): made on the
 * first chunk that has to wait, kept (with its arrays' capacity) when it empties.
 */
class ChunkQueue {
  readonly bid: number[] = [];
  readonly len: number[] = [];
  head = 0;
  tail = 0;
  /** Bytes of the head chunk already copied out by read(buf). */
  offset = 0;
}

// Stream state bits (UringStream.bits): booleans packed into one field (8 bytes each otherwise).
/** close() started; in-flight ops then fail with ECANCELED. */
const CLOSING = 1;
/** A cancel of the armed recv was requested. */
const CANCEL_REQUESTED = 2;
/** Bytes arrived on this stream once (its first read is one buffer: see arm()). */
const RECEIVED = 4;
/** The armed recv carries a byte limit (an EINVAL for it means the kernel has no such limit). */
const ARM_LIMITED = 8;
/** The armed recv is a one-buffer recv of a stream holding bytes (counted in ring.busyRecvs). */
const BUSY_RECV = 16;
/** End of stream seen. */
const EOF = 32;
/** In-ring TLS: the session still handshakes. */
const TLS_HANDSHAKING = 64;
/** A plain multishot recv is armed (stopped by the ring when the pool comes under pressure). */
const MULTISHOT = 128;
/**
 * `fd` is a slot of the ring's direct descriptor table (an accept direct), not a descriptor. Its
 * value is FIXED_FILE_OP (IOSQE_FIXED_FILE in a record's op word), so `bits & DIRECT` is what
 * every record of the stream ORs in (fdOps): no branch and no field per stream.
 */
const DIRECT = FIXED_FILE_OP;
/** A failure is in `rare.failure`. */
const FAILED = 512;
/**
 * A read(buf)'s own one-shot recv is in flight (see read()): nothing else receives until it
 * completes, so the readers queued behind it cannot take bytes ahead of it.
 */
const READING = 1024;
/**
 * TCP_NODELAY is set on the socket as far as this stream knows (the listener sets it on every
 * accepted TCP socket): setNoDelay() with the same value makes no call.
 */
const NO_DELAY = 2048;
/**
 * A write op of this stream is in flight (set when one is submitted, cleared when it settled):
 * a plain stream's next write queues behind it (see sendTo).
 */
const WRITING = 4096;
/**
 * A write failed after part of its bytes went out (aborted, or a send failed): the peer's byte
 * stream is cut mid-write, so the writes queued behind it and every later one fail with EPIPE,
 * as on the legacy driver (where an abort destroys the socket) instead of following the cut.
 */
const WRITE_BROKEN = 8192;
/** A Unix stream (else TCP). */
const UNIX = 16384;
/**
 * The stream's ops in flight count in `bits` from this bit up (one field less per stream: 8 B per
 * idle connection): `bits += IN_FLIGHT_ONE` per op submitted, `-=` at its final completion. A
 * plain stream has a handful at most (its receive, one write: later ones queue, a shutdown, a
 * close, a splice pump's poll); in-ring TLS writes, which need no queue, are held to
 * TLS_WRITES_IN_FLIGHT (see writeWaits). So `bits` stays far below 2^30 and a Smi: a field that
 * once held a larger number would turn every stream's `bits` into a boxed double.
 */
const IN_FLIGHT_SHIFT = 15;
const IN_FLIGHT_ONE = 1 << IN_FLIGHT_SHIFT;
/** In-ring TLS writes in flight at once on one stream; more wait in the write queue. */
const TLS_WRITES_IN_FLIGHT = 1024;
/** QueuedWrite's `data` for a close_notify (compared by identity). */
const CLOSE_NOTIFY: readonly Uint8Array[] = [];

/**
 * A connected TCP or Unix stream served by the ring.
 *
 * Memory: a server holds one of these per idle connection, so the object stays small: the chunk
 * queue's arrays are created only when chunks arrive with no reader waiting (a chunk for a waiting
 * recvTo() goes straight to it), and the first waiting reader sits in a field (more than one reader
 * at a time is rare; they go to an array created then); close, splice and extra-reader state
 * lives in a StreamRare made on first use.
 */
export class UringStream
  extends StreamForms
  implements CompletionTarget, BufferWaiter, BudgetWaiter, PoolReader
{
  /**
   * State bits (CLOSING, EOF, ...): one field for fourteen booleans and the count of ops in flight
   * (IN_FLIGHT_SHIFT). A server holds one stream per idle
   * connection, and on Node 20 (no pointer compression) every field is 8 bytes.
   */
  private bits = 0;
  /** @internal Bytes the kernel took of this stream's sends (each completion's count). */
  sent = 0;
  private local: SocketAddress | undefined;
  // Multishot recv state.
  private armedSlot = -1;
  /**
   * Received bytes this stream holds (queued, or lent to a reader and not released), counted in
   * the thread's BufferBudget.
   */
  private held = 0;
  /** Received chunks this stream holds (queued, or lent and not released): its tier in the budget. */
  private chunks = 0;
  /** Chunks waiting for a reader, made on first use (see ChunkQueue). */
  private queue: ChunkQueue | undefined = undefined;
  /** The first waiting reader; the ones after it (rare) wait in `rare.moreWaiters`, in order. */
  private waiter: Waiter | undefined = undefined;
  private rare: StreamRare | undefined = undefined;
  /**
   * The peer: its address (remoteAddress; a connected stream's from the start, the address it
   * connected to, an accepted one's on first ask), replaced by the plain facts built on it when
   * those are first read (their clientAddress is that same object). One field for both, and not
   * in `rare`: a server reads every connection's client address once, and a StreamRare per idle
   * connection cost ~90 B more than this field. A server that asks `remoteAddress` only (see
   * RuntimeStream.hasPlainFacts) holds no facts object: 64 B less per idle connection.
   *
   * An IP peer's address is kept as its text alone (interned: one string for every connection
   * from a client) with the port in `peerPort`, and `remoteAddress` builds the object when asked
   * (a server asks once a request): an idle connection holds no address object, 48 B, for the
   * 8 B of `peerPort` (issue 18). A Unix peer keeps its object.
   */
  private peer: SocketAddress | ConnectionFacts | string | undefined = undefined;
  /** The port of an IP peer kept as text in `peer`, plus IPV6_PEER for an IPv6 one. */
  private peerPort = 0;
  /**
   * In-ring TLS: its state (made by attachTls; its `conn` is the ring's conn id + 1, 0: plain).
   * A field of its own, not in `rare`: a TLS stream keeps its state for life, and a StreamRare
   * kept for it would cost an idle TLS connection ~150 B more than this field.
   */
  private tlsState: StreamTls | undefined = undefined;

  constructor(
    private readonly host: StreamHost,
    readonly fd: number,
    kind: 'tcp' | 'unix',
    remote?: SocketAddress,
    local?: SocketAddress,
    direct = false,
  ) {
    super();
    this.bits = (kind === 'unix' ? UNIX : 0) | (direct ? DIRECT : 0);
    if (remote !== undefined) this.keepPeer(remote);
    this.local = local;
    (direct ? host.ring.directStreams : host.ring.streams).add(this);
  }

  /**
   * `fd` is a slot of the ring's direct descriptor table (issue 18; native/README.md, "Direct
   * descriptors"): the stream was accepted direct. Such a stream has no descriptor: what needs
   * one either goes through `nativeAddress` (its addresses) or is refused (a splice pump:
   * EOPNOTSUPP, which zeroCopy answers with a copy; in-ring TLS: ENOTSUP, which @loch/tls answers
   * by feeding the session from JavaScript).
   */
  get direct(): boolean {
    return (this.bits & DIRECT) !== 0;
  }

  /** IOSQE_FIXED_FILE in the op word for a direct stream, else 0: ORed into every record it makes. */
  private get fdOps(): number {
    return this.bits & DIRECT;
  }

  /**
   * The one place this stream's socket is asked for an address (its peer's, or its own) that it
   * does not know yet: native address() on a descriptor; on a direct slot (the local address on a
   * wildcard listener, a Unix peer: what the accept did not bring) native directAddress, which
   * makes a real descriptor for a moment (IORING_OP_FIXED_FD_INSTALL, Linux 6.8) and closes it.
   */
  private nativeAddress(peer: boolean): NativeAddress | NativeFailure {
    return this.direct
      ? this.host.binding.directAddress(this.fd, peer)
      : this.host.binding.address(this.fd, peer);
  }

  /** True once close() started; in-flight ops then fail with ECANCELED. */
  get closing(): boolean {
    return (this.bits & CLOSING) !== 0;
  }

  get kind(): 'tcp' | 'unix' {
    return (this.bits & UNIX) !== 0 ? 'unix' : 'tcp';
  }

  /** Whether `host` (a driver's) opened this stream. */
  servedBy(host: StreamHost): boolean {
    return this.host === host;
  }

  // The packed booleans, read and written as fields were.
  private get cancelRequested(): boolean {
    return (this.bits & CANCEL_REQUESTED) !== 0;
  }
  private set cancelRequested(on: boolean) {
    this.bits = on ? this.bits | CANCEL_REQUESTED : this.bits & ~CANCEL_REQUESTED;
  }
  /** Writes (or a shutdown, a close_notify) wait in the write queue (rare.writes). */
  private get writesWaiting(): boolean {
    return (this.rare?.writes?.length ?? 0) > 0;
  }
  /** Ops of this stream in flight (their count is in `bits`, see IN_FLIGHT_SHIFT). */
  private get inFlight(): number {
    return this.bits >>> IN_FLIGHT_SHIFT;
  }
  private get received(): boolean {
    return (this.bits & RECEIVED) !== 0;
  }
  private get armLimited(): boolean {
    return (this.bits & ARM_LIMITED) !== 0;
  }
  private set armLimited(on: boolean) {
    this.bits = on ? this.bits | ARM_LIMITED : this.bits & ~ARM_LIMITED;
  }
  private get busyRecv(): boolean {
    return (this.bits & BUSY_RECV) !== 0;
  }
  private set busyRecv(on: boolean) {
    this.bits = on ? this.bits | BUSY_RECV : this.bits & ~BUSY_RECV;
  }
  private get eof(): boolean {
    return (this.bits & EOF) !== 0;
  }
  private get tlsHandshaking(): boolean {
    return (this.bits & TLS_HANDSHAKING) !== 0;
  }
  private set tlsHandshaking(on: boolean) {
    this.bits = on ? this.bits | TLS_HANDSHAKING : this.bits & ~TLS_HANDSHAKING;
  }
  private get failure(): RuntimeError | undefined {
    return (this.bits & FAILED) !== 0 ? this.rare!.failure : undefined;
  }
  private set failure(error: RuntimeError | undefined) {
    (this.rare ??= new StreamRare()).failure = error;
    this.bits = error !== undefined ? this.bits | FAILED : this.bits & ~FAILED;
  }
  /** Chunks are queued (waiting for a reader). */
  private get hasQueued(): boolean {
    const q = this.queue;
    return q !== undefined && q.head < q.tail;
  }
  /** In-ring TLS: the heap code of the buffer a base read armed into (armTlsHeap; 0: none). */
  private get tlsHeap(): number {
    return this.tlsState?.heap ?? 0;
  }
  /** In-ring TLS: the ring's conn id + 1 (0: plain), read by every op record. */
  private get tls(): number {
    return this.tlsState?.conn ?? 0;
  }
  /** The remote address if known yet (error messages): no syscall. */
  private get remote(): SocketAddress | undefined {
    const peer = this.peer;
    if (typeof peer === 'string') {
      const port = this.peerPort;
      return port >= IPV6_PEER
        ? { family: 'ipv6', address: peer, port: port - IPV6_PEER }
        : { family: 'ipv4', address: peer, port };
    }
    return peer !== undefined && 'clientAddress' in peer ? peer.clientAddress : peer;
  }

  /** Keeps `address` as the peer's (an IP one as its text and port: see `peer`); returns it. */
  private keepPeer(address: SocketAddress): SocketAddress {
    if (address.family === 'unix' || address === UNKNOWN_ADDRESS) this.peer = address;
    else {
      this.peer = internAddress(address.address);
      this.peerPort = address.family === 'ipv6' ? address.port + IPV6_PEER : address.port;
    }
    return address;
  }

  /** The ring serving this stream (the thread's). */
  get ring(): Ring {
    return this.host.ring;
  }

  /** Pipe pair for splice (O_NONBLOCK), created on first use by the driver, kept until close. */
  get pipe(): [number, number] | undefined {
    return this.rare?.pipe;
  }

  set pipe(pair: [number, number] | undefined) {
    (this.rare ??= new StreamRare()).pipe = pair;
  }

  get driver(): 'uring' {
    return 'uring';
  }

  get remoteAddress(): SocketAddress {
    const known = this.remote;
    if (known !== undefined) return known;
    // A direct stream's accept brought its peer's address (UringListener.wrap), except a Unix one's.
    return this.keepPeer(toSocketAddress(this.nativeAddress(true)));
  }

  /** Plain facts (no TLS, the peer is the client), made on first use (see `peer`). */
  get facts(): ConnectionFacts {
    const peer = this.peer;
    if (typeof peer === 'object' && 'clientAddress' in peer) return peer;
    return (this.peer = plainFacts(this.remoteAddress));
  }

  get localAddress(): SocketAddress {
    if (this.local === undefined) this.local = toSocketAddress(this.nativeAddress(false));
    return this.local;
  }

  get closed(): boolean {
    return this.closing;
  }

  /** The peer address for error messages, without failing when the socket is already gone. */
  addressForError(): SocketAddress | undefined {
    const known = this.remote;
    if (known !== undefined) return known;
    if (this.closing) return undefined;
    const a = this.nativeAddress(true);
    if (!('family' in a)) return undefined;
    return this.keepPeer(toSocketAddress(a));
  }

  setNoDelay(enabled: boolean): void {
    if (this.kind !== 'tcp' || this.closing || ((this.bits & NO_DELAY) !== 0) === enabled) return;
    const value = enabled ? 1 : 0;
    if (this.direct) {
      // A refusal (an older kernel) puts the bit back as the kernel has it.
      this.setOptionDirect(IPPROTO_TCP, TCP_NODELAY, value, () => {
        this.bits = enabled ? this.bits & ~NO_DELAY : this.bits | NO_DELAY;
      });
    } else this.host.binding.setSockOpt(this.fd, IPPROTO_TCP, TCP_NODELAY, value);
    this.bits = enabled ? this.bits | NO_DELAY : this.bits & ~NO_DELAY;
  }

  /**
   * SO_RCVLOWAT: a receive waiting on this TCP stream completes once `bytes` are queued (or at
   * end of stream or an error), not on every segment. The kernel holds back the wake-up only;
   * a receive submitted while fewer bytes are already queued still takes those. A call with the
   * value the stream already set makes no syscall (so a reader may call it per frame). False on
   * a Unix stream (the kernel wakes its readers on every write whatever the mark), a closing
   * one, and one a TLS session was attached to (in-ring TLS: the socket's bytes are ciphertext;
   * attachTls puts a mark set before back to 1). A direct stream's goes by an OP_SETSOCKOPT
   * record with the next flush, ahead of any receive submitted after this call, so its true means
   * "asked": a refusal (a kernel before 6.7 has no URING_CMD setsockopt) leaves the mark unknown
   * and makes the ring answer false for every direct stream after it (Ring.directSockoptRefused),
   * so a reader calling per frame does not pay a refused record each time.
   */
  override setRecvLowWater(bytes: number): boolean {
    if (!Number.isInteger(bytes) || bytes < 1 || bytes > 0x7fffffff)
      throw new RangeError(`setRecvLowWater: a whole number of bytes from 1, got ${bytes}`);
    // A TLS session (carried by the ring, or detached to JavaScript) reads ciphertext from this
    // socket: a mark counted in plaintext would hold back a record's last bytes.
    if (this.kind !== 'tcp' || this.closing || this.tlsState !== undefined) return false;
    if ((this.rare?.recvLowWater ?? 1) === bytes) return true;
    if (this.direct) {
      if (this.ring.directSockoptRefused) return false;
      this.setOptionDirect(SOL_SOCKET, SO_RCVLOWAT, bytes, () => {
        if (this.rare !== undefined) this.rare.recvLowWater = 0;
      });
    } else if (this.host.binding.setSockOpt(this.fd, SOL_SOCKET, SO_RCVLOWAT, bytes) !== 0) return false;
    (this.rare ??= new StreamRare()).recvLowWater = bytes;
    return true;
  }

  /**
   * setsockopt(level, optname, value) on a direct slot: a SETSOCKOPT record (URING_CMD, Linux
   * 6.7), sent with the next flush, so ahead of any op submitted after this call. The caller
   * records the value at once; `refused` runs if the kernel says no.
   */
  private setOptionDirect(level: number, optname: number, value: number, refused: () => void): void {
    const ring = this.ring;
    const target: CompletionTarget = {
      onCompletion: (res) => {
        if (res < 0) {
          if (res === -EOPNOTSUPP || res === -EINVAL) ring.directSockoptRefused = true;
          refused();
        }
      },
    };
    ring.push(OP_SETSOCKOPT | FIXED_FILE_OP, this.fd, ring.alloc(target), value, undefined, level, optname);
  }

  /**
   * @internal The listener set TCP_NODELAY on this accepted socket: a server's setNoDelay(true)
   * (every H1 connection makes one) then costs no addon call and no setsockopt.
   */
  markNoDelay(): void {
    this.bits |= NO_DELAY;
  }

  read<B extends Uint8Array>(buf: B, options?: IoOptions): Promise<IoResult<B>> {
    const signal = options?.signal;
    if (this.hasQueued) return Promise.resolve([this.copyOut(buf), buf]);
    if (this.failure !== undefined) return Promise.reject(this.withBuffer(this.failure, buf));
    if (this.eof) return Promise.resolve([0, buf]);
    if (this.closing) return Promise.reject(cancelledError('read', this.remote, buf));
    if (signal?.aborted) return Promise.reject(cancelledError('read', this.remote, buf));
    if (buf.length === 0) return Promise.resolve([0, buf]);
    // Multishot armed (always on a TLS stream: plaintext comes only through it), or readers
    // already waiting (on the multishot, the budget, or a read's own recv): wait in the reader
    // queue behind them and copy from the chunks the multishot brings, so bytes go in call order.
    if (this.armedSlot >= 0 || this.tls !== 0 || this.waiter !== undefined || (this.bits & READING) !== 0)
      return this.waitRecv(buf, signal) as Promise<IoResult<B>>;
    // Nobody else reads: one recv straight into `buf` (no pooled buffer, no copy). Until it
    // completes, arm() holds back, so a recvTo() or read() called meanwhile queues behind it and
    // cannot take the bytes it waits for (readOnceDone arms for them).
    this.bits |= READING;
    return new Promise<IoResult<B>>((resolve, reject) => {
      const op = new StreamOp(this, 'read', buf, AS_READ, resolve, reject, signal, undefined);
      this.submit(op, OP_RECV, buf.length, buf, 0);
    });
  }

  /**
   * A read(buf)'s own recv completed (settled): the readers that queued behind it get the end
   * or the failure the stream saw, or the multishot recv is armed for them now.
   */
  readOnceDone(): void {
    this.bits &= ~READING;
    if (this.closing || this.waiter === undefined) return;
    this.feedWaiters();
    if (this.waiter !== undefined) this.arm();
  }

  recvTo(target: RecvTarget): void {
    if (this.hasQueued) deliverRecv(target, this.takeChunk(), undefined);
    else if (this.failure !== undefined) deliverRecv(target, null, this.failure);
    else if (this.eof) deliverRecv(target, null, undefined);
    else if (this.closing) deliverRecv(target, null, cancelledError('recv', this.remote));
    else {
      // The target itself waits in the reader queue: nothing is allocated for the wait.
      this.pushWaiter(target);
      this.arm();
      if (this.tls !== 0) this.host.ring.kick();
    }
  }

  protected override takeReady(): RecvChunk | undefined {
    return this.waiter === undefined && this.hasQueued ? this.takeChunk() : undefined;
  }

  protected withdrawRecv(target: RecvTarget): boolean {
    return this.removeWaiter(target);
  }

  /**
   * Writes all of `data` with one op: a short send (or more than MAX_IOV buffers) resubmits the
   * rest from the same op, in a new slot. An abort cancels the send in flight (ASYNC_CANCEL);
   * the buffers stay lent until its completion.
   *
   * One write at a time on the socket: a write started while another is in flight waits in the
   * stream's write queue, in call order, and goes to the ring when the one before it settled
   * (writeSettled). Sent at once instead, its send could take the socket between a short send of
   * the write before and that one's rest, and the peer would read the two interleaved. The
   * common case (nothing in flight, not closing) costs one bit test here.
   */
  protected sendTo(
    data: Uint8Array | readonly Uint8Array[],
    target: WriteTarget,
    signal: AbortSignal | undefined,
  ): void {
    if ((this.bits & (CLOSING | WRITING | WRITE_BROKEN)) !== 0 && this.writeWaits(data, target, signal))
      return;
    this.startWrite(data, target, signal);
  }

  /**
   * sendTo() on a closing stream or one with a write in flight: true when the write was settled
   * (closing: ECANCELED) or queued; false when it may go to the ring now. In-ring TLS needs no
   * queue: the ring encrypts each write whole when it takes it and sends the records in that
   * order, and tells the write done only once all of them went out (no short send shows here);
   * only past TLS_WRITES_IN_FLIGHT do its writes queue (then behind the queued ones, in order).
   */
  private writeWaits(
    data: Uint8Array | readonly Uint8Array[],
    target: WriteTarget,
    signal: AbortSignal | undefined,
  ): boolean {
    if (this.closing) {
      const single = isOneBuffer(data);
      const error = cancelledError(single ? 'write' : 'writev', this.remote, single ? data : undefined);
      queueMicrotask(() => target.onWritten(error));
      return true;
    }
    if ((this.bits & WRITE_BROKEN) !== 0) {
      const single = isOneBuffer(data);
      const error = brokenWriteError(single ? 'write' : 'writev', this.remote, single ? data : undefined);
      queueMicrotask(() => target.onWritten(error));
      return true;
    }
    if (this.tls !== 0 && this.inFlight < TLS_WRITES_IN_FLIGHT && !this.writesWaiting) return false;
    this.queueWrite(new QueuedWrite(data, target, signal));
    return true;
  }

  /** Queues `w` behind the write in flight; an abort takes it out of the queue (ECANCELED). */
  private queueWrite(w: QueuedWrite): void {
    const writes = ((this.rare ??= new StreamRare()).writes ??= []);
    writes.push(w);
    const signal = w.signal;
    if (signal === undefined) return;
    w.onAbort = () => {
      const i = writes.indexOf(w);
      if (i < 0) return;
      writes.splice(i, 1);
      const data = w.data!;
      const single = isOneBuffer(data);
      deliverWritten(
        w.target,
        cancelledError(single ? 'write' : 'writev', this.remote, single ? data : undefined),
      );
    };
    signal.addEventListener('abort', w.onAbort, { once: true });
  }

  /** Submits a write (see sendTo); the stream is WRITING until it settles. */
  private startWrite(
    data: Uint8Array | readonly Uint8Array[],
    target: WriteTarget,
    signal: AbortSignal | undefined,
  ): void {
    if (isOneBuffer(data)) {
      const op = writeOp(this, 'write', data, AS_WRITE_ALL, signal, target);
      this.bits |= WRITING;
      // On a TLS stream (tls > 0) the ring encrypts the bytes and sends the records itself.
      this.submit(op, OP_SEND, data.length, data, 0, this.tls);
      return;
    }
    let total = 0;
    for (let i = 0; i < data.length; i++) total += data[i]!.length;
    if (total === 0) {
      queueMicrotask(() => target.onWritten(undefined));
      return;
    }
    const op = writeOp(this, 'writev', undefined, AS_WRITEV_ALL, signal, target);
    op.bufs = data;
    op.total = total;
    this.bits |= WRITING;
    this.submitv(op, data, Math.min(data.length, MAX_IOV));
    if (signal !== undefined) this.watchAbort(op, signal);
  }

  /**
   * @internal The write in flight settled (StreamOp.settled): the queued writes go to the ring
   * in call order, up to the next one that is a write op (a shutdown or an empty write does
   * not wait). Not while closing: close() settled the queued ones.
   */
  writeSettled(cut: boolean): void {
    this.bits &= ~WRITING;
    if (cut) this.bits |= WRITE_BROKEN;
    const writes = this.rare?.writes;
    if (writes === undefined || this.closing) return;
    if (cut) {
      this.failQueuedWrites(writes, brokenWriteError);
      return;
    }
    while (writes.length > 0 && (this.bits & WRITING) === 0) {
      const w = writes.shift()!;
      if (w.onAbort !== undefined) w.signal?.removeEventListener('abort', w.onAbort);
      if (w.data === undefined) this.startShutdown(w.target);
      else if (w.data === CLOSE_NOTIFY) this.startCloseNotify(w.target);
      else this.startWrite(w.data, w.target, w.signal);
    }
  }

  /**
   * Half-closes after the writes started before it (queued behind the write in flight, as
   * node:net's end() does on the legacy driver), so a short send's rest is never cut off.
   */
  shutdown(): Promise<void> {
    if (this.closing) return Promise.reject(cancelledError('shutdown', this.remote));
    return new Promise<void>((resolve, reject) => {
      const target = new PromiseWrite(resolve as (value: unknown) => void, reject, undefined);
      if ((this.bits & WRITING) !== 0 && (this.tls === 0 || this.writesWaiting))
        this.queueWrite(new QueuedWrite(undefined, target, undefined));
      else this.startShutdown(target);
    });
  }

  /** Submits shutdown(SHUT_WR); `target` hears the outcome (ENOTCONN counts as done). */
  private startShutdown(target: WriteTarget): void {
    const op = new StreamOp(this, 'shutdown', undefined, AS_VOID, noop, noop, undefined, target);
    this.submit(op, OP_SHUTDOWN, 0, undefined, 1 /* SHUT_WR */);
  }

  close(): Promise<void> {
    const rare = (this.rare ??= new StreamRare());
    if (rare.closePromise !== undefined) return rare.closePromise;
    this.bits |= CLOSING;
    rare.closePromise = new Promise<void>((resolve) => {
      rare.finishClose = resolve;
    });
    // Readers waiting on the multishot recv fail now; queued chunks go back to the pool.
    for (let w = this.shiftWaiter(); w !== undefined; w = this.shiftWaiter()) {
      if (isRecvWaiter(w)) this.settleWaiterError(w, cancelledError('read', this.remote, w.buf));
      else deliverRecv(w, null, cancelledError('recv', this.remote));
    }
    this.dropChunks();
    if (rare.writes !== undefined) this.failQueuedWrites(rare.writes, cancelledError);
    if (this.inFlight === 0 && this.armedSlot < 0) this.issueClose();
    else if (this.inFlight === 1 && this.armedSlot >= 0 && this.tls === 0 && rare.pipe === undefined)
      this.closeWithReceive(rare);
    else this.ring.cancelFd(this.fd, this.fdOps);
    return rare.closePromise;
  }

  /**
   * The writes (and shutdowns) still queued fail, their buffers back: with ECANCELED at close(),
   * with EPIPE behind a write cut mid-way (WRITE_BROKEN).
   */
  private failQueuedWrites(
    writes: QueuedWrite[],
    failure: (syscall: string, address: SocketAddress | undefined, buffer?: Uint8Array) => RuntimeError,
  ): void {
    for (let w = writes.shift(); w !== undefined; w = writes.shift()) {
      if (w.onAbort !== undefined) w.signal?.removeEventListener('abort', w.onAbort);
      const data = w.data;
      const single = data !== undefined && isOneBuffer(data);
      const syscall = data === undefined ? 'shutdown' : single || data === CLOSE_NOTIFY ? 'write' : 'writev';
      deliverWritten(w.target, failure(syscall, this.remote, single ? data : undefined));
    }
  }

  /**
   * In-ring TLS (for @loch/tls): the ring carries `session` on this stream from now on: received
   * ciphertext is decrypted in the completion drain (readers get plaintext), writes are encrypted
   * and sent by the ring, handshake flights and alerts go out without JavaScript, and `events`
   * hears of state changes. Reading starts at once (the handshake needs it). 0, or -errno:
   * -ENOTSUP when the ring has no plaintext pool, -EBUSY when the stream was read from or already
   * carries a session (feed it from JavaScript then), -EPROTO when the session failed to start.
   */
  attachTls(session: NativeTlsSession, events: RingTlsEvents): number {
    if (!this.host.ring.tlsCapable) return -ENOTSUP;
    if (
      this.closing ||
      this.tls !== 0 ||
      this.armedSlot >= 0 ||
      (this.bits & READING) !== 0 ||
      this.hasQueued ||
      this.eof ||
      this.failure !== undefined ||
      this.rare?.pumps
    )
      return -EBUSY;
    // In-ring TLS is keyed by descriptor (a slot is another number space): a direct stream's
    // session is fed from JavaScript (@loch/tls does that on any refusal).
    if (this.direct) return -ENOTSUP;
    // A receive low-water mark counts plaintext; on the ciphertext socket it could hold back a
    // record's last bytes (setRecvLowWater refuses from here on).
    if ((this.rare?.recvLowWater ?? 1) !== 1) this.setRecvLowWater(1);
    const id = this.host.binding.tlsAttach(this.fd, session);
    if (id < 0) return id;
    let state = this.tlsState;
    if (state === undefined) this.tlsState = state = new StreamTls(events);
    else state.events = events;
    state.conn = id + 1;
    state.counts = tlsSentPage(this.host.binding, this.host.ring, id);
    this.tlsHandshaking = true;
    this.arm();
    return 0;
  }

  /** In-ring TLS: the handshake is done; reading goes on only while readers ask. */
  tlsHandshakeDone(): void {
    this.tlsHandshaking = false;
  }

  /**
   * In-ring TLS: the stream is plain again from JavaScript's side (a plain-HTTP request handed
   * over): the ring passes its bytes through raw once the session failed, and writes go out as they are.
   */
  tlsDetach(): void {
    this.sent = this.sentBytes; // the ring's count stays in: progress never goes back
    const state = this.tlsState;
    if (state !== undefined) {
      state.sent = 0;
      state.events = undefined;
      state.conn = 0;
      state.counts = undefined;
    }
    this.tlsHandshaking = false;
  }

  /** In-ring TLS: sends close_notify after every write queued before it; `target` hears when it went out. */
  tlsCloseNotify(target: WriteTarget): void {
    if (this.closing || this.tls === 0) {
      queueMicrotask(() => target.onWritten(undefined));
      return;
    }
    // Writes waiting past TLS_WRITES_IN_FLIGHT go to the ring before it: it waits behind them.
    if (this.writesWaiting) this.queueWrite(new QueuedWrite(CLOSE_NOTIFY, target, undefined));
    else this.startCloseNotify(target);
  }

  /** Submits the in-ring TLS close_notify (the ring sends it after the writes submitted before). */
  private startCloseNotify(target: WriteTarget): void {
    const op = new StreamOp(this, 'write', undefined, AS_VOID, noop, noop, undefined, target);
    this.submit(op, OP_TLS_CLOSE_NOTIFY, 0, undefined, 0, this.tls);
  }

  /**
   * Makes this stream's reading quiet for a splice (the "one reader" rule): cancels an armed
   * multishot recv and resolves once its final completion arrived, so every byte it took is in
   * the chunk queue (takeQueued()) and the kernel's socket buffer holds the rest.
   */
  stopReading(): Promise<void> {
    if (this.armedSlot < 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      (this.rare ??= new StreamRare()).onDisarmed = resolve;
      if (!this.cancelRequested) {
        this.cancelRequested = true;
        this.ring.cancel(this.armedSlot);
      }
    });
  }

  /** The next queued received chunk (bytes a recv() took before a splice), or undefined. */
  takeQueued(): RecvChunk | undefined {
    return this.hasQueued ? this.takeChunk() : undefined;
  }

  /** True once end of stream was seen by a recv (nothing more to splice). */
  get readEnded(): boolean {
    return this.eof;
  }

  /** The receive failure a recv saw, if any. */
  get readFailure(): RuntimeError | undefined {
    return this.failure;
  }

  /** An op of another kind (a splice pump's poll) on this socket started: close() waits for it. */
  opStarted(): void {
    this.bits += IN_FLIGHT_ONE;
  }

  /** A splice pump starts using this socket: O_NONBLOCK while any pump does. */
  pumpStarted(): void {
    const rare = (this.rare ??= new StreamRare());
    if (rare.pumps++ === 0 && !this.closing) this.host.binding.setNonBlocking(this.fd, true);
  }

  /** A splice pump stopped using this socket. */
  pumpStopped(): void {
    const rare = (this.rare ??= new StreamRare());
    if (--rare.pumps === 0 && !this.closing) this.host.binding.setNonBlocking(this.fd, false);
  }

  /** Multishot recv completions. */
  onCompletion(res: number, flags: number, slot: number): void {
    if (this.tlsHeap !== 0 && res > 0 && (flags & (CQE_F_BUFFER | CQE_F_TLS_EVENT)) === 0) {
      // A TLS heap recv's raw bytes (not TLS: plain HTTP) are in its buffer: a heap chunk.
      const state = this.tlsState!;
      this.rare!.heapCode = state.heap;
      state.heap = 0;
      flags |= CQE_F_BUFFER | CQE_F_HEAP;
    }
    const more = (flags & CQE_F_MORE) !== 0;
    const received = res > 0 && (flags & CQE_F_BUFFER) !== 0;
    if (received) {
      this.chargeReceived(res, (flags & (CQE_F_PLAIN | CQE_F_HEAP)) === 0);
      // Under pool pressure, a plain stream growing past its base stops its multishot (it re-arms
      // within the budgets, one buffer per recv).
      const ring = this.ring;
      if (
        more &&
        this.tls === 0 &&
        this.chunks > BASE_CHUNKS &&
        !this.cancelRequested &&
        ring.buffersOut >= ring.busyBuffers
      ) {
        this.cancelRequested = true;
        ring.cancel(slot);
      }
    }
    if (!more) {
      const state = this.tlsState;
      if (state !== undefined && state.promise > 0) {
        this.ring.budget.promised -= state.promise;
        state.promise = 0;
        this.ring.budget.notify();
      }
      if (res === -EINVAL && this.armLimited && !this.closing) {
        // The kernel has no byte limit on multishot recv (before Linux 6.17): from now on every
        // plain recv is one recv of at most the allowance (OP_RECV_SELECT), so the budgets hold.
        this.ring.recvLimit = false;
        res = -ECANCELED;
      }
      this.armLimited = false;
      if (state !== undefined && state.heap !== 0) {
        // The TLS heap recv ended and its buffer was not lent as a chunk: the ring is done with it
        // (it fed the ciphertext to the session before this final completion).
        this.dropHeap(state.heap);
        state.heap = 0;
      }
      this.bits &= ~MULTISHOT;
      if (this.busyRecv) {
        this.busyRecv = false;
        this.ring.busyRecvs--;
      }
      this.armedSlot = -1;
      this.cancelRequested = false;
      this.opFinished();
      const disarmed = this.rare?.onDisarmed;
      if (disarmed !== undefined) {
        this.rare!.onDisarmed = undefined;
        queueMicrotask(disarmed);
      }
    }
    if ((flags & CQE_F_TLS_EVENT) !== 0) {
      this.onTlsEvent(res);
      return;
    }
    if (received) {
      const ring = this.host.ring;
      let code = flags >>> CQE_BUFFER_SHIFT;
      if ((flags & CQE_F_HEAP) !== 0) code = this.rare!.heapCode;
      else if ((flags & CQE_F_PLAIN) !== 0) {
        // Plaintext the ring decrypted from this TLS stream's ciphertext.
        ring.lendPlain();
        code = -code - 1;
      }
      const w = this.waiter;
      if (this.closing) {
        this.giveBackChunk(code, res);
      } else if (w !== undefined && !this.hasQueued) {
        if (isRecvWaiter(w)) {
          // A read(buf) waits: queue the chunk and copy from it.
          this.enqueueChunk(code, res, more, slot);
        } else {
          // A recvTo() is waiting and nothing is queued: hand the chunk over without queueing it.
          this.shiftWaiter();
          deliverRecv(w, new PooledChunk(this.viewOf(code, 0, res), this, code, res), undefined);
        }
      } else {
        this.enqueueChunk(code, res, more, slot);
      }
    } else if (res === 0) {
      this.bits |= EOF;
      if (this.tlsHandshaking) this.tlsState?.events?.onTlsTransportEnd(undefined);
      this.feedWaiters();
    } else if (res < 0 && res !== -ECANCELED) {
      if (res === -ENOBUFS && !this.closing) {
        // The kernel's ring is empty. A stream within its base chunk reads into a heap buffer of
        // its own (it never waits behind others' buffers); others retry when a buffer comes back.
        // The ring tops itself up first (and raises its warm cap if that, not the budget, ran out).
        this.ring.ranDry();
        if (this.chunks <= BASE_CHUNKS && (this.waiter !== undefined || this.tlsHandshaking)) this.arm(true);
        else if (this.waiter !== undefined || this.tlsHandshaking) this.ring.waitForBuffers(this);
      } else if (!this.closing) {
        this.failure = RuntimeError.fromErrno(res, 'recv', this.addressForError());
        if (this.tlsHandshaking) this.tlsState?.events?.onTlsTransportEnd(this.failure);
        this.feedWaiters();
      }
    }
    if (!more && !this.closing && (this.waiter !== undefined || this.tlsHandshaking) && res !== -ENOBUFS)
      this.arm();
  }

  /** A TLS state change the ring reported: the owner decides; readers see the end or the failure. */
  private onTlsEvent(flags: number): void {
    const events = this.tlsState?.events;
    if (events === undefined || this.closing) return;
    const error = events.onTlsEvent(flags);
    if ((flags & TLS_PEER_CLOSED) !== 0) this.bits |= EOF;
    if (error !== undefined) this.failure ??= error;
    if ((flags & TLS_PEER_CLOSED) !== 0 || error !== undefined) this.feedWaiters();
  }

  /** @internal A HeapRecv completed: its chunk goes the way of a pooled one, as a final completion. */
  onHeapCompletion(recv: HeapRecv, res: number, flags: number, slot: number): void {
    if (recv.buf === undefined) {
      // The poll: readable (or hung up, or failed: the recv tells which), so the buffer is made
      // now; unless the recv was cancelled meanwhile, which then ends as a cancelled one.
      if (res >= 0 && !this.closing && !this.cancelRequested) {
        this.recvIntoHeap(recv);
        return;
      }
      this.onCompletion(res >= 0 ? -ECANCELED : res, 0, slot);
      return;
    }
    if (res > 0) {
      const rare = this.rare!;
      rare.heapLarge = res === recv.want;
      // Bulk only while bytes are still waiting in the socket after this read (the kernel's
      // SOCK_NONEMPTY): a read that filled 16 KiB and emptied the socket may be a burst's last,
      // and a direct recv then would hold 16 KiB for as long as the peer stays quiet.
      rare.heapBulk = rare.heapLarge && recv.want === HEAP_RECV_BYTES && (flags & CQE_F_SOCK_NONEMPTY) !== 0;
      rare.heapCode = recv.code;
      this.onCompletion(res, CQE_F_BUFFER | CQE_F_HEAP, slot);
    } else {
      this.dropHeap(recv.code);
      this.onCompletion(res, 0, slot);
    }
  }

  /** The bytes of a queued chunk by its code (see PooledChunk). */
  private viewOf(code: number, offset: number, len: number): Uint8Array {
    const ring = this.host.ring;
    if (code <= HEAP_BASE) {
      const buf = this.rare!.heap!.get(code)!;
      return new Uint8Array(buf.buffer, buf.byteOffset + offset, len);
    }
    return code >= 0
      ? new Uint8Array(ring.poolBuffer, code * ring.bufferSize + offset, len)
      : new Uint8Array(ring.plainBuffer, (-code - 1) * ring.plainSize + offset, len);
  }

  /** Queues a received chunk, feeds waiting readers, and stops the multishot at the high water mark. */
  private enqueueChunk(bid: number, len: number, more: boolean, slot: number): void {
    const q = (this.queue ??= new ChunkQueue());
    q.bid[q.tail] = bid;
    q.len[q.tail++] = len;
    this.feedWaiters();
    if (
      more &&
      this.waiter === undefined &&
      (this.queued() >= RECV_HIGH_WATER || this.held >= this.ring.budget.streamCap) &&
      !this.cancelRequested
    ) {
      this.cancelRequested = true;
      this.host.ring.cancel(slot);
    }
  }

  /** Called by the ring when the pool came under pressure: a stream holding bytes stops its multishot. */
  onPoolPressure(): void {
    if ((this.bits & MULTISHOT) !== 0 && this.chunks > 0 && this.armedSlot >= 0 && !this.cancelRequested) {
      this.cancelRequested = true;
      this.ring.cancel(this.armedSlot);
    }
  }

  /** Called by the ring when a provided buffer was returned after we got ENOBUFS. */
  onBuffersAvailable(): void {
    if (!this.closing && (this.waiter !== undefined || this.tlsHandshaking)) this.arm();
  }

  /** Called by the thread's budget when bytes were given back after this stream had to wait. */
  onBudgetAvailable(): void {
    if (!this.closing && (this.waiter !== undefined || this.tlsHandshaking)) this.arm();
  }

  /**
   * Write progress (ByteStream.sentBytes): the bytes each send completion reported (a short
   * send's part included), plus, in-ring TLS, the ciphertext the ring sent so far (a write's
   * records go out over several sends, which only the ring sees: it keeps the count in memory
   * read here, no crossing: tls-sent.ts).
   */
  get sentBytes(): number {
    const state = this.tlsState;
    if (state === undefined) return this.sent;
    if (state.counts !== undefined && !this.closing) state.sent = state.counts[tlsSentIndex(state.conn - 1)]!;
    return this.sent + state.sent;
  }

  /** Received bytes this stream holds now (queued, or lent and not released). */
  get heldBytes(): number {
    return this.held;
  }

  /** Counts a received chunk of `n` bytes as held (`pooled`: it took a provided buffer). */
  private chargeReceived(n: number, pooled: boolean): void {
    const ring = this.ring;
    this.chunks++;
    this.bits |= RECEIVED;
    const state = this.tlsState;
    if (state !== undefined && state.promise > 0) {
      const p = Math.min(n, state.promise);
      state.promise -= p;
      ring.budget.promised -= p;
    }
    ring.budget.charge(n, (this.held += n));
    // The kernel's ring lost a buffer: stops growth at half the pool, tops the ring up.
    if (pooled) ring.tookBuffer();
  }

  /** @internal Gives a received chunk's buffer back and its `charge` bytes back to the budget. */
  giveBackChunk(code: number, charge: number): void {
    const ring = this.ring;
    const budget = ring.budget;
    this.held -= charge;
    this.chunks--;
    // Bytes first, so the buffer goes back to the kernel if the share allows, then waiters.
    budget.uncharge(charge);
    if (code >= 0) ring.provide(code, this.tls !== 0);
    else {
      if (code <= HEAP_BASE) this.dropHeap(code);
      else ring.releasePlain(-code - 1);
      ring.publish();
    }
    budget.notify();
  }

  /** A plain read saw end of stream. */
  markEnd(): void {
    this.bits |= EOF;
  }

  /** Bookkeeping when an op of this stream reached its final completion. */
  opFinished(): void {
    this.bits -= IN_FLIGHT_ONE;
    if (this.closing && this.inFlight === 0 && this.rare?.finishClose !== undefined) {
      if (this.rare.closeSent) this.finishLinkedClose();
      else this.issueClose();
    }
  }

  /**
   * close() of a plain stream whose only op is its armed receive (a parked connection, one cut
   * by a deadline): the cancel and the close go in one submission, the close hardlinked after
   * the cancel, where closing after the receive's completion took a turn more (two on io_uring
   * against legacy's one; 10,000 slowloris connections cut within a second pay it each). What
   * the stream holds is let go as issueClose does, once both the close and the receive completed.
   */
  private closeWithReceive(rare: StreamRare): void {
    rare.closeSent = true;
    const target: CompletionTarget = {
      onCompletion: () => {
        if (this.direct) this.ring.directSlotFreed();
        rare.closeDone = true;
        this.finishLinkedClose();
      },
    };
    this.ring.cancelFdAndClose(this.fd, this.ring.alloc(target), this.fdOps);
  }

  /**
   * Out of the ring's registry (its close is under way). A direct stream's slot stays counted
   * until its close direct completes (Ring.directSlotFreed, from the close's completion).
   */
  private leaveRegistry(): void {
    if (this.direct) this.ring.directStreams.delete(this);
    else this.ring.streams.delete(this);
  }

  /** The end of closeWithReceive's close: once the close and the last op completed. */
  private finishLinkedClose(): void {
    const rare = this.rare!;
    const done = rare.finishClose;
    if (done === undefined || !rare.closeDone || this.inFlight > 0) return;
    rare.finishClose = undefined;
    this.leaveRegistry();
    this.ring.budget.forget(this);
    done();
  }

  private issueClose(): void {
    const rare = this.rare;
    const done = rare?.finishClose;
    if (rare === undefined || done === undefined) return;
    rare.finishClose = undefined;
    this.leaveRegistry();
    this.ring.budget.forget(this);
    if (rare.pipe !== undefined) {
      this.host.binding.closeFd(rare.pipe[0]);
      this.host.binding.closeFd(rare.pipe[1]);
      rare.pipe = undefined;
    }
    const target: CompletionTarget = {
      onCompletion: () => {
        if (this.direct) this.ring.directSlotFreed();
        done();
      },
    };
    this.ring.push(OP_CLOSE | this.fdOps, this.fd, this.ring.alloc(target), 0, undefined, 0);
  }

  private submit(
    op: StreamOp,
    opcode: number,
    len: number,
    buf: Uint8Array | undefined,
    aux: number,
    aux2 = 0,
  ): void {
    const ring = this.host.ring;
    const slot = ring.alloc(op, TARGET_STREAM_OP);
    op.slot = slot;
    this.bits += IN_FLIGHT_ONE;
    ring.push(opcode | this.fdOps, this.fd, slot, len, buf, aux, aux2);
    const signal = op.signal;
    if (signal !== undefined) this.watchAbort(op, signal);
  }

  /** Cancels `op` (whichever slot it is in then) when `signal` aborts; the op removes the listener. */
  private watchAbort(op: StreamOp, signal: AbortSignal): void {
    op.onAbort = () => this.host.ring.cancel(op.slot);
    signal.addEventListener('abort', op.onAbort, { once: true });
  }

  /** Queues the next part of an op that continues (writeAll after a short send) in a new slot. */
  resubmit(op: StreamOp, opcode: number, buf: Uint8Array): void {
    const ring = this.host.ring;
    const slot = ring.alloc(op, TARGET_STREAM_OP);
    op.slot = slot;
    this.bits += IN_FLIGHT_ONE;
    ring.push(opcode | this.fdOps, this.fd, slot, buf.length, buf, 0, this.tls);
  }

  /**
   * Queues the rest of a writev after a short send of `sent` bytes (or after its first MAX_IOV
   * buffers went out): the op keeps what is left of its buffers, the partial one as a view.
   */
  resubmitv(op: StreamOp, sent: number): void {
    const bufs = op.bufs!;
    let skip = sent;
    let i = 0;
    while (i < bufs.length && skip >= bufs[i]!.length) skip -= bufs[i++]!.length;
    const rest = bufs.slice(i);
    if (skip > 0 && rest.length > 0) rest[0] = rest[0]!.subarray(skip);
    op.bufs = rest;
    this.submitv(op, rest, Math.min(rest.length, MAX_IOV));
  }

  /** Queues a sendmsg of the first `count` of `bufs` for `op`. */
  private submitv(op: StreamOp, bufs: readonly Uint8Array[], count: number): void {
    const ring = this.host.ring;
    const slot = ring.alloc(op, TARGET_STREAM_OP);
    op.slot = slot;
    this.bits += IN_FLIGHT_ONE;
    const first = ring.pushBuffers(slot, bufs, 0, count);
    ring.record(OP_WRITEV | this.fdOps, this.fd, slot, 0, first, count, this.tls);
  }

  /**
   * Starts receiving within the buffer budgets (internal/buffer-budget.ts). The stream's own cap
   * is the kernel's byte limit of a multishot recv (sqe optlen: the kernel ends the multishot once
   * that many bytes arrived; its last recv may fill a whole buffer, so the limit is the room less
   * one buffer), so a flood cannot pass it whatever the reader does. The thread's share needs no
   * promise: the kernel can fill only the buffers in its ring, and Ring.publish keeps held bytes
   * plus those within the share. So a keep-alive stream's multishot stays armed across messages
   * (until its limit's worth of bytes went by) and an idle one reserves nothing.
   *
   * Tiers: a stream within its base chunk (holding at most the one chunk a reader keeps) always
   * reads, into a heap buffer of its own when the ring is nearly out (`heap`: the kernel said
   * ENOBUFS). A stream growing past it needs room in the share and in the pool: past half the
   * pool it gets one buffer per recv (OP_RECV_SELECT), and it waits (TCP backpressure) while the
   * ring is empty or 3/4 of the pool is out, since a peer trickling small pieces pins a whole
   * buffer per piece.
   *
   * In-ring TLS: a recv's ciphertext is decrypted into plaintext chunks charged like any others,
   * and plaintext is never longer than its ciphertext, so the recv may take the stream's allowance
   * less what the session may already hold (TLS_HELD_SLACK); the handshake's recv too, since it
   * goes on after the handshake. The kernel's ring does not bound TLS streams together (the ring
   * gives their buffers back at once): the plaintext buffers do, which Ring.releasePlain keeps
   * within the thread's cap less what is held; and a stream past its base (its reader keeps
   * chunks, so it is not an idle keep-alive one) promises its allowance in the share until its
   * recv ends, so such streams arming together cannot pass the share. A handshake or a TLS stream
   * within its base reads into a heap buffer of its own when the kernel's ring is empty
   * (armTlsHeap), as a plain one does: held bytes past the cap may never come down.
   */
  private arm(heap = false): void {
    if (this.armedSlot >= 0 || this.closing || this.eof || this.failure !== undefined) return;
    // A read(buf)'s own recv is in flight: the readers behind it wait for it (readOnceDone).
    if ((this.bits & READING) !== 0) return;
    const ring = this.ring;
    let op = OP_RECV_MULTI;
    let len = 0;
    if (this.tls === 0) {
      const budget = ring.budget;
      const base = this.chunks <= BASE_CHUNKS;
      const allowance = budget.allowance(this.held, this.chunks);
      if (allowance === 0) {
        budget.wait(this);
        return;
      }
      if (base) {
        if (heap || ring.buffersOpen <= ring.freshFloor || ring.buffersOut >= ring.freshBuffers) {
          // The ring is nearly out: streams with blocked readers keep buffers, or the share is
          // held. A base read goes to a heap buffer of its own rather than wait behind them (idle
          // keep-alive streams holding their last chunk may be what holds them).
          this.armHeap(Math.min(allowance, HEAP_RECV_BYTES));
          return;
        }
      } else if (ring.buffersOpen === 0 || ring.buffersOut + ring.busyRecvs >= ring.busyBuffers) {
        // Growth waits while the kernel's ring is empty (the share is held) or 3/4 of the pool is
        // out; not at the base reads' floor, which a small share can reach with one stream's
        // own chunks (it would wait for itself).
        budget.wait(this);
        return;
      }
      const bufferSize = ring.bufferSize;
      // One buffer per recv for a growing stream past half the pool, and for any stream holding
      // bytes under pressure; a multishot otherwise.
      const out = ring.buffersOut;
      if (
        ring.recvLimit &&
        allowance >= bufferSize &&
        (base ? this.chunks === 0 || out < ring.busyBuffers : out < ring.bufferCount >> 1)
      ) {
        // A stream's first read ends after one buffer (a limit of 1 byte): a layer that reads a
        // connection's start (a PROXY header) may hand the socket to in-ring TLS next, which
        // takes it only with no plain recv armed (attachTls). Once per connection, so a
        // keep-alive connection's later reads keep one multishot across requests.
        len = this.received ? allowance - bufferSize + 1 : 1;
      } else {
        op = OP_RECV_SELECT;
        len = Math.min(allowance, bufferSize);
        if (!base) {
          this.busyRecv = true;
          ring.busyRecvs++;
        }
      }
    } else {
      const budget = ring.budget;
      const allowance = budget.allowance(this.held, this.chunks);
      const room = allowance - TLS_HELD_SLACK;
      if (room < budget.minRead) {
        budget.wait(this);
        return;
      }
      if (this.chunks <= BASE_CHUNKS && (heap || ring.buffersOpen === 0)) {
        // The kernel's ring is empty (readers elsewhere keep the share): as a plain stream's
        // base read, a handshake or a stream holding at most one chunk reads into a heap buffer
        // of its own, whose ciphertext the ring feeds to the session, rather than wait for held
        // bytes to come down (they may never).
        this.armTlsHeap(Math.min(room, HEAP_RECV_BYTES));
        return;
      }
      if (this.chunks > BASE_CHUNKS) {
        this.tlsState!.promise = allowance;
        budget.promised += allowance;
      }
      // The kernel's last recv of a limited multishot may fill a whole buffer past the limit.
      const bufferSize = ring.bufferSize;
      if (ring.recvLimit && room > bufferSize) len = room - bufferSize + 1;
      else {
        op = OP_RECV_SELECT;
        len = Math.min(room, bufferSize);
      }
    }
    this.armLimited = op === OP_RECV_MULTI && len > 0;
    if (op === OP_RECV_MULTI && this.tls === 0) this.bits |= MULTISHOT;
    this.armedSlot = ring.alloc(this, TARGET_STREAM);
    this.bits += IN_FLIGHT_ONE;
    ring.push(op | this.fdOps, this.fd, this.armedSlot, len, undefined, this.tls);
  }

  /** Arms one recv of at most `len` bytes into a heap buffer, taken once readable (see HeapRecv). */
  private armHeap(len: number): void {
    const rare = (this.rare ??= new StreamRare());
    const code = this.nextHeapCode(rare);
    const ring = this.ring;
    this.armLimited = false;
    const recv = new HeapRecv(this, len, code);
    this.bits += IN_FLIGHT_ONE;
    if (rare.heapBulk) {
      // The last heap read filled a 16 KiB buffer and left bytes in the socket: the recv goes at
      // once with its buffer (one submission, not a poll and then a recv) and finds them. Not
      // after a full read that emptied the socket: that may be a burst's last, and the recv
      // would hold 16 KiB for as long as the peer then stays quiet (an idle keep-alive
      // connection, a stalled upload), which a peer can choose for every connection.
      this.recvIntoHeap(recv);
      return;
    }
    this.armedSlot = ring.alloc(recv, TARGET_HEAP_RECV);
    ring.push(OP_POLL | this.fdOps, this.fd, this.armedSlot, 0, undefined, POLLIN);
  }

  /**
   * A new heap code, free in this stream's table: codes wrap after 2^27 heap receives, and a
   * chunk a reader still keeps must not share its code with a new one (its release would give the
   * new buffer back to the free list while the new chunk is lent).
   */
  private nextHeapCode(rare: StreamRare): number {
    const heap = rare.heap;
    let code: number;
    do code = HEAP_BASE - (rare.heapSeq = (rare.heapSeq + 1) & 0x7ffffff);
    while (heap?.has(code));
    return code;
  }

  /** A heap recv's poll said readable: its buffer and recv (the same op for inFlight). */
  private recvIntoHeap(recv: HeapRecv): void {
    // Made again if its last heap buffer went back while this recv waited on its poll.
    const rare = (this.rare ??= new StreamRare());
    const want = rare.heapLarge ? recv.len : Math.min(recv.len, SMALL_HEAP_RECV_BYTES);
    const ring = this.ring;
    const buf = ring.heapBuffers.take(want);
    recv.buf = buf;
    recv.want = want;
    (rare.heap ??= new Map()).set(recv.code, buf);
    this.armedSlot = ring.alloc(recv, TARGET_HEAP_RECV);
    ring.push(OP_RECV | this.fdOps, this.fd, this.armedSlot, want, buf, 0);
  }

  /**
   * Takes heap buffer `code` out of this stream's table and gives it back to the thread's free
   * list: called once nothing has it (its chunk released or dropped, or its recv ended with no
   * chunk), and only for a code still in the table, so a buffer goes back once per lending.
   */
  private dropHeap(code: number): void {
    const rare = this.rare;
    const heap = rare?.heap;
    const buf = heap?.get(code);
    if (buf === undefined) return;
    heap!.delete(code);
    this.ring.heapBuffers.give(buf);
    // A connection whose receive went to a heap buffer (the pool was out, as in a burst of new
    // connections) lets go of its rare part with its last heap buffer, unless something else in
    // it is in use: an idle one would otherwise keep ~140 B for nothing (issue 18).
    if (heap!.size === 0 && isSpare(rare!)) this.rare = undefined;
  }

  /** @internal Bytes of heap receive buffers this stream holds (armed or lent), for tests. */
  get heapRecvBytes(): number {
    let n = 0;
    for (const buf of this.rare?.heap?.values() ?? []) n += buf.length;
    return n;
  }

  /**
   * In-ring TLS: arms one recv of at most `len` bytes of ciphertext into a heap buffer from the
   * thread's free list (the ring decrypts from it as from a provided buffer). Plaintext comes as
   * usual; when the pool has none for a reader holding none, or the peer spoke plain HTTP, the
   * bytes come in this buffer (a heap chunk, lent until released); otherwise it goes back to the
   * free list at the recv's final completion, when the ring is done with it.
   */
  private armTlsHeap(len: number): void {
    const rare = (this.rare ??= new StreamRare());
    const code = this.nextHeapCode(rare);
    const buf = this.ring.heapBuffers.take(len);
    (rare.heap ??= new Map()).set(code, buf);
    this.tlsState!.heap = code;
    const ring = this.ring;
    this.armLimited = false;
    this.armedSlot = ring.alloc(this, TARGET_STREAM);
    this.bits += IN_FLIGHT_ONE;
    ring.push(OP_RECV | this.fdOps, this.fd, this.armedSlot, len, buf, this.tls);
  }

  /** read(buf) while the multishot recv is armed: waits for its next chunk, then copies. */
  private waitRecv(buf: Uint8Array, signal: AbortSignal | undefined): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const waiter = new RecvWaiter(buf, resolve as RecvWaiter['resolve'], reject, signal);
      if (signal !== undefined) {
        waiter.onAbort = () => {
          if (!this.removeWaiter(waiter)) return;
          reject(cancelledError('read', this.remote, buf));
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.pushWaiter(waiter);
      this.arm();
      if (this.tls !== 0) this.host.ring.kick();
    });
  }

  private queued(): number {
    const q = this.queue;
    return q === undefined ? 0 : q.tail - q.head;
  }

  private feedWaiters(): void {
    while (this.waiter !== undefined) {
      const hasChunk = this.hasQueued;
      if (!hasChunk && !this.eof && this.failure === undefined) return;
      const w = this.shiftWaiter()!;
      if (!isRecvWaiter(w)) {
        if (hasChunk) deliverRecv(w, this.takeChunk(), undefined);
        else deliverRecv(w, null, this.failure);
        continue;
      }
      if (w.onAbort !== undefined) w.signal?.removeEventListener('abort', w.onAbort);
      if (hasChunk) w.resolve([this.copyOut(w.buf), w.buf]);
      else if (this.failure !== undefined) w.reject(this.withBuffer(this.failure, w.buf));
      else w.resolve([0, w.buf]);
    }
  }

  private pushWaiter(w: Waiter): void {
    if (this.waiter === undefined) this.waiter = w;
    else ((this.rare ??= new StreamRare()).moreWaiters ??= []).push(w);
  }

  /** Takes the first waiting reader (the next one moves up into the field). */
  private shiftWaiter(): Waiter | undefined {
    const w = this.waiter;
    const more = this.rare?.moreWaiters;
    this.waiter = more !== undefined && more.length > 0 ? more.shift() : undefined;
    return w;
  }

  /** Removes a waiting reader (its signal aborted); false when it was no longer waiting. */
  private removeWaiter(w: Waiter): boolean {
    if (this.waiter === w) {
      this.shiftWaiter();
      return true;
    }
    const more = this.rare?.moreWaiters;
    const i = more?.indexOf(w) ?? -1;
    if (i < 0) return false;
    more!.splice(i, 1);
    return true;
  }

  private settleWaiterError(w: RecvWaiter, error: RuntimeError): void {
    if (w.onAbort !== undefined) w.signal?.removeEventListener('abort', w.onAbort);
    w.reject(error);
  }

  /** Takes the head chunk whole (recvTo()). A chunk partly read by read(buf) yields its rest. */
  private takeChunk(): RecvChunk {
    const q = this.queue!;
    const i = q.head++;
    const code = q.bid[i]!;
    const offset = q.offset;
    const len = q.len[i]!;
    const bytes = this.viewOf(code, offset, len - offset);
    q.offset = 0;
    this.compactQueue();
    return new PooledChunk(bytes, this, code, len);
  }

  /** Copies queued bytes into `buf` (read(buf) after recv data arrived); returns the count. */
  private copyOut(buf: Uint8Array): number {
    let n = 0;
    const q = this.queue!;
    while (n < buf.length && q.head < q.tail) {
      const i = q.head;
      const code = q.bid[i]!;
      const avail = q.len[i]! - q.offset;
      const take = Math.min(avail, buf.length - n);
      buf.set(this.viewOf(code, q.offset, take), n);
      n += take;
      if (take === avail) {
        q.head++;
        q.offset = 0;
        this.giveBackChunk(code, q.len[i]!);
      } else {
        q.offset += take;
      }
    }
    this.compactQueue();
    return n;
  }

  private compactQueue(): void {
    const q = this.queue!;
    if (q.head === q.tail) {
      q.head = 0;
      q.tail = 0;
    }
  }

  private dropChunks(): void {
    const q = this.queue;
    if (q === undefined) return;
    for (let i = q.head; i < q.tail; i++) this.giveBackChunk(q.bid[i]!, q.len[i]!);
    q.head = 0;
    q.tail = 0;
    q.offset = 0;
  }

  private withBuffer(error: RuntimeError, buf: Uint8Array): RuntimeError {
    if (error.buffer === buf) return error;
    return new RuntimeError(error.code, error.syscall, {
      errno: error.errno,
      address: error.address,
      buffer: buf,
      cause: error,
    });
  }
}

/**
 * The ring's completion functions of the targets this module makes (RingOptions.completions,
 * with listener.ts's): each calls its class's own onCompletion, held in a module constant, with
 * no load from the target (see TARGET_STREAM in ring.ts).
 */
const streamOnCompletion = UringStream.prototype.onCompletion;
const opOnCompletion = StreamOp.prototype.onCompletion;
const heapRecvOnCompletion = HeapRecv.prototype.onCompletion;
export const streamCompletions: Omit<TargetCompletions, 'listener'> = {
  stream: (target, res, flags, slot) => streamOnCompletion.call(target as UringStream, res, flags, slot),
  streamOp: (target, res, flags, slot) => opOnCompletion.call(target as StreamOp, res, flags, slot),
  heapRecv: (target, res, flags, slot) => heapRecvOnCompletion.call(target as HeapRecv, res, flags, slot),
};
