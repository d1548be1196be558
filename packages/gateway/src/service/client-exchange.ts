/**
 * A ThriftExchange over @loch/thrift ThriftClients to one upstream, for users of the package
 * outside loch (loch routes through its own pooled upstreams). Keeps up to `connections`
 * clients, opened on demand through `connect`; a call goes to a connection with nothing in
 * flight when there is one (round robin among them), else to the least busy, so one slow call
 * does not hold the calls behind it. A client whose connection failed is dropped and replaced
 * on the next call. With `multiplexed` (THeader/TTHeader peers
 * that match replies by seq id) calls share connections; otherwise each client carries one call
 * at a time and queues the rest. Not a health checker or load balancer.
 */
import { ThriftClient, type ThriftClientOptions, type ThriftFrame, type ThriftStream } from '@loch/thrift';
import type { ThriftExchange } from './gateway-route.js';

/** Settings of a ClientExchange. */
export interface ClientExchangeOptions extends ThriftClientOptions {
  /** Most connections kept (default 4). */
  readonly connections?: number;
}

/** ThriftClients to one upstream: idle connections first, else the least busy. */
export class ClientExchange implements ThriftExchange {
  private readonly clients: (Promise<ThriftClient> | undefined)[];
  /** Calls in flight per slot. */
  private readonly busy: number[];
  private next = 0;
  /**
   * The client each reply came from, until it is given back (release): a ThriftClient receives
   * its next replies into the same memory once all it lent are back, instead of allocating a
   * buffer per reply (external memory that V8 answers with major GCs).
   */
  private readonly lentBy = new WeakMap<ThriftFrame, ThriftClient>();

  constructor(
    private readonly connect: () => Promise<ThriftStream>,
    private readonly options: ClientExchangeOptions = {},
  ) {
    const n = Math.max(1, options.connections ?? 4);
    this.clients = new Array(n).fill(undefined);
    this.busy = new Array(n).fill(0);
  }

  /** The slot for the next call: the next idle one after the last pick, else the least busy. */
  private pick(): number {
    const n = this.clients.length;
    let best = this.next;
    for (let k = 0; k < n; k++) {
      const i = (this.next + k) % n;
      if (this.busy[i] === 0) {
        best = i;
        break;
      }
      if ((this.busy[i] as number) < (this.busy[best] as number)) best = i;
    }
    this.next = (best + 1) % n;
    return best;
  }

  async send(
    message: Uint8Array,
    options: { readonly oneway?: boolean; readonly headers?: ReadonlyMap<string, string> },
  ): Promise<ThriftFrame | undefined> {
    const slot = this.pick();
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
    options: { readonly oneway?: boolean; readonly headers?: ReadonlyMap<string, string> },
  ): Promise<ThriftFrame | undefined> {
    let pending = this.clients[slot];
    if (pending === undefined) {
      pending = this.connect().then((s) => new ThriftClient(s, this.options));
      this.clients[slot] = pending;
    }
    let client: ThriftClient;
    try {
      client = await pending;
    } catch (e) {
      if (this.clients[slot] === pending) this.clients[slot] = undefined;
      throw e;
    }
    try {
      const reply = await client.send(message, options);
      if (reply !== undefined) this.lentBy.set(reply, client);
      return reply;
    } catch (e) {
      // The client closes itself on a failure that leaves its connection out of step.
      if (this.clients[slot] === pending) this.clients[slot] = undefined;
      throw e;
    }
  }

  /** The gateway no longer reads `reply`: its client may receive into that memory again. */
  release(reply: ThriftFrame): void {
    const client = this.lentBy.get(reply);
    if (client === undefined) return;
    this.lentBy.delete(reply);
    client.release(reply);
  }

  /** Closes every connection. */
  async close(): Promise<void> {
    const open = this.clients.splice(
      0,
      this.clients.length,
      ...new Array(this.clients.length).fill(undefined),
    );
    await Promise.all(open.map((p) => p?.then((c) => c.close()).catch(() => {})));
  }
}
