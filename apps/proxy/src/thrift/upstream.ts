/**
 * Thrift upstream connections, pooled exclusively: one call on a connection at a time (many
 * Thrift servers answer a connection strictly in order, and a framed connection has no way to
 * match replies but order). A call takes an idle connection of its upstream and framing from
 * @loch/transports' ConnectionPool (or connects), writes the frame, reads exactly one frame
 * back, and returns the connection only when it is provably clean: the reply is a REPLY or
 * EXCEPTION with the call's seq id, and nothing was received past it. While idle, a connection
 * keeps one receive pending: the peer closing it (or sending anything) takes it out of the pool
 * at once instead of failing the next call. A reply's bytes stay in the connection's reader
 * (no copy); the reader receives into the same memory again only once every reply it returned
 * was given back through its ReplyLease after being written to the caller, since a relay that
 * allocates new memory per reply makes V8 run major GCs at the rate it relays. Not for routing
 * or for answering the caller (service.ts); an upstream with `multiplex` set carries several
 * calls per connection (mux.ts).
 */

import {
  FrameReader,
  type FramingName,
  frameParts,
  MessageType,
  readMessageHeader,
  type ThriftFrame,
  type ThriftRecvChunk,
  type ThriftStream,
} from '@loch/thrift';
import {
  ConnectionPool,
  type ConnectOptions,
  type PoolKey,
  type PoolStats,
  TransportError,
  UnifiedL4Connector,
} from '@loch/transports';
import { type ByteStream, NO_DEADLINE, type SweepMember } from '@loch/uring-runtime';
import type { ThriftUpstreamAddress, ThriftUpstreamConfig } from '../config/schema.js';
import { callDeadlines } from './deadlines.js';
import {
  type MuxCounters,
  type MuxKey,
  MuxPool,
  type ReplyHold,
  type ReplyHolder,
  type UpstreamCall,
} from './mux.js';

import { failureOf, ThriftUpstreamError, type ThriftUpstreamFailure } from './upstream-error.js';

export { ThriftUpstreamError, type ThriftUpstreamFailure };

/** A pool key: one upstream spoken to in one framing, exclusively or multiplexed. */
export interface ThriftUpstreamKey extends PoolKey, MuxKey {
  readonly address: ThriftUpstreamAddress;
  readonly framing: FramingName;
  readonly label: string;
  /** Calls in flight per connection when multiplexed; 0: one call per connection. */
  readonly multiplex: number;
}

/** An upstream of a compiled route, with its four pool keys (one per framing) made once. */
export class ThriftUpstreamEndpoint {
  readonly #keys: Record<FramingName, ThriftUpstreamKey>;
  constructor(readonly upstream: ThriftUpstreamConfig) {
    const a = upstream.address;
    const base = a.kind === 'tcp' ? `tcp:${a.host}:${a.port}` : `unix:${a.path}`;
    const key = (framing: FramingName): ThriftUpstreamKey => ({
      id: `${base}|${framing}${upstream.multiplex > 0 ? `|mux${upstream.multiplex}` : ''}`,
      address: a,
      framing,
      label: upstream.label,
      multiplex: upstream.multiplex,
    });
    this.#keys = {
      unframed: key('unframed'),
      framed: key('framed'),
      theader: key('theader'),
      ttheader: key('ttheader'),
    };
  }
  key(framing: FramingName): ThriftUpstreamKey {
    return this.#keys[framing];
  }
}

/**
 * One upstream connection: a ThriftStream over the runtime stream whose single pending receive
 * doubles as the idle watch (see the module comment).
 */
class UpstreamConnection implements ThriftStream, SweepMember, ReplyHolder, UpstreamCall {
  readonly reader: FrameReader;
  /** The call's upstream_call deadline on the sweep's clock (NO_DEADLINE: none). */
  #callDeadline = NO_DEADLINE;
  /** The call's deadline passed and the connection was closed to end it. */
  timedOut = false;
  /** The call's caller went away and the connection was closed to end the call. */
  abandoned = false;
  /** The receive in flight (idle watch or a read the FrameReader asked for), if any. */
  #recv: Promise<ThriftRecvChunk | null> | null = null;
  #idle = false;
  /** False once the peer closed, sent something unasked, or the connection failed. */
  alive = true;
  /**
   * Replies the reader returned that were not given back (ReplyLease.release): while any is
   * out, the reader appends after their bytes instead of reusing its buffer.
   */
  lent = 0;

  constructor(
    readonly key: ThriftUpstreamKey,
    readonly stream: ByteStream,
    maxFrameSize: number,
    /** Told when the idle watch finds the connection dead. */
    private readonly onIdleDeath: (conn: UpstreamConnection) => void,
  ) {
    this.reader = new FrameReader(this, { framing: key.framing, maxFrameSize });
  }

  /** The idle watch's handlers, made once per connection rather than per idle period. */
  readonly #onIdleChunk = (chunk: ThriftRecvChunk | null): void => {
    if (!this.#idle) return; // a call took the connection: the chunk is its reply's
    chunk?.release();
    this.#recv = null;
    this.died();
  };
  readonly #onIdleError = (): void => {
    if (!this.#idle) return;
    this.#recv = null;
    this.died();
  };

  get closed(): boolean {
    return this.stream.closed;
  }

  recv(): Promise<ThriftRecvChunk | null> {
    const pending = this.#recv ?? this.stream.recv();
    this.#recv = null;
    return pending;
  }

  writev(bufs: readonly Uint8Array[]): Promise<number> {
    return this.stream.writev(bufs);
  }

  close(): Promise<void> {
    this.alive = false;
    return this.stream.close();
  }

  /** Marks the connection idle in the pool and keeps a receive pending to notice its death. */
  watchIdle(): void {
    this.#idle = true;
    // Still pending from the last idle period (a ONEWAY call read nothing): it watches again.
    if (this.#recv !== null) return;
    const pending = this.stream.recv();
    this.#recv = pending;
    pending.then(this.#onIdleChunk, this.#onIdleError);
  }

  replyReleased(): void {
    this.lent--;
  }

  /** Taken out of the pool for a call. */
  busy(): void {
    this.#idle = false;
    // No earlier reply is in use: this call's reply may overwrite their bytes.
    if (this.lent === 0) this.reader.recycle();
  }

  /**
   * Arms the call's timeout (ms, 0 = none): a number on the worker's sweep rather than a timer
   * per call. Past it the connection is closed, which ends the call's pending write or read.
   */
  armCall(ms: number): void {
    this.timedOut = false;
    if (!(ms > 0)) return;
    callDeadlines.deadline(this, ms);
    // A fresh clock, not the sweep's coarse one (which can be a whole old tick stale once a
    // shorter deadline shortens the tick): never early.
    this.#callDeadline = performance.now() + ms;
  }

  /** The call ended: its deadline no longer applies. */
  disarmCall(): void {
    this.#callDeadline = NO_DEADLINE;
  }

  /**
   * The caller went away: the connection is closed, which ends the call's pending write or
   * read, tells the upstream the call is abandoned, and keeps a late reply from ever being
   * read as the next call's (a closed connection is never pooled again).
   */
  cancelCall(): void {
    this.abandoned = true;
    void this.close().catch(() => {});
  }

  onSweep(now: number): boolean {
    if (this.#callDeadline > now) return this.#callDeadline !== NO_DEADLINE;
    this.#callDeadline = NO_DEADLINE;
    this.timedOut = true;
    void this.close().catch(() => {});
    return false;
  }

  private died(): void {
    this.alive = false;
    this.onIdleDeath(this);
  }
}

/**
 * A relayed reply's hold on the exclusive connection whose reader its bytes live in. A caller
 * that answers with the reply frame's bytes passes one to ThriftUpstreams.call and releases it
 * once they were written; one never released (or none passed) only keeps that connection's
 * reader from reusing its memory.
 */
export class ReplyLease implements ReplyHold {
  #holder: ReplyHolder | undefined = undefined;
  /** The upstream call running for the caller, cancelled by abandon(). */
  #call: UpstreamCall | undefined = undefined;
  /** The caller went away (abandon()). */
  abandoned = false;

  /** @internal The upstream call now running (undefined: it ended); false if the caller is gone. */
  running(call: UpstreamCall | undefined): boolean {
    if (this.abandoned) return false;
    this.#call = call;
    return true;
  }

  /**
   * The caller went away: the upstream call running for it is cancelled (an exclusive
   * connection closed, a multiplexed call's id tombstoned), and one not yet made is not made.
   */
  abandon(): void {
    if (this.abandoned) return;
    this.abandoned = true;
    const call = this.#call;
    this.#call = undefined;
    call?.cancelCall();
  }

  /** @internal The reply was read by `holder`'s reader. */
  hold(holder: ReplyHolder): void {
    this.#holder = holder;
  }

  /** The reply's bytes are no longer used (a second call does nothing). */
  release(): void {
    const holder = this.#holder;
    if (holder === undefined) return;
    this.#holder = undefined;
    holder.replyReleased();
  }
}

/** Settings of a ThriftUpstreams. */
export interface ThriftUpstreamsOptions {
  /** Idle connections older than this are closed (ms). */
  readonly idleTimeout: number;
  /** Largest seq id a multiplexed connection hands out before wrapping (tests shrink it). */
  readonly maxSeqId?: number;
}

/** Deadlines (ms, 0 = none) and limits of one call. */
export interface ThriftCallOptions {
  readonly connect: number;
  readonly call: number;
  /** Largest reply frame accepted (applies to connections made for this call). */
  readonly maxFrameSize: number;
}

/** Counters of a ThriftUpstreams beside its pool's. */
export interface ThriftUpstreamStats extends PoolStats, MuxCounters {
  /** Multiplexed connections open. */
  readonly muxConnections: number;
  /** ONEWAY calls that could not be delivered (logged one by one as well). */
  readonly onewayFailures: number;
}

/** The upstream side of a thrift server in one worker: connector and pools, kept across reloads. */
export class ThriftUpstreams {
  readonly #pool: ConnectionPool<ThriftUpstreamKey, UpstreamConnection>;
  readonly #mux: MuxPool;
  readonly #connector = new UnifiedL4Connector();
  readonly #open = new Set<UpstreamConnection>();
  /** Calls being forwarded (a graceful stop waits for them). */
  inFlight = 0;
  #onewayFailures = 0;
  readonly #onIdleDeath = (conn: UpstreamConnection): void => {
    this.#pool.removeIdle(conn.key, conn);
  };

  constructor(options: ThriftUpstreamsOptions) {
    this.#pool = new ConnectionPool<ThriftUpstreamKey, UpstreamConnection>({
      maxIdlePerKey: 64,
      idleTimeout: options.idleTimeout,
      isAlive: (c) => c.alive && !c.stream.closed,
    });
    this.#mux = new MuxPool(
      (key, timeout) => this.#connectStream(key as ThriftUpstreamKey, timeout),
      options.idleTimeout,
      options.maxSeqId,
    );
  }

  /** Pool counters. */
  stats(): ThriftUpstreamStats {
    return {
      ...this.#pool.stats(),
      ...this.#mux.counters,
      muxConnections: this.#mux.connections,
      onewayFailures: this.#onewayFailures,
    };
  }

  /**
   * Sends `frame` (the call as it goes upstream, in the key's framing; `message` its message
   * header) and resolves the reply frame, undecoded past its message header, with the call's
   * message seq id (the framing header's is the server's to restore); undefined for a ONEWAY
   * call (resolved once written). Exclusive or multiplexed as the key says. Rejects with
   * ThriftUpstreamError. The reply's bytes stay valid until `lease` is released (without a
   * lease, for as long as they are referenced).
   */
  call(
    key: ThriftUpstreamKey,
    frame: ThriftFrame,
    message: { readonly type: number; readonly seqId: number },
    timeouts: ThriftCallOptions,
    lease?: ReplyLease,
  ): Promise<ThriftFrame | undefined> {
    // Each path counts itself in flight: no async layer of its own around the exclusive call.
    return key.multiplex > 0
      ? this.#muxCall(key, frame, message, timeouts, lease)
      : this.#call(key, frame, message, timeouts, lease);
  }

  async #muxCall(
    key: ThriftUpstreamKey,
    frame: ThriftFrame,
    message: { readonly type: number; readonly seqId: number },
    timeouts: ThriftCallOptions,
    lease: ReplyLease | undefined,
  ): Promise<ThriftFrame | undefined> {
    this.inFlight++;
    const oneway = message.type === MessageType.ONEWAY;
    try {
      return await this.#mux.call(key, { frame, seqId: message.seqId, oneway, lease }, timeouts);
    } catch (error) {
      if (oneway) this.#onewayFailures++;
      throw error;
    } finally {
      this.inFlight--;
    }
  }

  async #call(
    key: ThriftUpstreamKey,
    frame: ThriftFrame,
    message: { readonly type: number; readonly seqId: number },
    timeouts: ThriftCallOptions,
    lease: ReplyLease | undefined,
  ): Promise<ThriftFrame | undefined> {
    this.inFlight++;
    let conn: UpstreamConnection | undefined;
    let clean = false;
    try {
      const parts = frameParts(frame, frame.payload);
      conn = this.#pool.acquire(key);
      if (conn === undefined) conn = await this.#connect(key, timeouts.connect, timeouts.maxFrameSize);
      conn.busy();
      if (lease !== undefined && !lease.running(conn)) {
        // The caller went away while a connection was found: it goes back to the pool unused.
        clean = true;
        throw new ThriftUpstreamError('abandoned', key.label, 'the caller went away');
      }
      conn.armCall(timeouts.call);
      try {
        await conn.writev(parts);
      } catch (error) {
        throw this.#failure(key, conn, 'the call could not be written', error, timeouts.call);
      }
      if (message.type === MessageType.ONEWAY) {
        clean = true;
        return undefined;
      }
      let reply: ThriftFrame | null;
      try {
        reply = await conn.reader.next();
      } catch (error) {
        throw this.#failure(key, conn, 'the reply could not be read', error, timeouts.call);
      }
      if (reply === null) {
        throw this.#failure(
          key,
          conn,
          'the upstream closed the connection before a reply',
          undefined,
          timeouts.call,
        );
      }
      let header: { type: number; seqId: number };
      try {
        header = readMessageHeader(reply.protocol, reply.payload);
      } catch (error) {
        throw new ThriftUpstreamError(
          'protocol',
          key.label,
          `unreadable reply: ${(error as Error).message}`,
          {
            cause: error,
          },
        );
      }
      if (header.type !== MessageType.REPLY && header.type !== MessageType.EXCEPTION) {
        throw new ThriftUpstreamError('protocol', key.label, `the reply has message type ${header.type}`);
      }
      // Both the message's seq id and the framing header's (THeader, TTHeader) must answer the call's.
      if (header.seqId !== message.seqId || reply.seqId !== frame.seqId) {
        const got = header.seqId !== message.seqId ? header.seqId : reply.seqId;
        const sent = header.seqId !== message.seqId ? message.seqId : frame.seqId;
        throw new ThriftUpstreamError('protocol', key.label, `the reply has seq id ${got}, the call ${sent}`);
      }
      // Exactly one reply read and nothing past it: the connection may carry the next call.
      clean = conn.reader.buffered === 0;
      conn.lent++;
      lease?.hold(conn);
      return reply;
    } catch (error) {
      if (message.type === MessageType.ONEWAY) this.#onewayFailures++;
      throw error;
    } finally {
      this.inFlight--;
      // The call ended: the caller going away from now on must not close the connection.
      lease?.running(undefined);
      if (conn !== undefined) {
        conn.disarmCall();
        clean &&= !conn.timedOut && !conn.abandoned && conn.alive && !conn.stream.closed;
        if (clean) conn.watchIdle();
        else this.#open.delete(conn);
        this.#pool.release(key, conn, clean);
      }
    }
  }

  async #connect(key: ThriftUpstreamKey, timeout: number, maxFrameSize: number): Promise<UpstreamConnection> {
    const stream = await this.#connectStream(key, timeout);
    const conn = new UpstreamConnection(key, stream, maxFrameSize, this.#onIdleDeath);
    this.#pool.created(key, conn);
    // Connections the pool closed (idle timeout, cap) are swept here, not tracked per close.
    if (this.#open.size >= 256) for (const c of this.#open) if (c.closed) this.#open.delete(c);
    this.#open.add(conn);
    return conn;
  }

  /** Connects to the key's upstream; rejects with a ThriftUpstreamError. */
  async #connectStream(key: ThriftUpstreamKey, timeout: number): Promise<ByteStream> {
    const options: ConnectOptions = { timeout };
    try {
      return await this.#connector.connect(key.address, options);
    } catch (error) {
      const code = error instanceof TransportError ? error.code : '';
      const failure: ThriftUpstreamFailure =
        code === 'ERR_TRANSPORT_CONNECT_REFUSED'
          ? 'refused'
          : code === 'ERR_TRANSPORT_CONNECT_TIMEOUT'
            ? 'connect_timeout'
            : 'connect_failed';
      throw new ThriftUpstreamError(
        failure,
        key.label,
        failure === 'connect_timeout'
          ? `no connection within the upstream_connect timeout (${timeout} ms)`
          : `connect failed: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }

  #failure(
    key: ThriftUpstreamKey,
    conn: UpstreamConnection,
    what: string,
    error: unknown,
    callTimeout: number,
  ): ThriftUpstreamError {
    if (conn.abandoned) {
      return new ThriftUpstreamError('abandoned', key.label, 'the caller went away', { cause: error });
    }
    if (conn.timedOut) {
      return new ThriftUpstreamError(
        'timeout',
        key.label,
        `no reply within the upstream_call timeout (${callTimeout} ms)`,
        { cause: error },
      );
    }
    const detail = error === undefined ? '' : `: ${(error as Error)?.message ?? String(error)}`;
    return new ThriftUpstreamError(failureOf(error), key.label, `${what}${detail}`, { cause: error });
  }

  /** Closes idle connections now and the rest when their calls end; closeAll ends those too. */
  close(): void {
    this.#pool.close();
    this.#mux.close();
  }

  /** Closes every connection, in use or not (shutdown past its grace). */
  closeAll(): void {
    this.#pool.close();
    this.#mux.closeAll();
    for (const conn of this.#open) void conn.close().catch(() => {});
    this.#open.clear();
  }
}
