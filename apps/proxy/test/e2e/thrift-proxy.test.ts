/**
 * `loch run` as a Thrift proxy, end to end on every available driver: npm thrift servers
 * (framed binary, behind Monolake's `route = { load_balancer, upstreams }`), a python3-thrift
 * THeader server and a @loch/thrift server (any framing) as upstreams; npm thrift (framed binary
 * and compact), python3-thrift (framed, THeader) and @loch/thrift (TTHeader, THeader) as
 * clients. Round robin over two upstreams, pooled connections, routes by method, by TTHeader
 * TO_SERVICE, by the `isn` header and by TMultiplexed names, oneway calls, an upstream that
 * never answers (timeout) or dies mid-call (exception, others unaffected), a route-less call
 * (UNKNOWN_METHOD), and garbage or unframed input (only that connection closed).
 */
import * as net from 'node:net';
import { join } from 'node:path';
import {
  TApplicationException,
  TApplicationExceptionType,
  THeaderTransform,
  ThriftClient,
  TTHeaderIntKey,
} from '@loch/thrift';
import { createRuntime, type Runtime, UnixStream } from '@loch/uring-runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  hasPython,
  lochCall,
  lochClient,
  lochUpstream,
  misbehavingUpstream,
  NpmClient,
  type NpmUpstream,
  npmUpstream,
  type PythonUpstream,
  pythonClient,
  pythonUpstream,
  readText,
  writeText,
} from '../thrift/peers.js';
import {
  availableDrivers,
  freePort,
  type Loch,
  rawExchange,
  resettingUpstream,
  silentUpstream,
  startLoch,
  tempDir,
  waitConnectable,
} from './harness.js';

const drivers = availableDrivers();

describe.each(drivers)('loch as a thrift proxy (driver %s)', (driver) => {
  let runtime: Runtime;
  let a: NpmUpstream;
  let b: NpmUpstream;
  let l: Awaited<ReturnType<typeof lochUpstream>>;
  let py: PythonUpstream | undefined;
  let silent: Awaited<ReturnType<typeof silentUpstream>>;
  let crasher: Awaited<ReturnType<typeof resettingUpstream>>;
  let raw: Awaited<ReturnType<typeof misbehavingUpstream>>;
  let loch: Loch;
  let port: number;
  let sock: string;
  const clients: { close(): unknown }[] = [];

  beforeAll(async () => {
    runtime = await createRuntime({ driver: 'legacy', log: () => undefined });
    a = await npmUpstream('A');
    b = await npmUpstream('B');
    l = await lochUpstream('L', runtime);
    if (hasPython) py = await pythonUpstream('header', 'P');
    silent = await silentUpstream();
    crasher = await resettingUpstream();
    raw = await misbehavingUpstream();
    port = await freePort();
    const dir = tempDir('loch-thrift-e2e-');
    sock = join(dir, 'strict.sock');
    loch = await startLoch(
      dir,
      `
[runtime]
workers = 1

[servers.rpc]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:${port}" }
timeouts = { upstream_connect = "1s", upstream_call = "10s" }    # long: a late machine must not time calls out
route = { load_balancer = "round_robin", upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:${a.port}" } }, { endpoint = "127.0.0.1:${b.port}" }] }

[[servers.rpc.routes]]
method = "down"
upstreams = [{ endpoint = "127.0.0.1:${await freePort()}" }]

[[servers.rpc.routes]]
method = "slow"
timeouts = { upstream_call = "700ms" }
upstreams = [{ endpoint = "127.0.0.1:${silent.port}" }]

[[servers.rpc.routes]]
method = ["crash", "crash2"]
upstreams = [{ endpoint = "127.0.0.1:${crasher.port}" }]

[[servers.rpc.routes]]
method = ["extra", "wrongseq", "fine", "appex"]
upstreams = [{ endpoint = "127.0.0.1:${raw.port}" }]

[[servers.rpc.routes]]
service = "Loch"
upstreams = [{ endpoint = "127.0.0.1:${l.port}" }]

[[servers.rpc.routes]]
service = "Py"
upstreams = [{ endpoint = "127.0.0.1:${py?.port ?? l.port}" }]

[servers.strict]
name = "strict (Monolake's routes form, a unix listener)"
proxy_type = "thrift"
listener = { type = "unix", value = "${sock}" }
timeout = { server_keepalive_timeout_sec = 2, server_message_timeout_sec = 1 }

[[servers.strict.routes]]
method = "only"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:${a.port}" } }]

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${await freePort()}" }
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${a.port}" }]
`,
      { LOCH_DRIVER: driver },
    );
    await waitConnectable({ port });
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await loch?.stop();
    await Promise.all([
      a?.close(),
      b?.close(),
      l?.close(),
      py?.close(),
      silent?.close(),
      crasher?.close(),
      raw?.close(),
    ]);
    await runtime?.close();
  });

  async function npm(protocol: 'binary' | 'compact' = 'binary'): Promise<NpmClient> {
    const c = await NpmClient.connect(port, protocol);
    clients.push(c);
    return c;
  }

  async function loc(options: Parameters<typeof lochClient>[2]): Promise<ThriftClient> {
    const c = await lochClient(port, runtime, options);
    clients.push(c);
    return c;
  }

  it('forwards framed binary calls round robin over pooled upstream connections', async () => {
    const client = await npm();
    const answers: string[] = [];
    for (let i = 0; i < 6; i++) answers.push(await client.call('echo', `m${i}`));
    expect(answers).toEqual(['A:echo:m0', 'B:echo:m1', 'A:echo:m2', 'B:echo:m3', 'A:echo:m4', 'B:echo:m5']);
    // Calls that follow each other reuse one connection per upstream.
    expect(a.connections()).toBe(1);
    expect(b.connections()).toBe(1);
    // Concurrent calls on one client connection are answered in order, each with its seq id.
    const many = await Promise.all(['x', 'y', 'z', 'w'].map((t) => client.call('echo', t)));
    expect(many.map((s) => s.split(':').slice(1).join(':'))).toEqual([
      'echo:x',
      'echo:y',
      'echo:z',
      'echo:w',
    ]);
  });

  it('routes TTHeader calls by TO_SERVICE and speaks TTHeader upstream', async () => {
    const client = await loc({
      framing: 'ttheader',
      protocol: 'binary',
      intHeaders: new Map([[TTHeaderIntKey.TO_SERVICE, 'Loch']]),
    });
    expect(await lochCall(client, 'getUser', 'u1')).toBe('L:ttheader:binary:getUser:u1');
    const compact = await loc({
      framing: 'ttheader',
      protocol: 'compact',
      intHeaders: new Map([[TTHeaderIntKey.TO_SERVICE, 'Loch']]),
    });
    expect(await lochCall(compact, 'getUser', 'u2')).toBe('L:ttheader:compact:getUser:u2');
  });

  it('routes THeader calls by the isn header and TMultiplexed names by their service', async () => {
    const header = await loc({
      framing: 'theader',
      protocol: 'compact',
      headers: new Map([['isn', 'Loch']]),
    });
    expect(await lochCall(header, 'ping', 'h')).toBe('L:theader:compact:ping:h');
    // npm thrift, framed compact, multiplexed name: routed to service Loch, name kept.
    const client = await npm('compact');
    expect(await client.call('Loch:add', '1+1')).toBe('L:framed:compact:Loch:add:1+1');
  });

  it('passes THeader info headers both ways and keeps zlib transforms', async () => {
    const client = await loc({
      framing: 'theader',
      protocol: 'binary',
      headers: new Map([
        ['isn', 'Loch'],
        ['tenant', 't-1'],
      ]),
      transforms: [THeaderTransform.ZLIB],
    });
    const res = await client.call('zip', writeText('z'.repeat(2000)));
    expect(readText(res!.reader())).toBe(`L:theader:binary:zip:${'z'.repeat(2000)}`);
    expect(res!.frame.headers.get('seen-tenant')).toBe('t-1');
    expect(res!.frame.transforms).toEqual([THeaderTransform.ZLIB]);
  });

  it('carries npm thrift THeader clients (binary and compact), routed by their isn header', async () => {
    for (const protocol of ['binary', 'compact'] as const) {
      const client = await NpmClient.connect(port, protocol, 'header');
      clients.push(client);
      client.output.setWriteHeader('isn', 'Loch');
      expect(await client.call('hdr', protocol)).toBe(`L:theader:${protocol}:hdr:${protocol}`);
    }
  });

  it.skipIf(!hasPython)('carries python3-thrift clients and servers (framed binary, THeader)', async () => {
    expect(await pythonClient(port, 'framed', 'binary', 'echo', ['p1', 'p2'])).toEqual([
      expect.stringMatching(/^[AB]:echo:p1$/),
      expect.stringMatching(/^[AB]:echo:p2$/),
    ]);
    // THeader from python, routed by its isn header to the python THeader server.
    expect(await pythonClient(port, 'header', 'binary', 'hello', ['t1', 't2'], { isn: 'Py' })).toEqual([
      'P:hello:t1',
      'P:hello:t2',
    ]);
    expect(await pythonClient(port, 'header', 'compact', 'hello', ['t3'], { isn: 'Py' })).toEqual([
      'P:hello:t3',
    ]);
  });

  it('forwards oneway calls without a reply', async () => {
    const client = await npm();
    client.oneway('note', 'n1');
    // The next call on the connection is answered only after the oneway was forwarded.
    await client.call('echo', 'after');
    await expect.poll(() => [...a.oneways, ...b.oneways]).toEqual(['n1']);
  });

  it('answers a refused upstream with INTERNAL_ERROR naming it; the connection goes on', async () => {
    const client = await npm();
    const error = await client.call('down', 'd').catch((e: unknown) => e);
    expect(error).toMatchObject({ type: TApplicationExceptionType.INTERNAL_ERROR });
    expect((error as Error).message).toMatch(
      /^loch: upstream 127\.0\.0\.1:\d+: connect failed: .*\(ERR_LOCH_THRIFT_UPSTREAM_REFUSED\)$/,
    );
    expect(await client.call('echo', 'next')).toMatch(/^[AB]:echo:next$/);
    await expect
      .poll(() => loch.stdout(), { timeout: 5000 })
      .toMatch(/ rpc 127\.0\.0\.1:\d+ CALL down 502 0 /);
  });

  it('answers a slow upstream with INTERNAL_ERROR naming the timeout; the connection goes on', async () => {
    const client = await npm();
    const error = await client.call('slow', 's').catch((e: unknown) => e);
    expect(error).toMatchObject({ type: TApplicationExceptionType.INTERNAL_ERROR });
    expect((error as Error).message).toMatch(/loch: upstream .*upstream_call timeout \(700 ms\)/);
    expect(await client.call('echo', 'still')).toMatch(/^[AB]:echo:still$/);
  });

  it('answers an upstream that dies mid-call with INTERNAL_ERROR; other calls are not disturbed', async () => {
    const client = await npm();
    const other = await npm();
    const [dead, fine] = await Promise.all([
      client.call('crash', 'c').catch((e: unknown) => e),
      other.call('echo', 'ok'),
    ]);
    expect(dead).toMatchObject({ type: TApplicationExceptionType.INTERNAL_ERROR });
    expect((dead as Error).message).toMatch(/loch: upstream .*(closed|reset|ECONNRESET)/);
    expect(fine).toMatch(/^[AB]:echo:ok$/);
    // Same caller, same connection: still served.
    expect(await client.call('echo', 'again')).toMatch(/^[AB]:echo:again$/);
    await loch.waitFor(/warn .*rpc: crash: upstream/);
  });

  it('reuses an upstream connection only when exactly one reply with the seq id of the call was read', async () => {
    const client = await npm();
    expect(await client.call('fine', '1')).toBe('raw:fine');
    expect(await client.call('fine', '2')).toBe('raw:fine');
    expect(raw.connections()).toBe(1);
    // Bytes past the reply: the reply is relayed, the connection is not reused.
    expect(await client.call('extra', '3')).toBe('raw:extra');
    expect(await client.call('fine', '4')).toBe('raw:fine');
    expect(raw.connections()).toBe(2);
    // A reply to another call: the caller gets an exception, the connection is dropped.
    const error = await client.call('wrongseq', '5').catch((e: unknown) => e);
    expect(error).toMatchObject({ type: TApplicationExceptionType.INTERNAL_ERROR });
    expect((error as Error).message).toMatch(
      /the reply has seq id \d+, the call \d+ \(ERR_LOCH_THRIFT_UPSTREAM_PROTOCOL\)/,
    );
    expect(await client.call('fine', '6')).toBe('raw:fine');
    expect(raw.connections()).toBe(3);
    // An upstream's own EXCEPTION message is relayed as it is, and the connection stays pooled.
    const relayed = await client.call('appex', '7').catch((e: unknown) => e);
    expect(relayed).toMatchObject({
      type: TApplicationExceptionType.WRONG_METHOD_NAME,
      message: 'raw says no',
    });
    expect(await client.call('fine', '8')).toBe('raw:fine');
    expect(raw.connections()).toBe(3);
  });

  it('answers UNKNOWN_METHOD when no route matches (Monolake routes form on a unix listener)', async () => {
    const strict = new ThriftClient(await UnixStream.connect({ path: sock, runtime }), { timeout: 5000 });
    clients.push(strict);
    expect(await lochCall(strict, 'only', 'o')).toBe('A:only:o');
    const error = await lochCall(strict, 'other', 'x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TApplicationException);
    expect(error).toMatchObject({ type: TApplicationExceptionType.UNKNOWN_METHOD });
    expect((error as Error).message).toContain('no route for method "other"');
  });

  it('closes a client connection idle past server_keepalive, or slow past server_message', async () => {
    /** Connects to the strict server, writes `bytes`, resolves the ms until loch closes it. */
    const closedAfter = (bytes: Buffer) =>
      new Promise<number>((resolve, reject) => {
        const started = Date.now();
        const s = net.connect(sock, () => s.write(bytes));
        s.on('error', reject);
        s.on('data', () => {});
        s.on('close', () => resolve(Date.now() - started));
      });
    const [idle, partial] = await Promise.all([
      closedAfter(Buffer.alloc(0)),
      closedAfter(Buffer.from([0, 0, 0, 40, 0x80, 0x01, 0, 1])), // 8 of 44 bytes
    ]);
    // Never before its timeout; the upper bound is loose (a loaded machine is late, not early).
    expect(partial).toBeGreaterThanOrEqual(950);
    expect(idle).toBeGreaterThanOrEqual(1_950);
    expect(idle).toBeLessThan(15_000);
    expect(partial).toBeLessThan(idle);
  });

  it('closes only the connection that sends garbage or unframed binary', async () => {
    const client = await npm();
    const mark = loch.stderr().length;
    expect(await rawExchange(port, Buffer.from('GET / HTTP/1.1\r\n\r\n'), 2000)).toBe('');
    // A framed length of 2 GiB: over max_frame_size.
    expect(await rawExchange(port, Buffer.from([0x7f, 0xff, 0xff, 0xff, 0x80, 0x01, 0, 1]), 2000)).toBe('');
    // Unframed strict binary: refused by name before it is buffered.
    expect(await rawExchange(port, Buffer.from([0x80, 0x01, 0x00, 0x01, 0, 0, 0, 4]), 2000)).toBe('');
    // A whole frame whose message header is garbage (a negative name length).
    expect(
      await rawExchange(
        port,
        Buffer.from([0, 0, 0, 12, 0x80, 0x01, 0, 1, 0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 0]),
        2000,
      ),
    ).toBe('');
    await loch.waitFor(/ERR_THRIFT_NEGATIVE_SIZE/, mark);
    await loch.waitFor(/unknown framing/, mark);
    await loch.waitFor(/unframed binary is not accepted here/, mark);
    await loch.waitFor(/ERR_THRIFT_FRAME_SIZE/, mark);
    expect(await client.call('echo', 'alive')).toMatch(/^[AB]:echo:alive$/);
  });

  it('writes an access-log line per call', async () => {
    const lines = [
      / rpc 127\.0\.0\.1:\d+ CALL echo 200 \d+ 127\.0\.0\.1:\d+ /,
      / rpc 127\.0\.0\.1:\d+ CALL slow 504 0 /,
      / rpc 127\.0\.0\.1:\d+ CALL crash 502 0 /,
      / rpc 127\.0\.0\.1:\d+ ONEWAY note 200 0 /,
    ];
    for (const line of lines) await expect.poll(() => loch.stdout(), { timeout: 5000 }).toMatch(line);
  });
});
