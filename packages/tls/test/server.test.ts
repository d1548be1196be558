/**
 * A Loch TLS server (TlsStream over a runtime TcpStream) against node:tls clients, on every
 * runtime driver: TLS 1.2 and 1.3, SNI choosing the certificate (exact, wildcard, default), ALPN
 * in the server's order, session resumption by ticket (shared and rotated keys), mTLS, large
 * transfers both ways, and what ends a connection (garbage, a close mid-handshake, a silent
 * client, plain HTTP): each a typed error on that connection only, the server still serving.
 */
import { X509Certificate } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import {
  generateTicketKeys,
  TlsCertificateError,
  TlsHandshakeError,
  TlsPlainHttpError,
  TlsServerContext,
  type TlsServerContextOptions,
  type TlsStream,
  TlsTimeoutError,
} from '@loch/tls';
import { createRuntime, type Runtime } from '@loch/uring-runtime';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makeTestPki, type TestPki } from './certs.js';
import {
  bytes,
  driverCases,
  echo,
  eventually,
  fdCount,
  LochTlsServer,
  nodeClient,
  nodeClientFailure,
  roundTrip,
} from './harness.js';

const drivers = await driverCases();
let pki: TestPki;

beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.remove());

/** The CN of a node:tls socket's peer certificate. */
function peerCn(socket: TLSSocket): string | undefined {
  const cn = socket.getPeerCertificate().subject?.CN;
  return Array.isArray(cn) ? cn[0] : cn;
}

describe.each(drivers)('TLS server on the $name driver', ({ name, skip }) => {
  const run = skip === undefined ? it : it.skip;
  let runtime: Runtime;
  const servers: LochTlsServer[] = [];
  const sockets: TLSSocket[] = [];
  let baseline = 0;

  beforeEach(async () => {
    runtime = await createRuntime({ driver: name, log: () => undefined });
    baseline = fdCount();
  });

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    for (const s of servers.splice(0)) await s.close();
    await runtime.close();
  });

  async function serve(
    options: Partial<TlsServerContextOptions> = {},
    handler: (s: TlsStream) => Promise<void> = echo,
    accept: ConstructorParameters<typeof LochTlsServer>[3] = {},
  ): Promise<LochTlsServer> {
    const context = new TlsServerContext({
      certificates: [{ chain: pki.localhost.chain, key: pki.localhost.key }],
      ...options,
    });
    const server = await new LochTlsServer(runtime, context, handler, accept).listen();
    servers.push(server);
    return server;
  }

  async function client(port: number, options: Parameters<typeof nodeClient>[1] = {}): Promise<TLSSocket> {
    const socket = await nodeClient(port, { ca: pki.ca, servername: 'localhost', ...options });
    sockets.push(socket);
    return socket;
  }

  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    run(`echoes over ${version} and reports what was negotiated`, async () => {
      const server = await serve({ alpn: ['h2', 'http/1.1'] });
      const socket = await client(server.port, {
        minVersion: version,
        maxVersion: version,
        ALPNProtocols: ['http/1.1', 'h2'],
      });
      expect(socket.getProtocol()).toBe(version);
      expect(socket.alpnProtocol).toBe('h2'); // the server's preference wins
      const outcome = await server.next();
      expect('stream' in outcome).toBe(true);
      const stream = (outcome as { stream: TlsStream }).stream;
      expect(stream.protocol).toBe(version);
      expect(stream.facts).toMatchObject({
        secure: true,
        alpnProtocol: 'h2',
        servername: 'localhost',
        peerCertificate: null,
      });
      expect(stream.facts.clientAddress).toEqual(stream.remoteAddress);
      expect(stream.driver).toBe(name);
      const payload = bytes(1000);
      expect(Buffer.from(await roundTrip(socket, payload)).equals(Buffer.from(payload))).toBe(true);
    });
  }

  run('picks the certificate by SNI: exact, wildcard, default for unknown and missing names', async () => {
    const server = await serve({
      certificates: [
        { chain: pki.exact.chainFile, key: pki.exact.keyFile }, // paths work as well as PEM text
        { chain: pki.wildcard.chain, key: pki.wildcard.key },
        { chain: pki.fallback.chain, key: pki.fallback.key, default: true },
      ],
    });
    const cases: [string | undefined, string][] = [
      ['a.example.com', 'a.example.com'],
      ['A.Example.COM', 'a.example.com'],
      ['x.wild.example.com', '*.wild.example.com'],
      ['deep.x.wild.example.com', 'default.example.com'], // a wildcard covers one label
      ['unknown.example.org', 'default.example.com'],
      [undefined, 'default.example.com'],
    ];
    for (const [servername, cn] of cases) {
      const socket = await client(server.port, {
        ...(servername === undefined ? { servername: '' } : { servername }),
        rejectUnauthorized: false,
      });
      expect(peerCn(socket), String(servername)).toBe(cn);
      const outcome = await server.next();
      const stream = (outcome as { stream: TlsStream }).stream;
      expect(stream.servername).toBe(servername ?? null);
      socket.destroy();
    }
  });

  run('ALPN: no shared protocol is a fatal alert; no ALPN offered negotiates none', async () => {
    const server = await serve({ alpn: ['h2'] });
    const failure = await nodeClientFailure(server.port, {
      ca: pki.ca,
      servername: 'localhost',
      ALPNProtocols: ['spdy/3'],
    });
    expect(String(failure)).toMatch(/no.application.protocol|alert number 120/i);
    expect(await server.nextError()).toBeInstanceOf(TlsHandshakeError);
    const socket = await client(server.port);
    expect(socket.alpnProtocol).toBe(false);
    const stream = ((await server.next()) as { stream: TlsStream }).stream;
    expect(stream.alpnProtocol).toBeNull();
  });

  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    run(
      `resumes a session by ticket over ${version}, also on another context with the same keys`,
      async () => {
        const ticketKeys = generateTicketKeys();
        const first = await serve({ ticketKeys });
        const second = await serve({ ticketKeys });
        // The ticket: during the handshake in TLS 1.2, after it in TLS 1.3 (hence the write).
        const session = await new Promise<Buffer>((resolve, reject) => {
          const s = tlsConnect({
            host: '127.0.0.1',
            port: first.port,
            ca: pki.ca,
            servername: 'localhost',
            minVersion: version,
            maxVersion: version,
          });
          sockets.push(s);
          s.once('session', resolve);
          s.once('error', reject);
          s.once('secureConnect', () => s.write('x'));
        });
        for (const server of [first, second]) {
          const socket = await client(server.port, { minVersion: version, maxVersion: version, session });
          expect(socket.isSessionReused()).toBe(true);
        }
        const outcomes = [await first.next(), await first.next(), await second.next()];
        expect(outcomes.map((o) => (o as { stream: TlsStream }).stream.sessionReused)).toEqual([
          false,
          true,
          true,
        ]);
        // After a rotation the old ticket still resumes (kept for decryption), and a server
        // whose keys never included it does a full handshake.
        first.context.rotateTicketKeys();
        const again = await client(first.port, { minVersion: version, maxVersion: version, session });
        expect(again.isSessionReused()).toBe(true);
        const stranger = await serve({});
        const full = await client(stranger.port, { minVersion: version, maxVersion: version, session });
        expect(full.isSessionReused()).toBe(false);
      },
    );
  }

  run(
    'mTLS: a trusted client certificate is accepted and reported; a missing or untrusted one fails',
    async () => {
      const server = await serve({ clientCa: pki.caFile });
      const socket = await client(server.port, { cert: pki.client.chain, key: pki.client.key });
      const stream = ((await server.next()) as { stream: TlsStream }).stream;
      const der = stream.peerCertificate;
      expect(der).not.toBeNull();
      expect(new X509Certificate(der!).subject).toContain('CN=loch-client');
      expect(Buffer.from(await roundTrip(socket, bytes(10))).byteLength).toBe(10);

      for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
        const missing = await nodeClientFailure(server.port, {
          ca: pki.ca,
          servername: 'localhost',
          minVersion: version,
          maxVersion: version,
        });
        expect(missing).not.toBe(undefined);
        expect(await server.nextError()).toBeInstanceOf(TlsCertificateError);
        await nodeClientFailure(server.port, {
          ca: pki.ca,
          servername: 'localhost',
          minVersion: version,
          maxVersion: version,
          cert: pki.untrustedClient.chain,
          key: pki.untrustedClient.key,
        });
        const error = await server.nextError();
        expect(error).toBeInstanceOf(TlsCertificateError);
        expect((error as TlsCertificateError).code).toBe('ERR_LOCH_TLS_CERTIFICATE');
      }
    },
  );

  run(
    "mTLS 'request': a client without a certificate is let in, one with a certificate is verified",
    async () => {
      const server = await serve({ clientCa: pki.ca, clientCertificate: 'request' });
      const anonymous = await client(server.port);
      expect(Buffer.from(await roundTrip(anonymous, bytes(3))).byteLength).toBe(3);
      const first = ((await server.next()) as { stream: TlsStream }).stream;
      expect(first.peerCertificate).toBeNull();
      await client(server.port, { cert: pki.client.chain, key: pki.client.key });
      const second = ((await server.next()) as { stream: TlsStream }).stream;
      expect(second.facts.peerCertificate).not.toBeNull();
      await nodeClientFailure(server.port, {
        ca: pki.ca,
        servername: 'localhost',
        cert: pki.untrustedClient.chain,
        key: pki.untrustedClient.key,
      });
      expect(await server.nextError()).toBeInstanceOf(TlsCertificateError);
    },
  );

  run('moves several MB each way through odd chunk boundaries', async () => {
    const server = await serve();
    const socket = await client(server.port);
    const payload = bytes(6 * 1024 * 1024 + 12345);
    // Odd-sized writes, so records and TCP segments straddle each other.
    const parts: Buffer[] = [];
    socket.on('data', (b: Buffer) => parts.push(b));
    const ended = new Promise((r) => socket.once('end', r));
    for (let at = 0; at < payload.byteLength; ) {
      const n = Math.min(payload.byteLength - at, 1 + ((at * 7919) % 70_000));
      socket.write(payload.subarray(at, at + n));
      at += n;
    }
    socket.end();
    await ended;
    expect(Buffer.concat(parts).equals(Buffer.from(payload))).toBe(true);
  });

  run(
    'garbage, a close mid-handshake and plain HTTP end only their connection, with typed errors',
    async () => {
      const server = await serve();
      const raw = (data: Uint8Array | string, end = true) =>
        new Promise<Buffer>((resolve) => {
          const s = netConnect(server.port, '127.0.0.1');
          const got: Buffer[] = [];
          s.on('data', (b: Buffer) => got.push(b));
          s.on('error', () => undefined);
          s.on('close', () => resolve(Buffer.concat(got)));
          s.write(data);
          if (end) s.end();
        });
      // A TLS record header followed by nonsense.
      await raw(new Uint8Array([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]));
      const garbage = await server.nextError();
      expect(garbage).toBeInstanceOf(TlsHandshakeError);
      expect((garbage as TlsHandshakeError).reason).not.toBe('');
      // Binary garbage that is no TLS record at all.
      await raw(new Uint8Array([0x00, 0xff, 0x10, 0x20, 0x30, 0x40, 0x50]));
      expect(await server.nextError()).toBeInstanceOf(TlsHandshakeError);
      // Half a ClientHello, then the client goes away.
      await raw(new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]));
      const early = await server.nextError();
      expect(early).toBeInstanceOf(TlsHandshakeError);
      expect(String(early)).toMatch(/closed the connection during the handshake/);
      // Plain HTTP.
      await raw('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
      const plain = await server.nextError();
      expect(plain).toBeInstanceOf(TlsPlainHttpError);
      expect((plain as TlsPlainHttpError).code).toBe('ERR_LOCH_TLS_PLAIN_HTTP');
      expect(Buffer.from((plain as TlsPlainHttpError).received).toString()).toMatch(/^GET \//);
      // The server still serves.
      const socket = await client(server.port);
      expect(Buffer.from(await roundTrip(socket, bytes(5))).byteLength).toBe(5);
      await server.close();
      expect(await eventually(() => fdCount() <= baseline)).toBe(true);
    },
  );

  run('plain HTTP can be handed over so an HTTP server answers 400', async () => {
    const server = await serve({}, echo, { plainHttp: 'hand-over' });
    const answer = new Promise<string>((resolve) => {
      const s = netConnect(server.port, '127.0.0.1');
      let text = '';
      s.on('data', (b: Buffer) => {
        text += b.toString();
      });
      s.on('close', () => resolve(text));
      s.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
    });
    const error = (await server.nextError()) as TlsPlainHttpError;
    expect(error.stream).toBeDefined();
    await error.stream!.writeAll(
      new TextEncoder().encode('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n'),
    );
    await error.stream!.close();
    expect(await answer).toMatch(/^HTTP\/1.1 400/);
  });

  run('a client that never finishes the handshake times out', async () => {
    const server = await serve({}, echo, { handshakeTimeout: 150 });
    const s = netConnect(server.port, '127.0.0.1');
    s.on('error', () => undefined);
    const closed = new Promise((r) => s.once('close', r));
    const error = await server.nextError();
    expect(error).toBeInstanceOf(TlsTimeoutError);
    expect((error as TlsTimeoutError).code).toBe('ERR_LOCH_TLS_HANDSHAKE_TIMEOUT');
    await closed; // the server closed it
  });
});
