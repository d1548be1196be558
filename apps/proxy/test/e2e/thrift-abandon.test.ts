/**
 * `loch run` as a Thrift proxy when a caller goes away while its call waits for a slow
 * upstream, end to end on every available driver: the upstream call is cancelled at once (an
 * exclusive upstream connection is closed, which the upstream sees; a multiplexed call's id is
 * tombstoned, its late reply dropped and never given to another call), the call is logged as
 * 499, and later calls are served. Without the cancellation the upstream waits for loch's 30 s
 * upstream_call timeout.
 */
import * as net from 'node:net';
import {
  createWriter,
  decodeFrame,
  encodeFrame,
  MessageType,
  readMessageHeader,
  type ThriftClient,
  TType,
} from '@loch/thrift';
import { createRuntime, type Runtime } from '@loch/uring-runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lochCall, lochClient } from '../thrift/peers.js';
import { availableDrivers, freePort, type Loch, startLoch, tempDir, waitConnectable } from './harness.js';

const drivers = availableDrivers();

/** A call as the upstream received it; reply() answers it with `U:<name>:<seq id>`. */
interface Held {
  readonly name: string;
  readonly seqId: number;
  reply(): void;
}

/**
 * A framed binary upstream answering each call at once, except "slow" ones (held until
 * reply()); counts connections and the ones closed while holding a call.
 */
async function holdingUpstream() {
  const sockets = new Set<net.Socket>();
  const held: Held[] = [];
  let connections = 0;
  let closedHolding = 0;
  const server = net.createServer((s) => {
    connections++;
    sockets.add(s);
    s.on('error', () => {});
    let holding = 0;
    s.on('close', () => {
      sockets.delete(s);
      if (holding > 0) closedHolding++;
    });
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const size = 4 + buf.readUInt32BE(0);
        const frame = decodeFrame('framed', new Uint8Array(buf.subarray(0, size)));
        buf = buf.subarray(size);
        const h = readMessageHeader('binary', frame.payload);
        const reply = () => {
          const w = createWriter('binary');
          w.writeMessageBegin(h.name, MessageType.REPLY, h.seqId);
          w.writeStructBegin();
          w.writeFieldBegin(TType.STRING, 0);
          w.writeString(`U:${h.name}`);
          w.writeFieldStop();
          w.writeStructEnd();
          w.writeMessageEnd();
          if (!s.destroyed) s.write(encodeFrame({ framing: 'framed', protocol: 'binary' }, w.finishCopy()));
        };
        if (h.name === 'slow') {
          holding++;
          held.push({ name: h.name, seqId: h.seqId, reply });
        } else reply();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    held,
    connections: () => connections,
    closedHolding: () => closedHolding,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

describe.each(drivers)('a thrift caller that goes away mid-call (driver %s)', (driver) => {
  let runtime: Runtime;
  let exclusive: Awaited<ReturnType<typeof holdingUpstream>>;
  let mux: Awaited<ReturnType<typeof holdingUpstream>>;
  let loch: Loch;
  let port: number;
  let muxPort: number;
  const clients: ThriftClient[] = [];

  beforeAll(async () => {
    runtime = await createRuntime({ driver: 'legacy', log: () => undefined });
    exclusive = await holdingUpstream();
    mux = await holdingUpstream();
    port = await freePort();
    muxPort = await freePort();
    loch = await startLoch(
      tempDir('loch-thrift-abandon-'),
      `
[runtime]
workers = 1

[servers.rpc]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:${port}" }
timeouts = { upstream_connect = "1s", upstream_call = "30s" }
route = { upstreams = [{ endpoint = "127.0.0.1:${exclusive.port}" }] }

[servers.mux]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:${muxPort}" }
timeouts = { upstream_connect = "1s", upstream_call = "30s" }
route = { upstreams = [{ endpoint = "127.0.0.1:${mux.port}", multiplex = true }] }
`,
      { LOCH_DRIVER: driver },
    );
    await waitConnectable({ port });
    await waitConnectable({ port: muxPort });
  });

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await loch?.stop();
    await Promise.all([exclusive?.close(), mux?.close()]);
    await runtime?.close();
  });

  async function client(to: number): Promise<ThriftClient> {
    const c = await lochClient(to, runtime, { framing: 'framed', protocol: 'binary' });
    clients.push(c);
    return c;
  }

  it('closes the exclusive upstream connection of the abandoned call and logs 499; the next call gets a fresh connection', async () => {
    const warm = await client(port);
    expect(await lochCall(warm, 'echo', 'w')).toBe('U:echo');
    const gone = await client(port);
    const call = lochCall(gone, 'slow', 's').catch((e: unknown) => e);
    await expect.poll(() => exclusive.held.length, { timeout: 10_000 }).toBe(1);
    const connections = exclusive.connections();
    await gone.close();
    await call;
    // The upstream sees its connection closed at once, not after the 30 s upstream_call timeout.
    await expect.poll(() => exclusive.closedHolding(), { timeout: 10_000 }).toBe(1);
    await expect
      .poll(() => loch.stdout(), { timeout: 10_000 })
      .toMatch(/ rpc 127\.0\.0\.1:\d+ CALL slow 499 0 /);
    expect(loch.stdout()).not.toMatch(/warn .*rpc: slow/);
    // The late reply can never be read: that connection is gone; another call is served.
    exclusive.held[0]!.reply();
    expect(await lochCall(warm, 'echo', 'after')).toBe('U:echo');
    expect(exclusive.connections()).toBeGreaterThanOrEqual(connections);
  });

  it("tombstones a multiplexed abandoned call's id: its late reply reaches no other call, the connection goes on", async () => {
    const warm = await client(muxPort);
    expect(await lochCall(warm, 'echo', 'w')).toBe('U:echo');
    const gone = await client(muxPort);
    const call = lochCall(gone, 'slow', 's').catch((e: unknown) => e);
    await expect.poll(() => mux.held.length, { timeout: 10_000 }).toBe(1);
    await gone.close();
    await call;
    await expect
      .poll(() => loch.stdout(), { timeout: 10_000 })
      .toMatch(/ mux 127\.0\.0\.1:\d+ CALL slow 499 0 /);
    // The late reply comes while other calls run on the same connection: each gets its own.
    const late = mux.held[0]!;
    const others = ['a', 'b', 'c'].map(() => lochCall(warm, 'echo', 'x'));
    late.reply();
    expect(await Promise.all(others)).toEqual(['U:echo', 'U:echo', 'U:echo']);
    expect(await lochCall(warm, 'echo', 'after')).toBe('U:echo');
    expect(mux.connections()).toBe(1);
    expect(mux.closedHolding()).toBe(0);
  });
});
