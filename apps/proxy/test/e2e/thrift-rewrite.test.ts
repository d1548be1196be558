/**
 * `loch run` rewriting Thrift calls per route, end to end on every available driver: a
 * multiplexed method renamed ("Calc:add" -> "Calc:sum") with the caller's name back in the
 * reply (checked by @loch/thrift's client, which refuses a reply to another name, and on the
 * wire when the upstream answers the bare name as Apache's TMultiplexedProcessor does), info
 * headers set, added and removed (python3-thrift THeader client), a route taken by a header
 * value (match_headers), unframed clients accepted by `accept_unframed` (npm thrift buffered),
 * and a route that speaks
 * TTHeader compact upstream to framed binary (npm thrift) and THeader binary (python) clients;
 * TTHeader integer info headers (@loch/thrift TTHeader clients): routes taken by their values
 * (match_int_headers, Kitex names and numbers) and headers set, added and removed (int_headers).
 * The upstream is a @loch/thrift server that answers what it saw.
 */
import * as net from 'node:net';
import {
  createWriter,
  encodeFrame,
  MessageType,
  readMessageHeader,
  type ThriftRequest,
  ThriftServer,
  TTHeaderIntKey,
} from '@loch/thrift';
import { createRuntime, type Runtime, TcpListener } from '@loch/uring-runtime';
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

const drivers = availableDrivers();

/**
 * Answers "R:<framing>:<protocol>:<name>:<text>:<headers k=v;...>" (TTHeader integer headers
 * after the string ones as #<key>=v), named as called, or by the bare method when the text is
 * "bare".
 */
async function seeingUpstream(runtime: Runtime) {
  const server = new ThriftServer({
    call(req: ThriftRequest) {
      const text = readText(req.reader());
      const f = req.frame;
      const headers = [
        ...[...f.headers].map(([k, v]) => `${k}=${v}`).sort(),
        ...[...f.intHeaders].sort((a, b) => a[0] - b[0]).map(([k, v]) => `#${k}=${v}`),
      ].join(';');
      const name =
        text === 'bare' ? req.header.name.slice(req.header.name.indexOf(':') + 1) : req.header.name;
      const w = createWriter(f.protocol);
      w.writeMessageBegin(name, MessageType.REPLY, req.header.seqId);
      writeText(`R:${f.framing}:${f.protocol}:${req.header.name}:${text}:${headers}`, 0)(w);
      w.writeMessageEnd();
      return { payload: w.finishCopy() };
    },
  });
  const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime });
  const address = listener.localAddress;
  void server.serve(listener);
  return { port: address.family === 'unix' ? 0 : address.port, close: () => server.close() };
}

/** Sends one framed binary call on a raw socket and resolves the reply's message header. */
async function rawCall(port: number, name: string, text: string) {
  const s = net.connect(port, '127.0.0.1');
  try {
    const w = createWriter('binary');
    w.writeMessageBegin(name, MessageType.CALL, 77);
    writeText(text)(w);
    s.write(encodeFrame({ framing: 'framed', protocol: 'binary' }, w.finishCopy()));
    const frame = await new Promise<Uint8Array>((resolve, reject) => {
      let buf = Buffer.alloc(0);
      s.on('error', reject);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0))
          resolve(new Uint8Array(buf.subarray(4, 4 + buf.readUInt32BE(0))));
      });
    });
    return readMessageHeader('binary', frame);
  } finally {
    s.destroy();
  }
}

describe.each(drivers)('loch rewriting thrift calls per route (driver %s)', (driver) => {
  let runtime: Runtime;
  let up: Awaited<ReturnType<typeof seeingUpstream>>;
  let loch: Loch;
  let port: number;
  let bufferedPort: number;
  let ttPort: number;
  const clients: { close(): unknown }[] = [];

  beforeAll(async () => {
    runtime = await createRuntime({ driver: 'legacy', log: () => undefined });
    up = await seeingUpstream(runtime);
    port = await freePort();
    bufferedPort = await freePort();
    ttPort = await freePort();
    loch = await startLoch(
      tempDir('loch-thrift-rewrite-'),
      `
[runtime]
workers = 1

[servers.rpc]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:${port}" }

[[servers.rpc.routes]]
service = "Calc"
rename_method = { "Calc:add" = "Calc:sum" }
headers = { set = { caller = "loch" }, add = { tenant = "default" }, remove = ["secret"] }
upstream_framing = "theader"
upstreams = [{ endpoint = "127.0.0.1:${up.port}" }]

[servers.buffered]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:${bufferedPort}" }
accept_unframed = true

[[servers.buffered.routes]]
method = "toFramed"
upstream_framing = "framed"
upstreams = [{ endpoint = "127.0.0.1:${up.port}" }]

[[servers.buffered.routes]]
path = "/"
upstreams = [{ endpoint = "127.0.0.1:${up.port}" }]

[servers.tt]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:${ttPort}" }

[[servers.tt.routes]]
match_int_headers = { TO_SERVICE = "payments", to_method = "Charge" }
int_headers = { set = { from_service = "loch" }, add = { 300 = "extra", env = "prod" }, remove = ["log_id"] }
upstreams = [{ endpoint = "127.0.0.1:${up.port}" }]

[[servers.tt.routes]]
match_int_headers = { 21 = "1" }
headers = { set = { stress = "yes" } }
upstreams = [{ endpoint = "127.0.0.1:${up.port}" }]

[[servers.tt.routes]]
method = "toTT"
upstream_framing = "ttheader"
int_headers = { add = { to_method = "toTT" } }
upstreams = [{ endpoint = "127.0.0.1:${up.port}" }]

[[servers.rpc.routes]]
match_headers = { tenant = "gold" }
headers = { set = { routed = "gold" } }
upstreams = [{ endpoint = "127.0.0.1:${up.port}" }]

[[servers.rpc.routes]]
method = "toCompact"
upstream_framing = "ttheader"
upstream_protocol = "compact"
upstreams = [{ endpoint = "127.0.0.1:${up.port}", multiplex = true }]
`,
      { LOCH_DRIVER: driver },
    );
    await waitConnectable({ port });
    await waitConnectable({ port: bufferedPort });
    await waitConnectable({ port: ttPort });
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await loch?.stop();
    await up?.close();
    await runtime?.close();
  });

  it('renames a multiplexed method upstream and answers under the caller name', async () => {
    const c = await lochClient(port, runtime, { framing: 'framed', protocol: 'binary' });
    clients.push(c);
    // @loch/thrift's client refuses a reply named otherwise than its call.
    expect(await lochCall(c, 'Calc:add', 'x')).toBe('R:theader:binary:Calc:sum:x:caller=loch;tenant=default');
    expect(await lochCall(c, 'Calc:mul', 'y')).toBe('R:theader:binary:Calc:mul:y:caller=loch;tenant=default');
    // An upstream answering the bare method ("sum") gets the caller's bare one back.
    expect((await rawCall(port, 'Calc:add', 'bare')).name).toBe('add');
  });

  it.skipIf(!hasPython)('sets, adds and removes THeader info headers of python3-thrift calls', async () => {
    expect(
      await pythonClient(port, 'header', 'binary', 'Calc:add', ['p'], {
        secret: 's',
        tenant: 't1',
        caller: 'me',
      }),
    ).toEqual(['R:theader:binary:Calc:sum:p:caller=loch;tenant=t1']);
  });

  it.skipIf(!hasPython)('routes by a header value (match_headers) before method and service', async () => {
    expect(await pythonClient(port, 'header', 'binary', 'hello', ['g'], { tenant: 'gold' })).toEqual([
      'R:theader:binary:hello:g:routed=gold;tenant=gold',
    ]);
    // Without the header no route takes "hello": UNKNOWN_METHOD (1).
    const [line] = await pythonClient(port, 'header', 'binary', 'hello', ['s'], { tenant: 'silver' });
    expect(line).toMatch(/^EXCEPTION 1 loch: no route for method "hello"/);
  });

  it('accepts unframed (buffered) npm thrift clients with accept_unframed, forwarded unframed or framed', async () => {
    for (const protocol of ['binary', 'compact'] as const) {
      const c = await NpmClient.connect(bufferedPort, protocol, 'buffered');
      clients.push(c);
      expect(await Promise.all([c.call('plain', 'u1'), c.call('toFramed', 'u2')])).toEqual([
        `R:unframed:${protocol}:plain:u1:`,
        `R:framed:${protocol}:toFramed:u2:`,
      ]);
    }
  });

  it('speaks TTHeader compact upstream to framed binary and THeader clients', async () => {
    const npm = await NpmClient.connect(port);
    clients.push(npm);
    expect(await npm.call('toCompact', 'n')).toBe('R:ttheader:compact:toCompact:n:');
    expect(await Promise.all(['a', 'b', 'c'].map((t) => npm.call('toCompact', t)))).toEqual(
      ['a', 'b', 'c'].map((t) => `R:ttheader:compact:toCompact:${t}:`),
    );
    if (hasPython)
      expect(await pythonClient(port, 'header', 'binary', 'toCompact', ['h'], { tenant: 't2' })).toEqual([
        'R:ttheader:compact:toCompact:h:tenant=t2',
      ]);
  });

  it('routes TTHeader calls by integer header values and rewrites integer headers (Kitex names and numbers)', async () => {
    const kitex = (ints: [number, string][]) =>
      lochClient(ttPort, runtime, { framing: 'ttheader', protocol: 'binary', intHeaders: new Map(ints) });
    const payments = await kitex([
      [TTHeaderIntKey.LOG_ID, 'log-1'],
      [TTHeaderIntKey.FROM_SERVICE, 'web'],
      [TTHeaderIntKey.TO_SERVICE, 'payments'],
      [TTHeaderIntKey.TO_METHOD, 'Charge'],
      [TTHeaderIntKey.ENV, 'staging'],
    ]);
    clients.push(payments);
    // LOG_ID (2) removed, FROM_SERVICE (3) set, ENV (10) kept as sent (add), key 300 added.
    expect(await lochCall(payments, 'Charge', 'c')).toBe(
      'R:ttheader:binary:Charge:c:#3=loch;#6=payments;#9=Charge;#10=staging;#300=extra',
    );
    const stress = await kitex([[TTHeaderIntKey.STRESS_TAG, '1']]);
    clients.push(stress);
    expect(await lochCall(stress, 'Anything', 's')).toBe('R:ttheader:binary:Anything:s:stress=yes;#21=1');
    // Another service's call matches no route: UNKNOWN_METHOD.
    const orders = await kitex([
      [TTHeaderIntKey.TO_SERVICE, 'orders'],
      [TTHeaderIntKey.TO_METHOD, 'Charge'],
    ]);
    clients.push(orders);
    await expect(lochCall(orders, 'Charge', 'o')).rejects.toThrow(/no route for method "Charge"/);
    // A framed client's call gets integer headers added on its way to a TTHeader upstream.
    const npm = await NpmClient.connect(ttPort);
    clients.push(npm);
    expect(await npm.call('toTT', 'n')).toBe('R:ttheader:binary:toTT:n:#9=toTT');
  });
});
