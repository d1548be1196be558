/**
 * The splice pump behind the uring driver's splice()/spliceAll() and so zeroCopy(): moves a
 * socket's bytes into another socket through the source stream's pipe (kept for the stream's
 * life), with splice(2) on this thread (SPLICE_F_NONBLOCK, both sockets O_NONBLOCK while pumping)
 * and the ring as the poller (a one-shot POLL record only when a splice says EAGAIN). Not
 * IORING_OP_SPLICE: io_uring always runs that on an io-wq worker as a blocking splice (two
 * worker hand-offs per message; see native/README.md). Not for the one-reader hand-over (the
 * driver does that before it starts a pump).
 */
import { constants } from 'node:os';
import { RuntimeError } from '../errors.js';
import { OP_POLL } from './records.js';
import type { CompletionTarget } from './ring.js';
import { cancelledError, type StreamHost, type UringStream } from './stream.js';

const { EAGAIN, ECANCELED, EPIPE } = constants.errno;
const POLLIN = 1;
const POLLOUT = 4;
/** Splice rounds in one go before the pump yields to the loop (a poll that fires at once). */
const MAX_ROUNDS = 32;

/**
 * One copy from `from` to `to`: `once` stops after the first chunk that entered the pipe has left
 * it (Driver.splice), otherwise it runs to end of stream (spliceAll). Resolves with the bytes
 * moved; never half-closes `to`.
 */
export class SplicePump implements CompletionTarget {
  private pending = 0;
  private total = 0;
  /** Slot of the armed poll, or -1. */
  private slot = -1;
  /** Stream whose socket the armed poll watches. */
  private polled: UringStream | undefined = undefined;
  /** The last splice into the pipe returned less than asked: the socket is likely drained. */
  private short = false;
  private settled = false;
  private resolve: (n: number) => void = noop;
  private reject: (error: RuntimeError) => void = noop;
  private onAbort: (() => void) | undefined = undefined;
  private readonly pipeR: number;
  private readonly pipeW: number;

  constructor(
    private readonly host: StreamHost,
    private readonly from: UringStream,
    private readonly to: UringStream,
    pipe: readonly [number, number],
    private readonly chunk: number,
    private readonly once: boolean,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.pipeR = pipe[0];
    this.pipeW = pipe[1];
  }

  run(): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
      this.from.pumpStarted();
      this.to.pumpStarted();
      const signal = this.signal;
      if (signal !== undefined) {
        this.onAbort = () => {
          if (this.slot >= 0) this.host.ring.cancel(this.slot);
        };
        signal.addEventListener('abort', this.onAbort, { once: true });
      }
      this.step();
    });
  }

  /** The armed poll completed: splice again, or fail. */
  onCompletion(res: number, _flags: number, slot: number): void {
    const polled = this.polled!;
    const cancelled = this.host.ring.isCancelling(slot);
    this.slot = -1;
    this.polled = undefined;
    polled.opFinished();
    if (res < 0 || cancelled) {
      if (cancelled || res === -ECANCELED || this.from.closing || this.to.closing)
        this.fail(cancelledError('splice', undefined));
      else this.fail(RuntimeError.fromErrno(res, 'splice', polled.addressForError()));
      return;
    }
    if (this.signal?.aborted) {
      this.fail(cancelledError('splice', undefined));
      return;
    }
    this.step();
  }

  private step(): void {
    const binding = this.host.binding;
    const from = this.from;
    const to = this.to;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      if (from.closing || to.closing) {
        this.fail(cancelledError('splice', undefined));
        return;
      }
      if (this.pending > 0) {
        const m = binding.spliceNow(this.pipeR, to.fd, this.pending);
        if (m > 0) {
          this.pending -= m;
          this.total += m;
          if (this.pending > 0) continue;
          if (this.once) {
            this.finish();
            return;
          }
          // Drained the socket last time: wait for more rather than spend a splice on EAGAIN.
          if (this.short) {
            this.poll(from, POLLIN);
            return;
          }
          continue;
        }
        if (m === -EAGAIN) this.poll(to, POLLOUT);
        else this.fail(RuntimeError.fromErrno(m === 0 ? -EPIPE : m, 'splice', to.addressForError()));
        return;
      }
      const n = binding.spliceNow(from.fd, this.pipeW, this.chunk);
      if (n > 0) {
        this.pending = n;
        this.short = n < this.chunk;
        continue;
      }
      if (n === 0) this.finish();
      else if (n === -EAGAIN) this.poll(from, POLLIN);
      else this.fail(RuntimeError.fromErrno(n, 'splice', from.addressForError()));
      return;
    }
    // A busy pair: give the other connections a turn (the poll fires at once).
    this.poll(this.pending > 0 ? to : from, this.pending > 0 ? POLLOUT : POLLIN);
  }

  private poll(stream: UringStream, mask: number): void {
    const ring = this.host.ring;
    this.polled = stream;
    stream.opStarted();
    this.slot = ring.alloc(this);
    ring.push(OP_POLL, stream.fd, this.slot, 0, undefined, mask);
  }

  private finish(): void {
    if (this.settled) return;
    this.settle();
    this.resolve(this.total);
  }

  private fail(error: RuntimeError): void {
    if (this.settled) return;
    if (this.pending > 0) {
      // Bytes of this stream stuck in its pipe would come out first on a later splice: drop the pipe.
      const pipe = this.from.pipe;
      if (pipe !== undefined) {
        this.host.binding.closeFd(pipe[0]);
        this.host.binding.closeFd(pipe[1]);
        this.from.pipe = undefined;
      }
    }
    this.settle();
    this.reject(error);
  }

  private settle(): void {
    this.settled = true;
    if (this.onAbort !== undefined) this.signal?.removeEventListener('abort', this.onAbort);
    this.from.pumpStopped();
    this.to.pumpStopped();
  }
}

function noop(): void {}
