/**
 * Interop over real loopback sockets with npm `thrift` (client and server) and Debian's
 * python3-thrift (client and server, /usr/bin/python3): framed binary, framed compact, and
 * Apache THeader (binary and compact; zlib from and to Python) with info headers both ways.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type FramingName,
  type ProtocolName,
  TApplicationExceptionType,
  THeaderTransform,
  ThriftClient,
  ThriftServer,
} from '../src/index.js';
import {
  calls,
  echoHandler,
  expected,
  lochEcho,
  NpmEchoClient,
  NpmEchoProcessor,
  thrift,
} from './echo-service.js';
import { connect, listen } from './net-stream.js';

const python = '/usr/bin/python3';
const scripts = fileURLToPath(new URL('./python/', import.meta.url));
const hasPython = existsSync(python);

interface Config {
  framing: FramingName;
  protocol: ProtocolName;
  npmTransport: unknown;
  npmProtocol: unknown;
  py: string;
}

const configs: Config[] = [
  {
    framing: 'framed',
    protocol: 'binary',
    npmTransport: thrift.TFramedTransport,
    npmProtocol: thrift.TBinaryProtocol,
    py: 'framed',
  },
  {
    framing: 'framed',
    protocol: 'compact',
    npmTransport: thrift.TFramedTransport,
    npmProtocol: thrift.TCompactProtocol,
    py: 'framed',
  },
  {
    framing: 'theader',
    protocol: 'binary',
    npmTransport: thrift.TBufferedTransport,
    npmProtocol: thrift.THeaderProtocol,
    py: 'header',
  },
  {
    framing: 'theader',
    protocol: 'compact',
    npmTransport: thrift.TBufferedTransport,
    npmProtocol: thrift.THeaderProtocol,
    py: 'header',
  },
];

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function lochServer(): Promise<{ port: number; errors: unknown[] }> {
  const errors: unknown[] = [];
  const server = new ThriftServer(echoHandler, { onConnectionError: (e) => errors.push(e) });
  const listener = await listen();
  void server.serve(listener);
  cleanups.push(() => server.close());
  return { port: listener.port, errors };
}

function run(args: string[]): ChildProcess {
  const child = spawn(python, args, {
    cwd: scripts,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
  });
  cleanups.push(() => child.kill('SIGKILL'));
  return child;
}

/** Runs a python client to completion; resolves its stdout lines. */
function pyClient(args: string[]): Promise<string[]> {
  const child = run(['echo_client.py', ...args]);
  let out = '';
  let err = '';
  child.stdout!.on('data', (b) => (out += b));
  child.stderr!.on('data', (b) => (err += b));
  return new Promise((resolve, reject) => {
    child.on('exit', (code) =>
      code === 0 ? resolve(out.trim().split('\n')) : reject(new Error(`python exited ${code}: ${err}`)),
    );
  });
}

/** Starts a python server; resolves its port. */
function pyServer(args: string[]): Promise<number> {
  const child = run(['echo_server.py', ...args]);
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', (b) => resolve(Number.parseInt(String(b), 10)));
    child.on('exit', (code) => reject(new Error(`python server exited ${code}`)));
  });
}

describe.each(configs)('$framing $protocol', (c) => {
  const headered = c.framing === 'theader';

  it('npm thrift client -> Loch server', async () => {
    const { port, errors } = await lochServer();
    const connection = thrift.createConnection('127.0.0.1', port, {
      transport: c.npmTransport,
      protocol: c.npmProtocol,
    });
    connection.on('error', () => {});
    cleanups.push(() => connection.end());
    const client = thrift.createClient(NpmEchoClient, connection) as NpmEchoClient;
    if (headered) {
      client.output.setWriteHeader('tenant', 'npm');
      if (c.protocol === 'compact') client.output.setProtocolId(2);
    }
    for (const a of calls) expect(await client.echo(a)).toBe(expected(a, headered ? 'npm' : ''));
    await expect(client.echo(calls[0]!, 'fail')).rejects.toMatchObject({
      type: TApplicationExceptionType.UNKNOWN_METHOD,
    });
    expect(errors).toEqual([]);
  });

  it('Loch client -> npm thrift server', async () => {
    const server: Server = thrift.createMultiplexServer(new NpmEchoProcessor(), {
      transport: c.npmTransport,
      protocol: c.npmProtocol,
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => server.close(resolve)));
    const port = (server.address() as { port: number }).port;
    const client = new ThriftClient(await connect(port), {
      framing: c.framing,
      protocol: c.protocol,
      headers: new Map([['tenant', 'loch']]),
    });
    cleanups.push(() => client.close());
    for (const a of calls) expect(await lochEcho(client, a)).toBe(expected(a, headered ? 'loch' : ''));
    if (headered) {
      const res = await client.call('echo', (w) => {
        w.writeStructBegin();
        w.writeFieldStop();
        w.writeStructEnd();
      });
      expect(res!.frame.headers.get('served-by')).toBe('npm');
    }
    await expect(lochEcho(client, calls[0]!, 'fail')).rejects.toMatchObject({
      type: TApplicationExceptionType.UNKNOWN_METHOD,
    });
  });

  it.skipIf(!hasPython)('python3-thrift client -> Loch server', async () => {
    const { port, errors } = await lochServer();
    const lines = await pyClient([String(port), c.py, c.protocol]);
    expect(lines).toEqual(calls.map((a) => expected(a, headered ? 'py' : '')));
    if (headered) {
      const zipped = await pyClient([String(port), c.py, c.protocol, 'zlib']);
      expect(zipped).toEqual(calls.map((a) => expected(a, 'py')));
    }
    const failing = await pyClient([String(port), c.py, c.protocol, 'plain', 'fail']);
    expect(failing[2]).toBe(`EXCEPTION ${TApplicationExceptionType.UNKNOWN_METHOD} unknown fail`);
    expect(errors).toEqual([]);
  });

  it.skipIf(!hasPython)('Loch client -> python3-thrift server', async () => {
    const port = await pyServer([c.py, c.protocol]);
    const client = new ThriftClient(await connect(port), {
      framing: c.framing,
      protocol: c.protocol,
      headers: new Map([['tenant', 'loch']]),
      transforms: headered ? [THeaderTransform.ZLIB] : [],
    });
    cleanups.push(() => client.close());
    for (const a of calls) expect(await lochEcho(client, a)).toBe(expected(a, headered ? 'loch' : ''));
    await expect(lochEcho(client, calls[0]!, 'fail')).rejects.toMatchObject({
      type: TApplicationExceptionType.UNKNOWN_METHOD,
    });
    if (headered) {
      const res = await client.call('echo', (w) => {
        w.writeStructBegin();
        w.writeFieldStop();
        w.writeStructEnd();
      });
      expect(res!.frame.headers.get('served-by')).toBe('python');
    }
  });
});
