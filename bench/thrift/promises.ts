/**
 * Promises made per relayed Thrift call in loch's proxy path, counted with async_hooks: a
 * number that does not depend on how loaded the machine is (this VM has no hardware counters
 * for instructions per call, and CPU time per call moves with load). In one process: a
 * node:net framed binary echo upstream, loch's ThriftServer with ThriftProxyService in front
 * of it (exclusive or multiplexed upstream), and a @loch/thrift client calling `bench` with a
 * string of `--size` bytes, one call at a time. The client's own promises are counted by
 * calling the upstream directly the same way, and subtracted.
 *
 * With --cpu N: also the CPU time (user + system, process.cpuUsage) per call, without the hook,
 * as the median of N rounds of `--calls` calls, direct and through loch interleaved, and loch's
 * path as their difference: fixed iteration counts in one process, for before/after comparisons
 * of the relay's code on a shared machine (both sides run in this process, so the difference
 * is loch's own work plus its share of the kernel's loopback; not a throughput number).
 *
 * With --connections N (N > 1): also N clients calling at once (bench:thrift's load has 64),
 * `--calls` calls in all, counted without the hook: the receives loch's readers were fed per
 * call and their average size (a frame arriving in pieces shows as more than 2 per call), the
 * runtime's heap receives in that window (bufferStats: receives that missed the provided
 * buffers) and the CPU us per call of the whole process (clients and upstream included).
 *
 * The server runs as the worker runs it (`callsInPlace`: calls of 1 KiB or more relayed from the
 * received chunk, not copied); --copy turns that off, for an A/B of the call side's copy. With
 * --connections, the bytes copied into loch's readers per call are counted too (FrameReader's
 * appends: the call's copy into the server's reader, a reply's into an upstream reader), and
 * with --ab N the CPU per call of N interleaved rounds each way (in place, then copied).
 *
 * Usage: tsx --conditions=@loch/source thrift/promises.ts [--size 32] [--calls 2000] [--mux] [--cpu 7]
 *   [--connections 64] [--copy] [--ab 5]   (LOCH_DRIVER=uring|legacy picks the runtime driver)
 */
import { createHook } from 'node:async_hooks';
import { createServer } from 'node:net';
import { parseArgs } from 'node:util';
import {
  createWriter,
  decodeFrame,
  encodeFrame,
  FrameReader,
  MessageType,
  readMessageHeader,
  ThriftClient,
  ThriftServer,
  TType,
} from '@loch/thrift';
import { createRuntime } from '@loch/uring-runtime';
import { parseConfig } from '../../apps/proxy/src/config/load.js';
import { ProxyLog } from '../../apps/proxy/src/proxy/log.js';
import { ThriftProxyService } from '../../apps/proxy/src/thrift/service.js';
import { ThriftUpstreams } from '../../apps/proxy/src/thrift/upstream.js';

const { values: args } = parseArgs({
  options: {
    size: { type: 'string', default: '32' },
    calls: { type: 'string', default: '2000' },
    mux: { type: 'boolean', default: false },
    cpu: { type: 'string', default: '0' },
    connections: { type: 'string', default: '1' },
    copy: { type: 'boolean', default: false },
    ab: { type: 'string', default: '0' },
  },
});
const size = Number(args.size);
const calls = Number(args.calls);

/** A framed binary upstream answering every call with its own argument bytes as the result. */
const upstream = createServer((s) => {
  s.setNoDelay(true);
  let buf: Buffer = Buffer.alloc(0);
  s.on('data', (d: Buffer) => {
    buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
    while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
      const frame = decodeFrame('framed', new Uint8Array(buf.subarray(0, 4 + buf.readUInt32BE(0))));
      buf = buf.subarray(4 + buf.readUInt32BE(0));
      const h = readMessageHeader('binary', frame.payload);
      const w = createWriter('binary');
      w.writeMessageBegin(h.name, MessageType.REPLY, h.seqId);
      w.writeStructBegin();
      w.writeFieldBegin(TType.STRING, 0);
      w.writeString('x'.repeat(size));
      w.writeFieldStop();
      w.writeStructEnd();
      s.write(encodeFrame({ framing: 'framed', protocol: 'binary' }, w.finishCopy()));
    }
  });
});
await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
const upstreamPort = (upstream.address() as { port: number }).port;

const runtime = await createRuntime({ log: () => undefined });
const config = parseConfig(`
[servers.probe]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:1" }
access_log = false
route = { upstreams = [{ endpoint = "127.0.0.1:${upstreamPort}"${args.mux ? ', multiplex = true' : ''} }] }
`);
const server = config.thriftServers[0]!;
const upstreams = new ThriftUpstreams({ idleTimeout: 30_000 });
const service = new ThriftProxyService(upstreams, server, new ProxyLog('warn', 'probe'));
/** loch's server in front of the service, relaying calls in place (as the worker) or copied. */
async function proxyServer(inPlace: boolean): Promise<{ thrift: ThriftServer; port: number }> {
  const thrift = new ThriftServer(service, {
    framing: 'auto',
    maxFrameSize: server.maxFrameSize,
    callsInPlace: inPlace,
  });
  const listener = await runtime.driver.listenTcp({ host: '127.0.0.1', port: 0 });
  void thrift.serve(listener);
  return { thrift, port: (listener.localAddress as { port: number }).port };
}
const main = await proxyServer(!args.copy);
const other = Number(args.ab) > 0 ? await proxyServer(args.copy) : undefined;
const thrift = main.thrift;
const proxyPort = main.port;

const text = 'a'.repeat(size);
/** Promises per call of `n` sequential calls on a client connected to `port` (or CPU us per call). */
async function promisesPerCall(port: number, cpu = false): Promise<number> {
  const client = new ThriftClient(await runtime.driver.connectTcp({ host: '127.0.0.1', port }));
  const one = async (): Promise<void> => {
    const reply = await client.call('bench', (w) => {
      w.writeStructBegin();
      w.writeFieldBegin(TType.STRING, 1);
      w.writeString(text);
      w.writeFieldStop();
      w.writeStructEnd();
    });
    reply!.release();
  };
  for (let i = 0; i < 500; i++) await one(); // warm: connections made, code optimized
  if (cpu) {
    const before = process.cpuUsage();
    for (let i = 0; i < calls; i++) await one();
    const used = process.cpuUsage(before);
    await client.close();
    return (used.user + used.system) / calls;
  }
  let promises = 0;
  const hook = createHook({
    init(_id, type) {
      if (type === 'PROMISE') promises++;
    },
  });
  hook.enable();
  for (let i = 0; i < calls; i++) await one();
  hook.disable();
  await client.close();
  return promises / calls;
}

const direct = await promisesPerCall(upstreamPort);
const proxied = await promisesPerCall(proxyPort);
console.log(
  `driver ${runtime.driver.name}, ${size} B, ${args.mux ? 'multiplexed' : 'exclusive'} upstream: ` +
    `${proxied.toFixed(2)} promises per call through loch, ${direct.toFixed(2)} direct (the client's own): ` +
    `loch's path ${(proxied - direct).toFixed(2)}`,
);
const rounds = Number(args.cpu);
if (rounds > 0) {
  const direct: number[] = [];
  const through: number[] = [];
  for (let r = 0; r < rounds; r++) {
    direct.push(await promisesPerCall(upstreamPort, true));
    through.push(await promisesPerCall(proxyPort, true));
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const diffs = through.map((t, i) => t - direct[i]!);
  console.log(
    `CPU us per call (median of ${rounds} x ${calls}): through loch ${median(through).toFixed(2)}, ` +
      `direct ${median(direct).toFixed(2)}, loch's path ${median(diffs).toFixed(2)} ` +
      `(per round: ${diffs.map((d) => d.toFixed(1)).join(' ')})`,
  );
}
const connections = Number(args.connections);
if (connections > 1) {
  // Receives fed to loch's readers (the server's and the upstream connections'; the client
  // reads with next(), not feed()): copied (feed) or kept (feedChunk).
  let feeds = 0;
  let fedBytes = 0;
  const feed = FrameReader.prototype.feed;
  FrameReader.prototype.feed = function (this: FrameReader, bytes: Uint8Array): void {
    feeds++;
    fedBytes += bytes.byteLength;
    feed.call(this, bytes);
  };
  const feedChunk = FrameReader.prototype.feedChunk;
  FrameReader.prototype.feedChunk = function (this: FrameReader, chunk): void {
    feeds++;
    fedBytes += chunk.bytes.byteLength;
    feedChunk.call(this, chunk);
  };
  // Bytes copied into any reader's buffer (the client's own reader included: its replies are
  // counted apart by running the same calls directly, below).
  let copiedBytes = 0;
  const proto = FrameReader.prototype as unknown as { append(bytes: Uint8Array): void };
  const append = proto.append;
  proto.append = function (this: FrameReader, bytes: Uint8Array): void {
    copiedBytes += bytes.byteLength;
    append.call(this, bytes);
  };
  const callMany = async (n: number, port = proxyPort): Promise<ThriftClient> => {
    const client = new ThriftClient(await runtime.driver.connectTcp({ host: '127.0.0.1', port }));
    for (let i = 0; i < n; i++) {
      const reply = await client.call('bench', (w) => {
        w.writeStructBegin();
        w.writeFieldBegin(TType.STRING, 1);
        w.writeString(text);
        w.writeFieldStop();
        w.writeStructEnd();
      });
      reply!.release();
    }
    return client;
  };
  // Warm: every connection made (upstream ones too), code optimized.
  for (const c of await Promise.all(Array.from({ length: connections }, () => callMany(50)))) await c.close();
  if (other !== undefined)
    for (const c of await Promise.all(Array.from({ length: connections }, () => callMany(50, other.port))))
      await c.close();
  const per = Math.ceil(calls / connections);
  const total = per * connections;
  /** One round of `total` calls on `connections` clients at once against `port`. */
  const round = async (port: number) => {
    feeds = 0;
    fedBytes = 0;
    copiedBytes = 0;
    const stats0 = runtime.bufferStats();
    const cpu0 = process.cpuUsage();
    const clients = await Promise.all(Array.from({ length: connections }, () => callMany(per, port)));
    const cpu = process.cpuUsage(cpu0);
    const stats1 = runtime.bufferStats();
    const copied = copiedBytes;
    for (const c of clients) await c.close();
    const heap = (s: typeof stats0): number => (s === undefined ? 0 : s.heapAllocated + s.heapReused);
    return {
      feeds: feeds / total,
      fedBytes: fedBytes / Math.max(1, feeds),
      heap: heap(stats1) - heap(stats0),
      copied: copied / total,
      cpu: (cpu.user + cpu.system) / total,
      user: cpu.user / total,
    };
  };
  const r = await round(proxyPort);
  const direct = await round(upstreamPort);
  console.log(
    `${connections} connections, ${total} calls (${args.copy ? 'calls copied' : 'calls in place'}): ${r.feeds.toFixed(2)} receives fed to loch's readers per call ` +
      `(${r.fedBytes.toFixed(0)} B each), ${r.heap} heap receives; bytes copied into readers per call ` +
      `${r.copied.toFixed(0)} (direct, the client's own: ${direct.copied.toFixed(0)}; loch's: ${(r.copied - direct.copied).toFixed(0)}); ` +
      `process CPU ${r.cpu.toFixed(1)} us per call (user ${r.user.toFixed(1)}; clients and upstream included)`,
  );
  const rounds = Number(args.ab);
  if (other !== undefined && rounds > 0) {
    const a: { cpu: number; user: number }[] = [];
    const b: { cpu: number; user: number }[] = [];
    for (let i = 0; i < rounds; i++) {
      a.push(await round(proxyPort));
      b.push(await round(other.port));
    }
    const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;
    const show = (xs: { cpu: number; user: number }[]) =>
      `CPU ${xs.map((x) => x.cpu.toFixed(1)).join('/')} (median ${median(xs.map((x) => x.cpu)).toFixed(1)}), ` +
      `user median ${median(xs.map((x) => x.user)).toFixed(1)}`;
    console.log(`A/B over ${rounds} interleaved rounds, us per call of the whole process:`);
    console.log(`  ${args.copy ? 'copied  ' : 'in place'}: ${show(a)}`);
    console.log(`  ${args.copy ? 'in place' : 'copied  '}: ${show(b)}`);
  }
  FrameReader.prototype.feed = feed;
  FrameReader.prototype.feedChunk = feedChunk;
  proto.append = append;
}
await thrift.close();
await other?.thrift.close();
upstreams.closeAll();
upstream.close();
process.exit(0);
