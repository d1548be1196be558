/**
 * proxyProtocolAccept on every runtime driver, over real loopback sockets (node:net clients
 * sending what a balancer sends, or not): the client address in facts, bytes behind the header
 * kept for the next layer, and every failure typed with the connection closed (garbage, an
 * oversized header, a peer that sends nothing, a peer that leaves). Chunk boundaries a real
 * peer cannot force are covered with a scripted stream (split headers, one byte per read).
 */
import { connect, type Socket } from 'node:net';
import {
  decodeProxyHeader,
  encodeProxyHeader,
  endpoint,
  ProxyHeaderConnector,
  ProxyProtocolError,
  ProxyProtocolStream,
  proxyProtocolAccept,
  UnifiedL4Connector,
  withProxyHeader,
} from '@loch/transports';
import {
  type ByteStream,
  createRuntime,
  plainFacts,
  type RecvChunk,
  type RecvTarget,
  type Runtime,
  TcpListener,
} from '@loch/uring-runtime';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { driverCases } from './harness.js';

const drivers = await driverCases();
const text = (s: string) => new TextEncoder().encode(s);

/** Reads everything until end of stream. */
async function readAll(stream: ByteStream): Promise<string> {
  let out = '';
  for await (const bytes of stream) out += Buffer.from(bytes).toString('latin1');
  return out;
}

describe.each(drivers)('proxyProtocolAccept on the $name driver', ({ name, skip }) => {
  const run = skip === undefined ? it : it.skip;
  let runtime: Runtime;
  let listener: TcpListener;
  let clients: Socket[];

  beforeEach(async () => {
    runtime = await createRuntime({ driver: name, log: () => undefined });
    listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime });
    clients = [];
  });
  afterEach(async () => {
    for (const c of clients) c.destroy();
    await listener.close();
    await runtime.close();
  });

  /** A client that sends `bytes` (and ends when `end`); resolves with what it read back. */
  function client(bytes: Uint8Array | null, end = true): { socket: Socket; received: Promise<string> } {
    const addr = listener.localAddress as { port: number };
    const socket = connect(addr.port, '127.0.0.1');
    clients.push(socket);
    const received = new Promise<string>((resolve) => {
      let got = '';
      socket.on('data', (d) => (got += d.toString('latin1')));
      socket.on('close', () => resolve(got));
      socket.on('error', () => undefined);
    });
    socket.on('connect', () => {
      if (bytes !== null) socket.write(bytes);
      if (end) socket.end();
    });
    return { socket, received };
  }

  run('gives the header source as facts.clientAddress and keeps the bytes behind it', async () => {
    const header = encodeProxyHeader({
      version: 2,
      source: { family: 'ipv6', address: '2001:db8::7', port: 40000 },
      destination: { family: 'ipv4', address: '127.0.0.1', port: 80 },
    });
    const c = client(Buffer.concat([header, text('GET / HTTP/1.1\r\n\r\n')]));
    const stream = await proxyProtocolAccept(await listener.accept());
    expect(stream).toBeInstanceOf(ProxyProtocolStream);
    expect(stream.facts.clientAddress).toEqual({ family: 'ipv6', address: '2001:db8::7', port: 40000 });
    expect(stream.facts.secure).toBe(false);
    expect(stream.remoteAddress).toMatchObject({ family: 'ipv4', address: '127.0.0.1' });
    expect(stream.proxyHeader.destination).toEqual({ family: 'ipv6', address: '::ffff:127.0.0.1', port: 80 });
    expect(await readAll(stream)).toBe('GET / HTTP/1.1\r\n\r\n');
    await stream.writeAll(text('ok'));
    await stream.close();
    expect(await c.received).toBe('ok');
  });

  run('keeps the socket address for UNKNOWN (v1) and LOCAL (v2)', async () => {
    for (const bytes of [
      text('PROXY UNKNOWN\r\n'),
      encodeProxyHeader({ version: 2, source: null, destination: null }),
    ]) {
      client(bytes);
      const raw = await listener.accept();
      const stream = await proxyProtocolAccept(raw);
      expect(stream.facts.clientAddress).toEqual(raw.remoteAddress);
      expect(await readAll(stream)).toBe('');
      await stream.close();
    }
  });

  run('refuses and closes a connection that starts with HTTP, without answering', async () => {
    const c = client(text('GET / HTTP/1.1\r\nhost: x\r\n\r\n'), false);
    const raw = await listener.accept();
    const error = await proxyProtocolAccept(raw).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProxyProtocolError);
    expect((error as ProxyProtocolError).code).toBe('ERR_PROXY_PROTOCOL_MISSING');
    expect((error as ProxyProtocolError).address).toMatchObject({ address: '127.0.0.1' });
    expect(await c.received).toBe('');
    expect(raw.closed).toBe(true);
  });

  run('refuses an oversized v2 header and a v1 line without CRLF', async () => {
    const big = encodeProxyHeader({
      version: 2,
      source: { family: 'ipv4', address: '1.1.1.1', port: 1 },
      destination: { family: 'ipv4', address: '2.2.2.2', port: 2 },
      tlvs: [{ type: 0xe0, value: new Uint8Array(5000) }],
    });
    client(big, false);
    const e1 = await proxyProtocolAccept(await listener.accept()).catch((e: unknown) => e);
    expect((e1 as ProxyProtocolError).code).toBe('ERR_PROXY_PROTOCOL_TOO_LONG');
    client(text(`PROXY TCP4 ${'1'.repeat(120)}`), false);
    const e2 = await proxyProtocolAccept(await listener.accept()).catch((e: unknown) => e);
    expect((e2 as ProxyProtocolError).code).toBe('ERR_PROXY_PROTOCOL_TOO_LONG');
  });

  run('times out a peer that sends nothing, and closes it', async () => {
    const c = client(null, false);
    const raw = await listener.accept();
    const error = await proxyProtocolAccept(raw, { timeout: 20 }).catch((e: unknown) => e);
    expect((error as ProxyProtocolError).code).toBe('ERR_PROXY_PROTOCOL_TIMEOUT');
    expect(await c.received).toBe('');
  });

  run('reports a peer that leaves mid-header', async () => {
    client(text('PROXY TCP4 1.2.3.4'));
    const error = await proxyProtocolAccept(await listener.accept()).catch((e: unknown) => e);
    expect((error as ProxyProtocolError).code).toBe('ERR_PROXY_PROTOCOL_CLOSED');
  });

  run('ProxyHeaderConnector writes the header first; the receiver decodes it', async () => {
    const header = encodeProxyHeader({
      version: 1,
      source: { family: 'ipv4', address: '203.0.113.9', port: 1234 },
      destination: { family: 'ipv4', address: '127.0.0.1', port: 80 },
    });
    const port = (listener.localAddress as { port: number }).port;
    const key = withProxyHeader(endpoint({ host: '127.0.0.1', port }), header);
    expect(key.id).not.toBe(endpoint({ host: '127.0.0.1', port }).id);
    const connector = new ProxyHeaderConnector(new UnifiedL4Connector({ runtime }));
    const [out, accepted] = await Promise.all([connector.connect(key), listener.accept()]);
    await out.writeAll(text('hello'));
    await out.close();
    const stream = await proxyProtocolAccept(accepted);
    expect(stream.facts.clientAddress).toEqual({ family: 'ipv4', address: '203.0.113.9', port: 1234 });
    expect(await readAll(stream)).toBe('hello');
    await stream.close();
  });
});

/** A stream double that delivers scripted chunks (boundaries a real peer cannot force). */
class ScriptedStream {
  readonly remoteAddress = { family: 'ipv4', address: '10.9.9.9', port: 9 } as const;
  readonly localAddress = { family: 'ipv4', address: '10.0.0.1', port: 80 } as const;
  readonly facts = plainFacts(this.remoteAddress);
  readonly driver = 'legacy' as const;
  closed = false;
  released = 0;
  constructor(readonly chunks: Uint8Array[]) {}
  recvTo(target: RecvTarget): void {
    const next = this.chunks.shift();
    const chunk: RecvChunk | null =
      next === undefined ? null : { bytes: next, release: () => void this.released++ };
    queueMicrotask(() => target.onRecv(chunk, undefined));
  }
  async recv(): Promise<RecvChunk | null> {
    return new Promise((resolve) => this.recvTo({ onRecv: (c) => resolve(c) }));
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

describe('proxyProtocolAccept over split reads', () => {
  it('assembles a header that arrives one byte per read, and hands on what follows', async () => {
    const bytes = text('PROXY TCP4 192.0.2.1 192.0.2.2 5 6\r\nrest');
    const chunks = [...bytes].map((b) => Uint8Array.of(b));
    const inner = new ScriptedStream(chunks);
    const stream = await proxyProtocolAccept(inner as unknown as ByteStream);
    expect(stream.facts.clientAddress).toEqual({ family: 'ipv4', address: '192.0.2.1', port: 5 });
    // The header's last byte came alone: the next read is the next chunk.
    expect(inner.chunks.length).toBe(4);
    expect(inner.released).toBe(bytes.byteLength - 4);
  });

  it('keeps the bytes behind a v2 header split across two reads, for read() and recv()', async () => {
    const header = encodeProxyHeader({
      version: 2,
      source: { family: 'ipv4', address: '192.0.2.1', port: 5 },
      destination: { family: 'ipv4', address: '192.0.2.2', port: 6 },
    });
    const all = Buffer.concat([header, text('abcdef')]);
    const inner = new ScriptedStream([all.subarray(0, 10), all.subarray(10), text('gh')]);
    const stream = await proxyProtocolAccept(inner as unknown as ByteStream);
    const [n, buf] = await stream.read(new Uint8Array(4));
    expect(Buffer.from(buf.subarray(0, n)).toString()).toBe('abcd');
    const rest = await stream.recv();
    expect(Buffer.from(rest!.bytes).toString()).toBe('ef');
    const next = await stream.recv();
    expect(Buffer.from(next!.bytes).toString()).toBe('gh');
    expect(decodeProxyHeader(header)?.length).toBe(header.byteLength);
  });

  it('fails on garbage in a later chunk and closes the stream', async () => {
    const inner = new ScriptedStream([text('PROXY '), text('TCP4 x\r\n')]);
    const error = await proxyProtocolAccept(inner as unknown as ByteStream).catch((e: unknown) => e);
    expect((error as ProxyProtocolError).code).toBe('ERR_PROXY_PROTOCOL_INVALID');
    expect((error as ProxyProtocolError).address).toEqual(inner.remoteAddress);
    expect(inner.closed).toBe(true);
  });
});
