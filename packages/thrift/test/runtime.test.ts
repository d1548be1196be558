/**
 * The server core and client on @loch/uring-runtime's own TcpListener/TcpStream, for every
 * driver this machine can run (legacy node:net, and io_uring when available): every framing and
 * protocol, multiplexed replies, a garbage connection closed while others go on, and npm thrift
 * and python3-thrift peers.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createRuntime, type Runtime, TcpListener, TcpStream } from '@loch/uring-runtime';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type FramingName, type ProtocolName, ThriftClient, ThriftServer } from '../src/index.js';
import { testDrivers } from './drivers.js';
import { calls, echoHandler, expected, lochEcho, NpmEchoClient, thrift } from './echo-service.js';

const drivers = await testDrivers('thrift runtime suite');

describe.each(drivers)('on the $name driver', ({ name, skip }) => {
  let runtime: Runtime;
  let server: ThriftServer;
  let port: number;
  let errors: unknown[];
  const cleanups: (() => unknown)[] = [];

  beforeEach(async () => {
    if (skip !== undefined) return;
    runtime = await createRuntime({ driver: name, log: () => undefined });
    errors = [];
    server = new ThriftServer(echoHandler, {
      maxConcurrentCalls: 8,
      onConnectionError: (e) => errors.push(e),
    });
    const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime });
    const address = listener.localAddress;
    port = address.family === 'unix' ? 0 : address.port;
    void server.serve(listener);
  });

  afterEach(async () => {
    if (skip !== undefined) return;
    for (const c of cleanups.splice(0).reverse()) await c();
    await server.close();
    await runtime.close();
  });

  async function client(
    framing: FramingName,
    protocol: ProtocolName,
    multiplexed = false,
  ): Promise<ThriftClient> {
    const stream = await TcpStream.connect({ host: '127.0.0.1', port, runtime });
    const c = new ThriftClient(stream, {
      framing,
      protocol,
      multiplexed,
      headers: new Map([['tenant', 'rt']]),
    });
    cleanups.push(() => c.close());
    return c;
  }

  it.skipIf(skip !== undefined).each([
    ['framed', 'binary'],
    ['framed', 'compact'],
    ['unframed', 'binary'],
    ['theader', 'compact'],
    ['ttheader', 'binary'],
  ] as [FramingName, ProtocolName][])(
    'serves %s %s, one at a time and multiplexed',
    async (framing, protocol) => {
      const tenant = framing === 'theader' || framing === 'ttheader' ? 'rt' : '';
      const single = await client(framing, protocol);
      for (const a of calls) expect(await lochEcho(single, a)).toBe(expected(a, tenant));
      const mux = await client(framing, protocol, true);
      const many = Array.from({ length: 20 }, (_, i) => calls[i % calls.length]!);
      expect(await Promise.all(many.map((a) => lochEcho(mux, a)))).toEqual(
        many.map((a) => expected(a, tenant)),
      );
      expect(errors).toEqual([]);
    },
  );

  it.skipIf(skip !== undefined)('closes a garbage connection and keeps serving the others', async () => {
    const good = await client('framed', 'binary', true);
    const raw = netConnect(port, '127.0.0.1');
    raw.on('error', () => {});
    const closed = new Promise<void>((resolve) => raw.on('close', () => resolve()));
    raw.write('SSH-2.0-OpenSSH_9.2\r\n');
    await closed;
    expect(errors.map((e) => (e as { code?: string }).code)).toEqual(['ERR_THRIFT_UNKNOWN_FRAMING']);
    expect(await lochEcho(good, calls[0]!)).toBe(expected(calls[0]!));
  });

  it.skipIf(skip !== undefined)('serves an npm thrift client (THeader binary)', async () => {
    const connection = thrift.createConnection('127.0.0.1', port, {
      transport: thrift.TBufferedTransport,
      protocol: thrift.THeaderProtocol,
    });
    connection.on('error', () => {});
    cleanups.push(() => connection.end());
    const c = thrift.createClient(NpmEchoClient, connection) as NpmEchoClient;
    c.output.setWriteHeader('tenant', 'npm');
    for (const a of calls) expect(await c.echo(a)).toBe(expected(a, 'npm'));
  });

  it.skipIf(skip !== undefined || !existsSync('/usr/bin/python3'))(
    'calls a python3-thrift server (framed compact)',
    async () => {
      const child = spawn('/usr/bin/python3', ['echo_server.py', 'framed', 'compact'], {
        cwd: fileURLToPath(new URL('./python/', import.meta.url)),
        stdio: ['ignore', 'pipe', 'ignore'],
        env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
      });
      cleanups.push(() => child.kill('SIGKILL'));
      const pyPort = await new Promise<number>((resolve, reject) => {
        child.stdout.once('data', (b) => resolve(Number.parseInt(String(b), 10)));
        child.on('exit', (code) => reject(new Error(`python exited ${code}`)));
      });
      const stream = await TcpStream.connect({ host: '127.0.0.1', port: pyPort, runtime });
      const c = new ThriftClient(stream, { framing: 'framed', protocol: 'compact' });
      cleanups.push(() => c.close());
      for (const a of calls) expect(await lochEcho(c, a)).toBe(expected(a));
    },
  );
});
