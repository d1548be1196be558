/**
 * `loch run` forwarding to a multiplexed Thrift upstream (`multiplex = true`), end to end on
 * every available driver. The upstream is a @loch/thrift server that runs a connection's calls
 * concurrently and answers them out of order (it holds each batch of calls and answers the last
 * first); python3-thrift THeader and npm thrift framed clients and @loch/thrift TTHeader
 * clients call through loch. Checked: every caller gets its own answer with its own seq id
 * while the upstream sees one connection; a client that pipelines on one connection gets its
 * replies in its order (max_pipelined_calls); ONEWAY calls reach the upstream.
 */
import * as net from 'node:net';
import { createWriter, encodeFrame, MessageType, type ThriftClient, TTHeaderIntKey } from '@loch/thrift';
import { createRuntime, type Runtime } from '@loch/uring-runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  hasPython,
  lochCall,
  lochClient,
  NpmClient,
  pythonClient,
  readText,
  writeText,
} from '../thrift/peers.js';
import { availableDrivers, freePort, type Loch, startLoch, tempDir, waitConnectable } from './harness.js';
import { startReorderingUpstream } from './reordering-upstream.js';

const drivers = availableDrivers();

/**
 * The reordering upstream answering "M:<framing>:<protocol>:<method>:<text>", and keeping the
 * text of each ONEWAY call.
 */
async function reorderingUpstream(runtime: Runtime) {
  const oneways: string[] = [];
  const up = await startReorderingUpstream(runtime, (req) => {
    const text = readText(req.reader());
    if (req.header.type === MessageType.ONEWAY) {
      oneways.push(text);
      return undefined;
    }
    const f = req.frame;
    return writeText(`M:${f.framing}:${f.protocol}:${req.header.name}:${text}`, 0);
  });
  return { ...up, oneways };
}

describe.each(drivers)('loch to a multiplexed thrift upstream (driver %s)', (driver) => {
  let runtime: Runtime;
  let up: Awaited<ReturnType<typeof reorderingUpstream>>;
  let loch: Loch;
  let port: number;
  const clients: { close(): unknown }[] = [];

  beforeAll(async () => {
    runtime = await createRuntime({ driver: 'legacy', log: () => undefined });
    up = await reorderingUpstream(runtime);
    port = await freePort();
    loch = await startLoch(
      tempDir('loch-thrift-mux-'),
      `
[runtime]
workers = 1

[servers.rpc]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:${port}" }
max_pipelined_calls = 16
route = { upstreams = [{ endpoint = "127.0.0.1:${up.port}", multiplex = { max_calls = 64 } }] }
`,
      { LOCH_DRIVER: driver },
    );
    await waitConnectable({ port });
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await loch?.stop();
    await up?.close();
    await runtime?.close();
  });

  async function loc(options: Parameters<typeof lochClient>[2]): Promise<ThriftClient> {
    const c = await lochClient(port, runtime, options);
    clients.push(c);
    return c;
  }

  it('answers concurrent callers on many connections over one upstream connection, answered out of order', async () => {
    up.state.batch = 8;
    const npm = await Promise.all([0, 1, 2, 3].map(() => NpmClient.connect(port)));
    clients.push(...npm);
    const tt = await Promise.all(
      [0, 1, 2, 3].map(() =>
        loc({
          framing: 'ttheader',
          protocol: 'compact',
          intHeaders: new Map([[TTHeaderIntKey.TO_SERVICE, 'S']]),
        }),
      ),
    );
    // Every caller's first call has seq id 1 (or 0): loch must tell them apart upstream.
    const answers = await Promise.all([
      ...npm.map((c, i) => c.call('get', `n${i}`)),
      ...tt.map((c, i) => lochCall(c, 'get', `t${i}`)),
    ]);
    expect(answers).toEqual([
      ...[0, 1, 2, 3].map((i) => `M:framed:binary:get:n${i}`),
      ...[0, 1, 2, 3].map((i) => `M:ttheader:compact:get:t${i}`),
    ]);
    // One connection per framing, each carrying four calls at once.
    expect(up.connections()).toBe(2);
  });

  it('gives a client that pipelines on one connection its replies in its order', async () => {
    up.state.batch = 6;
    const s = net.connect(port, '127.0.0.1');
    clients.push({ close: () => s.destroy() });
    await new Promise((resolve) => s.once('connect', resolve));
    const frames = [1, 2, 3, 4, 5, 6].map((seq) => {
      const w = createWriter('binary');
      w.writeMessageBegin('pipe', MessageType.CALL, seq);
      writeText(`p${seq}`)(w);
      return encodeFrame({ framing: 'framed', protocol: 'binary' }, w.finishCopy());
    });
    s.write(Buffer.concat(frames));
    const seqIds = await new Promise<number[]>((resolve) => {
      const got: number[] = [];
      let buf = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
          const frame = buf.subarray(4, 4 + buf.readUInt32BE(0));
          buf = buf.subarray(4 + frame.length);
          got.push(frame.readInt32BE(8 + frame.readInt32BE(4)));
          if (got.length === 6) resolve(got);
        }
      });
    });
    // The upstream answered p6 first; loch still replies in the client's order.
    expect(seqIds).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it.skipIf(!hasPython)(
    'forwards python3-thrift THeader calls (binary and compact) over the multiplexed connection',
    async () => {
      up.state.batch = 1;
      expect(await pythonClient(port, 'header', 'binary', 'hello', ['a', 'b'])).toEqual([
        'M:theader:binary:hello:a',
        'M:theader:binary:hello:b',
      ]);
      expect(await pythonClient(port, 'header', 'compact', 'hello', ['c'])).toEqual([
        'M:theader:compact:hello:c',
      ]);
    },
  );

  it('delivers ONEWAY calls through the multiplexed connection', async () => {
    up.state.batch = 1;
    const c = await NpmClient.connect(port);
    clients.push(c);
    c.oneway('note', 'o1');
    // A call after it on the same connection: by its answer the oneway went ahead of it.
    expect(await c.call('get', 'after')).toBe('M:framed:binary:get:after');
    expect(up.oneways).toContain('o1');
  });
});
