/**
 * The convenience forms of ByteStream, built once on the promise-free pair: `recv()`, async
 * iteration, `write`, `writeAll` and `writev` on top of `recvTo()`/`writeTo()`. Every driver's
 * stream extends StreamForms, so a new stream kind (TLS next) implements `recvTo`, `sendTo`
 * (writeTo with an AbortSignal), `withdrawRecv` (so an aborted recv() loses no bytes),
 * `read(buf)`, close/shutdown/setNoDelay and its addresses, optionally `takeReady`, and gets
 * the rest. Not for data movement: what a receive or a write does is the driver's.
 *
 * Cost: a promise form costs one promise (with its resolving functions, taken without a closure
 * by @loch/service-async's pendingPromise) per call, and the wait itself allocates nothing more:
 * recv() waits through one receiver object per stream (made on first use) instead of a waiter
 * per call, and a write through one small target object (where a driver used to keep an
 * executor closure). recv() results come through the deferred delivery
 * of the pair (internal/target-delivery.ts), in the order the driver completed them; data the
 * driver already holds comes as a settled promise (takeReady).
 */
import { constants } from 'node:os';
import { NO_SETTLER, pendingPromise, takeReject, takeResolve } from '@loch/service-async';
import { RuntimeError } from '../errors.js';
import type {
  ByteStream,
  ConnectionFacts,
  DriverName,
  IoOptions,
  IoResult,
  RecvChunk,
  RecvTarget,
  SocketAddress,
  WriteTarget,
} from '../stream.js';

const ECANCELED = constants.errno.ECANCELED;

type Settler = (value: unknown) => void;

/** ECANCELED for an operation stopped by its AbortSignal, with the lent buffer. */
function abortedError(syscall: string, address: SocketAddress | undefined, buffer?: Uint8Array) {
  return RuntimeError.fromErrno(-ECANCELED, syscall, address, buffer);
}

/**
 * The recv() promises of one stream, waiting in call order. It is the RecvTarget of every
 * recvTo() that recv() makes: the driver delivers results in call order, so the k-th delivery
 * settles the k-th waiting promise. Withdrawing an aborted recv() withdraws any one of the
 * receiver's pending recvTo() calls (they are interchangeable), so no received byte is lost.
 */
class PromiseReceiver implements RecvTarget {
  // The first waiting promise's settlers sit in fields (one recv() at a time is the rule); the
  // ones after it, rare, wait in `more` as [resolve, reject] pairs, in call order. Measured: an
  // array here cost a parked connection about 90 bytes more.
  private resolve: Settler = NO_SETTLER;
  private reject: Settler = NO_SETTLER;
  private more: Settler[] | undefined = undefined;

  onRecv(chunk: RecvChunk | null, error: RuntimeError | undefined): void {
    const resolve = this.resolve;
    const reject = this.reject;
    this.shift();
    if (error !== undefined) reject(error);
    else resolve(chunk);
  }

  /** Queues the settlers of a new recv() promise. */
  push(resolve: Settler, reject: Settler): void {
    if (this.reject === NO_SETTLER) {
      this.resolve = resolve;
      this.reject = reject;
    } else (this.more ??= []).push(resolve, reject);
  }

  /** Removes a waiting promise's settlers (its recv() was aborted). */
  remove(reject: Settler): void {
    if (this.reject === reject) {
      this.shift();
      return;
    }
    const more = this.more;
    const i = more === undefined ? -1 : more.indexOf(reject);
    if (i > 0) more!.splice(i - 1, 2);
  }

  /** True while a recv() promise waits. */
  get waiting(): boolean {
    return this.reject !== NO_SETTLER;
  }

  /** Drops the first waiting promise's settlers; the next one moves up into the fields. */
  private shift(): void {
    const more = this.more;
    if (more !== undefined && more.length > 0) {
      this.resolve = more.shift()!;
      this.reject = more.shift()!;
    } else {
      this.resolve = NO_SETTLER;
      this.reject = NO_SETTLER;
    }
  }
}

/**
 * The target of one promise write: settles it with `value` (the buffer or the total). Settling
 * a promise is deferred by nature, so a driver may call this target at once from its completion
 * dispatch instead of through the delivery queue (io_uring does: the queue's drain costs about
 * 100 bytes per write when each write completes in its own batch, measured).
 */
export class PromiseWrite implements WriteTarget {
  constructor(
    private readonly resolve: Settler,
    private readonly reject: Settler,
    private readonly value: unknown,
  ) {}
  onWritten(error: RuntimeError | undefined): void {
    if (error !== undefined) this.reject(error);
    else this.resolve(this.value);
  }
}

/**
 * A ByteStream whose convenience forms are built on the driver's primitives. Subclasses
 * implement the promise-free pair (`recvTo`, and `writeTo` through `sendTo`), `withdrawRecv`,
 * `read(buf)`, and the rest of the contract's plain members.
 */
export abstract class StreamForms implements ByteStream {
  /** The waiting recv() promises; made on first recv(), so a stream read by recvTo has none. */
  private receiver: PromiseReceiver | undefined = undefined;

  abstract readonly remoteAddress: SocketAddress;
  abstract readonly localAddress: SocketAddress;
  /**
   * The driver's plain facts (`plainFacts(remoteAddress)`), made on first use and kept where
   * the driver keeps its rarely used state, so an idle stream carries nothing for them.
   */
  abstract readonly facts: ConnectionFacts;
  abstract readonly driver: DriverName;
  abstract readonly closed: boolean;

  abstract recvTo(target: RecvTarget): void;

  /**
   * Takes back one pending `recvTo(target)` whose result was not handed out yet: true when one
   * was withdrawn (the target hears nothing for it), false when none is pending any more. How
   * recv() honours an AbortSignal without losing the bytes a late result would carry.
   */
  protected abstract withdrawRecv(target: RecvTarget): boolean;

  /**
   * writeTo() with an AbortSignal, the driver's write primitive: writes all of `data`, then calls
   * `target.onWritten` once; an abort stops the write (ECANCELED, as close() does). A driver
   * cancels its own way (io_uring cancels the send and the stream stays usable; node:net can
   * only destroy the socket), so this stays with the driver.
   */
  protected abstract sendTo(
    data: Uint8Array | readonly Uint8Array[],
    target: WriteTarget,
    signal: AbortSignal | undefined,
  ): void;

  /**
   * Reads into a caller's buffer: a driver primitive, not built on recvTo(). On io_uring it is
   * its own op (a plain recv into `buf` when no multishot is armed), and a read that takes part
   * of a chunk must leave the rest at the head of the driver's queue, ahead of later recvTo()s.
   */
  abstract read<B extends Uint8Array>(buf: B, options?: IoOptions): Promise<IoResult<B>>;

  abstract shutdown(): Promise<void>;
  abstract close(): Promise<void>;
  abstract setNoDelay(enabled: boolean): void;

  /**
   * See ByteStream.setRecvLowWater: false here, for a stream kind with no receive low-water mark
   * of its own (a TLS stream fed from JavaScript); the io_uring stream overrides it.
   */
  setRecvLowWater(_bytes: number): boolean {
    return false;
  }

  writeTo(data: Uint8Array | readonly Uint8Array[], target: WriteTarget): void {
    this.sendTo(data, target, undefined);
  }

  /**
   * Optional fast path of recv(): a chunk the driver already holds, taken now, or undefined. Only
   * when no reader (recvTo or read) waits, so order is kept. It spares recv() on queued data the
   * promise's resolving functions and the deferred delivery (a settled promise instead). A
   * stream kind without one leaves this as is: recv() then goes through recvTo().
   */
  protected takeReady(): RecvChunk | undefined {
    return undefined;
  }

  recv(options?: IoOptions): Promise<RecvChunk | null> {
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(abortedError('recv', this.remoteAddressIfOpen()));
    if (this.receiver === undefined || !this.receiver.waiting) {
      const ready = this.takeReady();
      if (ready !== undefined) return Promise.resolve(ready);
    }
    const promise = pendingPromise<RecvChunk | null>();
    const resolve = takeResolve();
    const reject = takeReject();
    const receiver = (this.receiver ??= new PromiseReceiver());
    receiver.push(resolve, reject);
    this.recvTo(receiver);
    if (signal !== undefined) this.watchRecvAbort(receiver, reject, signal, promise);
    return promise;
  }

  /** Rejects a waiting recv() when `signal` aborts, unless its result is already on the way. */
  private watchRecvAbort(
    receiver: PromiseReceiver,
    reject: Settler,
    signal: AbortSignal,
    promise: Promise<unknown>,
  ): void {
    const onAbort = () => {
      if (!this.withdrawRecv(receiver)) return;
      receiver.remove(reject);
      reject(abortedError('recv', this.remoteAddressIfOpen()));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const unwatch = () => signal.removeEventListener('abort', onAbort);
    promise.then(unwatch, unwatch);
  }

  write<B extends Uint8Array>(buf: B, options?: IoOptions): Promise<IoResult<B>> {
    return this.writeAll(buf, options).then(writtenWhole);
  }

  writeAll<B extends Uint8Array>(buf: B, options?: IoOptions): Promise<B> {
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(abortedError('write', this.remoteAddressIfOpen(), buf));
    const promise = pendingPromise<B>();
    this.sendTo(buf, new PromiseWrite(takeResolve(), takeReject(), buf), signal);
    return promise;
  }

  writev(bufs: readonly Uint8Array[], options?: IoOptions): Promise<number> {
    let total = 0;
    for (let i = 0; i < bufs.length; i++) total += bufs[i]!.length;
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(abortedError('writev', this.remoteAddressIfOpen()));
    const promise = pendingPromise<number>();
    this.sendTo(bufs, new PromiseWrite(takeResolve(), takeReject(), total), signal);
    return promise;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array, void, undefined> {
    for (;;) {
      const chunk = await this.recv();
      if (chunk === null) return;
      try {
        yield chunk.bytes;
      } finally {
        chunk.release();
      }
    }
  }

  /** The peer address for an error, when the stream can still tell it. */
  private remoteAddressIfOpen(): SocketAddress | undefined {
    return this.closed ? undefined : this.remoteAddress;
  }
}

/** write()'s result: the forms layer writes the whole buffer, so a short write never shows. */
function writtenWhole<B extends Uint8Array>(buf: B): IoResult<B> {
  return [buf.length, buf];
}
