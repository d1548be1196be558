/**
 * `max_header_size` / `max_header_count` of a thrift server (issue 15's "max header size"), end to
 * end on every available driver: npm thrift and python3-thrift THeader clients pass at the
 * defaults (64 KiB, 1,000); a raw peer whose THeader header block is one byte over the limit, or
 * holds 1,001 entries, is closed with ERR_THRIFT_HEADER_SIZE in the log while the other
 * connections of the one worker go on; the configured keys apply (a smaller server); an upstream
 * reply over the limits fails that call with INTERNAL_ERROR and the next call is answered.
 */
import {
  createReply,
  encodeFrame,
  TApplicationException,
  TApplicationExceptionType,
  type ThriftClient,
  ThriftServer,
} from '@loch/thrift';
import { createRuntime, type Runtime, TcpListener } from '@loch/uring-runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  hasPython,
  lochCall,
  lochClient,
  lochUpstream,
  NpmClient,
  pythonClient,
  readText,
  writeText,
} from '../thrift/peers.js';
import {
  availableDrivers,
  freePort,
  type Loch,
  rawExchange,
  startLoch,
  tempDir,
  waitConnectable,
} from './harness.js';

const drivers = availableDrivers();

/** A strict binary CALL `echo`, seq id 1, args { 1: "x" }. */
const CALL = new Uint8Array([
  0x80, 1, 0, 1, 0, 0, 0, 4, 0x65, 0x63, 0x68, 0x6f, 0, 0, 0, 1, 11, 0, 1, 0, 0, 0, 1, 0x78, 0,
]);

/** A THeader call whose header block holds `content` bytes before padding (one header `k`). */
function theaderWithBlock(content: number): Buffer {
  for (let value = Math.max(1, content - 20); value <= content; value++) {
    const f = encodeFrame(
      { framing: 'theader', protocol: 'binary', seqId: 1, headers: new Map([['k', 'v'.repeat(value)]]) },
      CALL,
    );
    const block = ((f[12]! << 8) | f[13]!) * 4;
    if (f.lastIndexOf(0x76, 14 + block - 1) + 1 - 14 === content) return Buffer.from(f);
  }
  throw new Error(`no block of ${content} bytes`);
}

/** A THeader call with `n` string headers. */
function theaderWithKeys(n: number): Buffer {
  const headers = new Map<string, string>();
  for (let i = 0; i < n; i++) headers.set(`k${i}`, '');
  return Buffer.from(encodeFrame({ framing: 'theader', protocol: 'binary', seqId: 1, headers }, CALL));
}

/** An upstream (THeader) whose `fat` reply carries 1,001 headers and `big` one of 65,537 bytes. */
async function fatUpstream(runtime: Runtime): Promise<{ port: number; close(): Promise<void> }> {
  const server = new ThriftServer({
    call(req) {
      const name = req.header.name;
      const reply = createReply(req, writeText(`fat:${name}:${readText(req.reader())}`, 0));
      const headers = new Map<string, string>();
      if (name === 'fat') for (let i = 0; i < 1001; i++) headers.set(`h${i}`, '');
      if (name === 'big') headers.set('k', 'v'.repeat(65_537 - 8));
      return { ...reply, headers };
    },
  });
  const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime });
  const address = listener.localAddress;
  void server.serve(listener);
  return { port: address.family === 'unix' ? 0 : address.port, close: () => server.close() };
}

describe.each(drivers)('thrift max_header_size / max_header_count (driver %s)', (driver) => {
  let runtime: Runtime;
  let l: Awaited<ReturnType<typeof lochUpstream>>;
  let fat: Awaited<ReturnType<typeof fatUpstream>>;
  let loch: Loch;
  let port: number;
  let small: number;
  const clients: { close(): unknown }[] = [];

  beforeAll(async () => {
    runtime = await createRuntime({ driver: 'legacy', log: () => undefined });
    l = await lochUpstream('L', runtime);
    fat = await fatUpstream(runtime);
    port = await freePort();
    small = await freePort();
    const dir = tempDir('loch-thrift-header-');
    loch = await startLoch(
      dir,
      `
[runtime]
workers = 1

[servers.rpc]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:${port}" }
timeouts = { upstream_connect = "1s", upstream_call = "10s" }

[[servers.rpc.routes]]
service = "Fat"
upstreams = [{ endpoint = "127.0.0.1:${fat.port}" }]

[[servers.rpc.routes]]
path = "/"
upstreams = [{ endpoint = "127.0.0.1:${l.port}" }]

[servers.small]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:${small}" }
max_header_size = 256
max_header_count = 4
route = { upstreams = [{ endpoint = "127.0.0.1:${l.port}" }] }
`,
      { LOCH_DRIVER: driver },
    );
    await waitConnectable({ port });
    await waitConnectable({ port: small });
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await loch?.stop();
    await Promise.all([l?.close(), fat?.close()]);
    await runtime?.close();
  });

  async function loc(at: number, headers: ReadonlyMap<string, string> = new Map()): Promise<ThriftClient> {
    const c = await lochClient(at, runtime, { framing: 'theader', protocol: 'binary', headers });
    clients.push(c);
    return c;
  }

  it('carries npm thrift and python3-thrift THeader calls at the defaults', async () => {
    for (const protocol of ['binary', 'compact'] as const) {
      const client = await NpmClient.connect(port, protocol, 'header');
      clients.push(client);
      client.output.setWriteHeader('tenant', 't'.repeat(4000));
      expect(await client.call('hdr', protocol)).toBe(`L:theader:${protocol}:hdr:${protocol}`);
    }
    if (hasPython) {
      const headers: Record<string, string> = {};
      for (let i = 0; i < 50; i++) headers[`key${i}`] = `value-${i}`;
      expect(await pythonClient(port, 'header', 'binary', 'hello', ['p1', 'p2'], headers)).toEqual([
        'L:theader:binary:hello:p1',
        'L:theader:binary:hello:p2',
      ]);
    }
  });

  it('closes only the connection whose header block is over the limit, by bytes or by entries', async () => {
    const npm = await NpmClient.connect(port, 'binary', 'header');
    clients.push(npm);
    const other = await loc(port);
    expect(await npm.call('before', 'a')).toBe('L:theader:binary:before:a');
    const mark = loch.stderr().length;
    // At the limits: answered (a reply comes back on the raw connection).
    expect((await rawExchange(port, theaderWithBlock(65_536), 1500)).length).toBeGreaterThan(0);
    expect((await rawExchange(port, theaderWithKeys(1000), 1500)).length).toBeGreaterThan(0);
    // One byte over (65,540 on the wire: the block is padded to a word), and 1,001 entries.
    expect(await rawExchange(port, theaderWithBlock(65_537), 3000)).toBe('');
    expect(await rawExchange(port, theaderWithKeys(1001), 3000)).toBe('');
    await loch.waitFor(
      /THeader header block of 65540 bytes over the limit 65536.*ERR_THRIFT_HEADER_SIZE/,
      mark,
    );
    await loch.waitFor(
      /THeader header block of 1001 or more entries over the limit 1000.*ERR_THRIFT_HEADER_SIZE/,
      mark,
    );
    // The worker's other connections go on.
    expect(await npm.call('after', 'b')).toBe('L:theader:binary:after:b');
    expect(await lochCall(other, 'after', 'c')).toBe('L:theader:binary:after:c');
  });

  it('applies max_header_size and max_header_count from the server block', async () => {
    const four = new Map([
      ['a', '1'],
      ['b', '2'],
      ['c', '3'],
      ['d', '4'],
    ]);
    expect(await lochCall(await loc(small, four), 'four', 'x')).toBe('L:theader:binary:four:x');
    const five = new Map([...four, ['e', '5']]);
    const mark = loch.stderr().length;
    await expect(lochCall(await loc(small, five), 'five', 'x')).rejects.toThrow();
    await loch.waitFor(/5 or more entries over the limit 4/, mark);
    await expect(
      lochCall(await loc(small, new Map([['k', 'v'.repeat(300)]])), 'long', 'x'),
    ).rejects.toThrow();
    await loch.waitFor(/bytes over the limit 256/, mark);
    expect(await rawExchange(small, theaderWithBlock(257), 3000)).toBe('');
    expect((await rawExchange(small, theaderWithBlock(256), 1500)).length).toBeGreaterThan(0);
  });

  it('fails a call whose upstream reply is over the limits with INTERNAL_ERROR; the next is answered', async () => {
    const client = await loc(port, new Map([['isn', 'Fat']]));
    for (const method of ['fat', 'big']) {
      const error = await lochCall(client, method, 'x').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TApplicationException);
      expect((error as TApplicationException).type).toBe(TApplicationExceptionType.INTERNAL_ERROR);
      expect((error as Error).message).toMatch(/over the limit (1000|65536)/);
      expect(await lochCall(client, 'fine', method)).toBe(`fat:fine:${method}`);
    }
  });
});
