/**
 * Connection facts of plain streams, the same for every driver and for the public wrappers:
 * not secure, nothing negotiated, the client is the peer, one object per stream.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TcpListener, TcpStream } from '../../src/net/tcp.js';
import { UnixListener, UnixStream } from '../../src/net/unix.js';
import { type ByteStream, plainFacts } from '../../src/stream.js';
import { driverCases, portOf, runtimeFor, useDriver } from './drivers.js';

const cases = await driverCases();

function expectPlain(stream: ByteStream): void {
  const facts = stream.facts;
  expect(facts).toEqual({
    secure: false,
    alpnProtocol: null,
    servername: null,
    peerCertificate: null,
    clientAddress: stream.remoteAddress,
  });
  expect(facts).toEqual(plainFacts(stream.remoteAddress));
  // One object per stream, not one per read.
  expect(stream.facts).toBe(facts);
}

describe.each(cases)('connection facts: $name driver', ({ name, skip }) => {
  const { driver, res } = useDriver(name);
  const run = skip === undefined ? it : it.skip;

  run('TCP streams on both ends have plain facts whose client is the peer', async () => {
    const listener = res.add(await driver().listenTcp({ host: '127.0.0.1', port: 0 }));
    const accepted = listener.accept();
    const client = res.add(await driver().connectTcp({ host: '127.0.0.1', port: portOf(listener) }));
    const server = res.add(await accepted);
    expectPlain(server);
    expectPlain(client);
    expect(server.facts.clientAddress).toEqual(client.localAddress);
  });

  run("reading the facts makes no rare state (a server reads every idle connection's once)", async () => {
    const listener = res.add(await driver().listenTcp({ host: '127.0.0.1', port: 0 }));
    const accepted = listener.accept();
    res.add(await driver().connectTcp({ host: '127.0.0.1', port: portOf(listener) }));
    const server = res.add(await accepted);
    expect(server.facts.clientAddress).toEqual(server.remoteAddress);
    // io_uring keeps close, splice and extra-reader state in a StreamRare made on first use; the
    // facts are read for every connection, so they must not be what makes it (~90 B each).
    expect((server as unknown as { rare?: unknown }).rare).toBeUndefined();
  });

  run('Unix streams have plain facts', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'loch-facts-'));
    res.add({ close: () => rm(dir, { recursive: true, force: true }) });
    const path = join(dir, 'facts.sock');
    const listener = res.add(await driver().listenUnix({ path }));
    const accepted = listener.accept();
    const client = res.add(await driver().connectUnix({ path }));
    const server = res.add(await accepted);
    expectPlain(server);
    expectPlain(client);
    expect(client.facts.clientAddress).toEqual({ family: 'unix', path });
  });

  run('the public wrappers hand out their driver stream facts', async () => {
    const runtime = res.add(await runtimeFor(name));
    const tcp = res.add(await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime }));
    const acceptedTcp = tcp.accept();
    const tcpClient = res.add(await TcpStream.connect({ host: '127.0.0.1', port: portOf(tcp), runtime }));
    const tcpServer = res.add(await acceptedTcp);
    expectPlain(tcpServer);
    expectPlain(tcpClient);

    const dir = await mkdtemp(join(tmpdir(), 'loch-facts-'));
    res.add({ close: () => rm(dir, { recursive: true, force: true }) });
    const path = join(dir, 'wrapped.sock');
    const unix = res.add(await UnixListener.bind({ path, runtime }));
    const acceptedUnix = unix.accept();
    const unixClient = res.add(await UnixStream.connect({ path, runtime }));
    expectPlain(res.add(await acceptedUnix));
    expectPlain(unixClient);
  });
});
