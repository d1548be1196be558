/**
 * A ThriftExchange over @loch/thrift ThriftClients to one upstream, for users of the package
 * outside loch (loch routes through its own pooled upstreams). Keeps up to `connections`
 * clients, opened on demand through `connect` and used round robin; a client whose connection
 * failed is dropped and replaced on the next call. With `multiplexed` (THeader/TTHeader peers
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

/** Round-robin ThriftClients to one upstream. */
export class ClientExchange implements ThriftExchange {
  private readonly clients: (Promise<ThriftClient> | undefined)[];
  private next = 0;

  constructor(
    private readonly connect: () => Promise<ThriftStream>,
    private readonly options: ClientExchangeOptions = {},
  ) {
    this.clients = new Array(Math.max(1, options.connections ?? 4)).fill(undefined);
  }

  async send(
    message: Uint8Array,
    options: { readonly oneway?: boolean; readonly headers?: ReadonlyMap<string, string> },
  ): Promise<ThriftFrame | undefined> {
    const slot = this.next;
    this.next = (slot + 1) % this.clients.length;
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
      return await client.send(message, options);
    } catch (e) {
      // The client closes itself on a failure that leaves its connection out of step.
      if (this.clients[slot] === pending) this.clients[slot] = undefined;
      throw e;
    }
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
