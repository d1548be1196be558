/**
 * TLS behind a PROXY protocol header (docs/DESIGN.md's accept order: PROXY header -> TLS) on
 * every runtime driver: proxyProtocolAccept, then tlsAccept on its stream, with node:tls as the
 * client behind a balancer's header. On io_uring the ring carries the session after the header
 * (in-ring TLS), also when the header and the ClientHello arrive in one segment (the bytes behind
 * the header are fed to the session first); the client address is the header's either way.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { TlsServerContext, tlsAccept } from '@loch/tls';
import { encodeProxyHeader, proxyProtocolAccept } from '@loch/transports';
import { createRuntime, type Runtime, TcpListener } from '@loch/uring-runtime';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { driverCases } from './harness.js';

const drivers = await driverCases();
// A self-signed ECDSA certificate for localhost (openssl CLI): the client trusts it as its CA.
const dir = mkdtempSync(join(tmpdir(), 'loch-pp-tls-'));
execFileSync(
  'openssl',
  [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    join(dir, 'key.pem'),
    '-out',
    join(dir, 'cert.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=DNS:localhost',
  ],
  { stdio: 'ignore' },
);
const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
const key = readFileSync(join(dir, 'key.pem'), 'utf8');
const ca = cert;

const header = encodeProxyHeader({
  version: 2,
  source: { family: 'ipv4', address: '203.0.113.9', port: 51000 },
  destination: { family: 'ipv4', address: '10.0.0.1', port: 443 },
});

/**
 * A socket that sends the PROXY header glued to the first bytes written through it (the
 * ClientHello): one write, one segment, as a balancer that buffered the client's first bytes
 * sends them.
 */
class GluedHeader extends Duplex {
  #first = true;
  constructor(private readonly socket: Socket) {
    super();
    socket.on('data', (d: Buffer) => this.push(d));
    socket.on('end', () => this.push(null));
    socket.on('error', (e) => this.destroy(e));
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, done: (e?: Error | null) => void): void {
    const out = this.#first ? Buffer.concat([Buffer.from(header), chunk]) : chunk;
    this.#first = false;
    this.socket.write(out, done);
  }
  override _read(): void {}
  override _final(done: () => void): void {
    this.socket.end(done);
  }
}

describe.each(drivers)('TLS behind a PROXY header on the $name driver', ({ name, skip }) => {
  const run = skip === undefined ? it : it.skip;
  let runtime: Runtime;
  let listener: TcpListener;
  let context: TlsServerContext;
  const sockets: Socket[] = [];

  beforeEach(async () => {
    runtime = await createRuntime({ driver: name, log: () => undefined });
    listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime });
    context = new TlsServerContext({ certificates: [{ chain: cert, key }], alpn: ['http/1.1'] });
  });
  afterEach(async () => {
    for (const s of sockets) s.destroy();
    await listener.close();
    await runtime.close();
  });

  /** Accepts one connection: PROXY header, TLS, then echoes one message back. */
  async function serveOne() {
    const raw = await listener.accept();
    const proxied = await proxyProtocolAccept(raw);
    const tls = await tlsAccept(proxied, context);
    const chunk = await tls.recv();
    await tls.writeAll(chunk!.bytes.slice());
    chunk!.release();
    return { layer: tls.recordLayer, client: tls.facts.clientAddress, close: () => tls.close() };
  }

  function talk(client: TLSSocket): Promise<string> {
    return new Promise((resolve, reject) => {
      client.once('secureConnect', () => client.write('hello through the balancer'));
      client.once('data', (d: Buffer) => resolve(d.toString()));
      client.once('error', reject);
    });
  }

  const port = () => (listener.localAddress as { port: number }).port;
  const expectedLayer = name === 'uring' ? 'ring' : 'javascript';

  run('header and ClientHello in one segment', async () => {
    const served = serveOne();
    const socket = netConnect(port(), '127.0.0.1');
    sockets.push(socket);
    const client = tlsConnect({ socket: new GluedHeader(socket) as never, servername: 'localhost', ca });
    expect(await talk(client)).toBe('hello through the balancer');
    const s = await served;
    expect(s.layer).toBe(expectedLayer);
    expect(s.client).toEqual({ family: 'ipv4', address: '203.0.113.9', port: 51000 });
    client.destroy();
    await s.close();
  });

  run('header first, then the TLS client', async () => {
    const served = serveOne();
    const socket = netConnect(port(), '127.0.0.1');
    sockets.push(socket);
    socket.write(header);
    const client = tlsConnect({ socket, servername: 'localhost', ca });
    expect(await talk(client)).toBe('hello through the balancer');
    const s = await served;
    expect(s.layer).toBe(expectedLayer);
    expect(s.client).toEqual({ family: 'ipv4', address: '203.0.113.9', port: 51000 });
    client.destroy();
    await s.close();
  });
});
