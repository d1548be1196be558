/**
 * A ThriftExchange over connections to one upstream, for users of the package outside loch
 * (loch routes through its own pooled upstreams). Keeps up to `connections` connections, opened
 * on demand through `connect`; a call goes to a connection with nothing in flight when there is
 * one (round robin among them), else to the least busy, so one slow call does not hold the
 * calls behind it. A connection that failed is dropped and replaced on the next call. Each
 * connection carries one call at a time and queues the rest (exclusive-connection.ts), or with
 * `multiplexed` many at once matched by seq id, the calls of one event-loop pass in one write
 * (multiplexed-connection.ts): both driven by the stream's callbacks when the stream has them
 * (every runtime stream does), else a @loch/thrift ThriftClient in the same mode. Not a health
 * checker or load balancer.
 */
import { ThriftClient, type ThriftClientOptions, type ThriftFrame, type ThriftStream } from '@loch/thrift';
import { isCallbackStream } from './callback-connection.js';
import { ExclusiveConnection } from './exclusive-connection.js';
import type { ThriftExchange } from './gateway-route.js';
import { MultiplexedConnection } from './multiplexed-connection.js';

/** Settings of a ClientExchange. */
export interface ClientExchangeOptions extends ThriftClientOptions {
  /** Most connections kept (default 4). */
  readonly connections?: number;
  /**
   * Many calls in flight per connection, replies matched by seq id (default false: one call
   * at a time per connection). For upstreams that answer pipelined calls (any that reads its
   * connection's calls in turn, or answers them out of order by seq id): fewer connections
   * carry the calls, several per send under load.
   */
  readonly multiplexed?: boolean;
}

/** A connection driven by its stream's callbacks (the calls' fast path). */
type DirectConnection = ExclusiveConnection | MultiplexedConnection;
type Connection = ThriftClient | DirectConnection;
type SendOptions = { readonly oneway?: boolean; readonly headers?: ReadonlyMap<string, string> };

/**
 * Connections to one upstream: idle ones first, else the least busy. Also the ReplyLender its
 * direct connections report to (`lent`), structurally: `lent` is internal (left out of the
 * published declarations), so an `implements ReplyLender` would not hold there.
 */
export class ClientExchange implements ThriftExchange {
  /** Each slot's connection, while it connects and after. */
  private readonly clients: (Promise<Connection> | undefined)[];
  /** Each slot's connected direct connection, if it is one (the calls' fast path). */
  private readonly direct: (DirectConnection | undefined)[];
  /** Calls in flight per slot on the promise path (connecting, or on a ThriftClient). */
  private readonly busy: number[];
  private next = 0;
  /**
   * The connection each reply came from, until it is given back (release): a connection
   * receives its next replies into the same memory once all it lent are back, instead of
   * allocating a buffer per reply (external memory that V8 answers with major GCs).
   */
  private readonly lentBy = new WeakMap<ThriftFrame, Connection>();

  constructor(
    private readonly connect: () => Promise<ThriftStream>,
    private readonly options: ClientExchangeOptions = {},
  ) {
    const n = Math.max(1, options.connections ?? 4);
    this.clients = new Array(n).fill(undefined);
    this.direct = new Array(n).fill(undefined);
    this.busy = new Array(n).fill(0);
  }

  /** Calls in flight on slot `i`. */
  private load(i: number): number {
    return (this.busy[i] as number) + (this.direct[i]?.inFlight ?? 0);
  }

  /** The slot for the next call: the next idle one after the last pick, else the least busy. */
  private pick(): number {
    const n = this.clients.length;
    let best = this.next;
    let bestLoad = Number.POSITIVE_INFINITY;
    for (let k = 0; k < n; k++) {
      const i = (this.next + k) % n;
      const load = this.load(i);
      if (load === 0) {
        best = i;
        break;
      }
      if (load < bestLoad) {
        best = i;
        bestLoad = load;
      }
    }
    this.next = (best + 1) % n;
    return best;
  }

  send(message: Uint8Array, options: SendOptions): Promise<ThriftFrame | undefined> {
    const slot = this.pick();
    const conn = this.direct[slot];
    // The common case, kept free of async frames: the call's promise is the connection's own.
    if (conn?.usable) return conn.send(message, options);
    return this.sendTracked(slot, message, options);
  }

  private async sendTracked(
    slot: number,
    message: Uint8Array,
    options: SendOptions,
  ): Promise<ThriftFrame | undefined> {
    this.busy[slot] = (this.busy[slot] as number) + 1;
    try {
      return await this.sendOn(slot, message, options);
    } finally {
      this.busy[slot] = (this.busy[slot] as number) - 1;
    }
  }

  private async sendOn(
    slot: number,
    message: Uint8Array,
    options: SendOptions,
  ): Promise<ThriftFrame | undefined> {
    let pending = this.clients[slot];
    if (pending === undefined || this.direct[slot]?.usable === false) {
      // Never connected, or its connection failed: a new one.
      this.direct[slot] = undefined;
      pending = this.connect().then((s) => this.open(slot, s));
      this.clients[slot] = pending;
    }
    let conn: Connection;
    try {
      conn = await pending;
    } catch (e) {
      if (this.clients[slot] === pending) this.clients[slot] = undefined;
      throw e;
    }
    try {
      const reply = await conn.send(message, options);
      if (reply !== undefined && conn instanceof ThriftClient) this.lentBy.set(reply, conn);
      return reply;
    } catch (e) {
      // A connection closes itself on a failure that leaves it out of step.
      if (this.clients[slot] === pending && conn instanceof ThriftClient) this.clients[slot] = undefined;
      throw e;
    }
  }

  /** The connection of a new stream on `slot`. */
  private open(slot: number, stream: ThriftStream): Connection {
    if (!isCallbackStream(stream)) return new ThriftClient(stream, this.options);
    const conn = this.options.multiplexed
      ? new MultiplexedConnection(stream, this.options, this)
      : new ExclusiveConnection(stream, this.options, this);
    this.direct[slot] = conn;
    return conn;
  }

  /** @internal A direct connection handed out `reply`. */
  lent(reply: ThriftFrame, from: DirectConnection): void {
    this.lentBy.set(reply, from);
  }

  /** The gateway no longer reads `reply`: its connection may receive into that memory again. */
  release(reply: ThriftFrame): void {
    const conn = this.lentBy.get(reply);
    if (conn === undefined) return;
    this.lentBy.delete(reply);
    conn.release(reply);
  }

  /** Closes every connection. */
  async close(): Promise<void> {
    const open = this.clients.splice(
      0,
      this.clients.length,
      ...new Array(this.clients.length).fill(undefined),
    );
    this.direct.fill(undefined);
    await Promise.all(open.map((p) => p?.then((c) => c.close()).catch(() => {})));
  }
}
