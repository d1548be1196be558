/**
 * A Loch TLS client (tlsConnect over a runtime TcpStream) against node:tls servers, on every
 * runtime driver: TLS 1.2 and 1.3, SNI and ALPN as the server sees them, verification failures
 * (untrusted CA, wrong host name) as typed errors, IP-address verification, a client
 * certificate for mTLS (and the refusal when it is missing), resumption of the second
 * connection, several MB each way, and servers that close mid-handshake, answer garbage or
 * never answer.
 */
import { once } from 'node:events';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer, type Server, type TLSSocket, type TlsOptions } from 'node:tls';
import {
  TlsAlertError,
  TlsCertificateError,
  TlsClientContext,
  type TlsClientContextOptions,
  TlsConfigError,
  type TlsConnectOptions,
  TlsHandshakeError,
  type TlsStream,
  TlsTimeoutError,
  tlsConnect,
} from '@loch/tls';
import { createRuntime, type Runtime, TcpStream } from '@loch/uring-runtime';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makeTestPki, type TestPki } from './certs.js';
import { bytes, driverCases, readAll } from './harness.js';

const drivers = await driverCases();
let pki: TestPki;

beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.remove());

/** A node:tls echo server that records what each connection negotiated. */
class NodeTlsPeer {
  readonly server: Server;
  readonly seen: { servername: string | false | undefined; alpn: string | false | null; reused: boolean }[] =
    [];
  readonly sockets = new Set<TLSSocket>();

  constructor(options: TlsOptions, onSocket?: (s: TLSSocket) => void) {
    this.server = createServer(options, (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => undefined);
      this.seen.push({
        servername: (socket as TLSSocket & { servername?: string | false }).servername,
        alpn: socket.alpnProtocol,
        reused: socket.isSessionReused(),
      });
      if (onSocket !== undefined) onSocket(socket);
      else socket.pipe(socket);
    });
    this.server.on('tlsClientError', () => undefined);
  }

  async listen(): Promise<number> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return (this.server.address() as { port: number }).port;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

describe.each(drivers)('TLS client on the $name driver', ({ name, skip }) => {
  const run = skip === undefined ? it : it.skip;
  let runtime: Runtime;
  const closers: (() => unknown)[] = [];

  beforeEach(async () => {
    runtime = await createRuntime({ driver: name, log: () => undefined });
  });

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await runtime.close();
  });

  async function peer(options: TlsOptions = {}, onSocket?: (s: TLSSocket) => void): Promise<number> {
    const p = new NodeTlsPeer({ cert: pki.localhost.chain, key: pki.localhost.key, ...options }, onSocket);
    const port = await p.listen();
    closers.push(() => p.close());
    peers.set(port, p);
    return port;
  }
  const peers = new Map<number, NodeTlsPeer>();

  async function connect(
    port: number,
    context: TlsClientContext,
    options: Partial<TlsConnectOptions> = {},
  ): Promise<TlsStream> {
    const raw = await TcpStream.connect({ host: '127.0.0.1', port, runtime });
    const stream = await tlsConnect(raw, context, { servername: 'localhost', ...options });
    closers.push(() => stream.close());
    return stream;
  }

  function trusting(options: TlsClientContextOptions = {}): TlsClientContext {
    return new TlsClientContext({ ca: pki.ca, ...options });
  }

  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    run(`echoes over ${version}; the server sees SNI and ALPN`, async () => {
      const port = await peer({ ALPNProtocols: ['h2', 'http/1.1'] });
      const context = trusting({ minVersion: version, maxVersion: version, alpn: ['http/1.1'] });
      const stream = await connect(port, context);
      expect(stream.protocol).toBe(version);
      expect(stream.alpnProtocol).toBe('http/1.1');
      expect(stream.facts.secure).toBe(true);
      expect(stream.facts.peerCertificate?.byteLength).toBeGreaterThan(100);
      const payload = bytes(3000);
      await stream.writeAll(payload);
      const got = new Uint8Array(3000);
      let n = 0;
      while (n < got.byteLength) {
        const [k] = await stream.read(got.subarray(n));
        expect(k).toBeGreaterThan(0);
        n += k;
      }
      expect(Buffer.from(got).equals(Buffer.from(payload))).toBe(true);
      // The server saw the connection by now (its handshake may end after the client's).
      expect(peers.get(port)!.seen[0]).toMatchObject({ servername: 'localhost', alpn: 'http/1.1' });
    });

    run(`resumes the second connection over ${version} from the context's session cache`, async () => {
      const port = await peer();
      const context = trusting({ minVersion: version, maxVersion: version });
      const first = await connect(port, context);
      // TLS 1.3 tickets arrive after the handshake: one round trip reads them.
      await first.writeAll(new Uint8Array([1]));
      expect((await first.recv())?.bytes[0]).toBe(1);
      const second = await connect(port, context);
      await second.writeAll(new Uint8Array([2]));
      expect((await second.recv())?.bytes[0]).toBe(2);
      expect(first.sessionReused).toBe(false);
      expect(second.sessionReused).toBe(true);
      expect(peers.get(port)!.seen.map((s) => s.reused)).toEqual([false, true]);
      const fresh = await connect(port, context, { session: false });
      expect(fresh.sessionReused).toBe(false);
    });
  }

  run(
    'verification: an untrusted CA and a wrong host name are TlsCertificateErrors; IPs are checked too',
    async () => {
      const untrusted = await peer({ cert: pki.untrusted.chain, key: pki.untrusted.key });
      const e1 = await connect(untrusted, trusting()).catch((e: unknown) => e);
      expect(e1).toBeInstanceOf(TlsCertificateError);
      expect(String((e1 as TlsCertificateError).reason)).toMatch(
        /unable to get local issuer|self.signed|unable to verify/i,
      );
      const port = await peer();
      const e2 = await connect(port, trusting(), { servername: 'other.example.com' }).catch(
        (e: unknown) => e,
      );
      expect(e2).toBeInstanceOf(TlsCertificateError);
      expect((e2 as TlsCertificateError).reason).toMatch(/hostname mismatch/i);
      const ok = await connect(port, trusting(), { servername: '127.0.0.1' });
      expect(ok.servername).toBeNull(); // no SNI for an IP address
      await ok.writeAll(new Uint8Array([3]));
      expect((await ok.recv())?.bytes[0]).toBe(3);
      expect(peers.get(port)!.seen.at(-1)!.servername).toBe(false);
      // Without verification an untrusted server is accepted.
      await connect(untrusted, new TlsClientContext({ verify: false }));
      // The system CAs do not know the test CA.
      const e3 = await connect(port, new TlsClientContext()).catch((e: unknown) => e);
      expect(e3).toBeInstanceOf(TlsCertificateError);
    },
  );

  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    run(
      `mTLS over ${version}: the client certificate is presented; without one the server refuses`,
      async () => {
        const port = await peer({ ca: pki.ca, requestCert: true, rejectUnauthorized: true });
        const withCert = trusting({
          minVersion: version,
          maxVersion: version,
          certificate: { chain: pki.client.chainFile, key: pki.client.keyFile },
        });
        const stream = await connect(port, withCert);
        await stream.writeAll(new Uint8Array([9]));
        expect((await stream.recv())?.bytes[0]).toBe(9);
        const without = trusting({ minVersion: version, maxVersion: version });
        // TLS 1.2: the handshake fails; TLS 1.3: the refusal is the first read.
        const error = await connect(port, without)
          .then(async (s) => {
            await s.writeAll(new Uint8Array([1]));
            const chunk = await s.recv();
            return chunk === null ? new Error('ended without an error') : new Error('got data');
          })
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(TlsAlertError);
        expect([40, 42, 116]).toContain((error as TlsAlertError).alert);
      },
    );
  }

  run('a handshake that cannot start rejects with TlsConfigError and closes the stream', async () => {
    const port = await peer();
    for (const options of [{ servername: '' }, { servername: 'localhost', alpn: [''] }]) {
      const raw = await TcpStream.connect({ host: '127.0.0.1', port, runtime });
      const error = await tlsConnect(raw, trusting(), options).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TlsConfigError);
      expect(raw.closed).toBe(true);
    }
  });

  run('moves several MB each way', async () => {
    const port = await peer();
    const stream = await connect(port, trusting());
    const payload = bytes(5 * 1024 * 1024 + 777);
    const reading = (async () => {
      const parts: Buffer[] = [];
      let n = 0;
      while (n < payload.byteLength) {
        const chunk = await stream.recv();
        if (chunk === null) break;
        parts.push(Buffer.from(chunk.bytes));
        n += chunk.bytes.byteLength;
        chunk.release();
      }
      return Buffer.concat(parts);
    })();
    for (let at = 0; at < payload.byteLength; at += 100_003) {
      await stream.writeAll(payload.subarray(at, Math.min(payload.byteLength, at + 100_003)));
    }
    expect((await reading).equals(Buffer.from(payload))).toBe(true);
  });

  run('reads to the end; an end without close_notify is told apart', async () => {
    // node:tls ends with a bare TCP FIN, no close_notify (seen with openssl s_client -msg).
    const port = await peer({}, (s) => s.end('bye'));
    const stream = await connect(port, trusting());
    expect((await readAll(stream)).toString()).toBe('bye');
    expect(stream.closeNotifyReceived).toBe(false);
    expect(stream.facts.closeNotified).toBe(false);
  });

  /** A raw TCP server that does `onConnection` with each socket. */
  async function rawPeer(onConnection: (s: Socket) => void): Promise<number> {
    const server: NetServer = createNetServer(onConnection);
    const sockets = new Set<Socket>();
    server.on('connection', (s) => {
      sockets.add(s);
      s.on('error', () => undefined);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    closers.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    });
    return (server.address() as { port: number }).port;
  }

  run('a server that closes mid-handshake, answers garbage or stays silent: typed errors', async () => {
    const closing = await rawPeer((s) => s.once('data', () => s.end()));
    expect(await connect(closing, trusting()).catch((e: unknown) => e)).toBeInstanceOf(TlsHandshakeError);
    const garbage = await rawPeer((s) => s.once('data', () => s.write('HTTP/1.1 400 Bad Request\r\n\r\n')));
    const g = await connect(garbage, trusting()).catch((e: unknown) => e);
    expect(g).toBeInstanceOf(TlsHandshakeError);
    expect((g as TlsHandshakeError).reason).toMatch(/wrong version number|packet length|record/i);
    const silent = await rawPeer(() => undefined);
    const t = await connect(silent, trusting(), { handshakeTimeout: 100 }).catch((e: unknown) => e);
    expect(t).toBeInstanceOf(TlsTimeoutError);
  });
});
