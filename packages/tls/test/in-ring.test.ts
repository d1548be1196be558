/**
 * In-ring TLS on the uring driver: the ring carries the session (decrypts in its completion drain,
 * encrypts in its flush, sends handshake flights and alerts itself). What only this record layer
 * has: records split across provided buffers, plaintext larger than a plaintext buffer, a reader
 * that stops while the peer floods (bounded: the plaintext pool and the recv's high-water mark),
 * close_notify and alerts sent by the ring, and no TlsSession call per chunk or per write. The
 * behaviour both record layers share is in the other suites (which run in the ring on this
 * driver by default). Skipped where io_uring cannot serve.
 */
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { connect as nodeConnect, createServer as nodeServer, type TLSSocket } from 'node:tls';
import { loadNative } from '@loch/native';
import {
  TlsAlertError,
  TlsCertificateError,
  TlsClientContext,
  TlsServerContext,
  type TlsStream,
  tlsAccept,
  tlsConnect,
} from '@loch/tls';
import { createRuntime, TcpListener, TcpStream } from '@loch/uring-runtime';
import { afterAll, afterEach, beforeAll, describe, expect } from 'vitest';
import { RuntimeScope } from '../../uring-runtime/test/runtime-scope.js';
import { makeTestPki, type TestPki } from './certs.js';
import { bytes, echo, eventually, nodeClient, readAll, ringServer, roundTrip, uringTest } from './harness.js';

const test = await uringTest();
let pki: TestPki;

beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.remove());

/** TlsSession calls from JavaScript on this thread so far (the engine's crossing counter). */
function tlsCalls(): number {
  const loaded = loadNative();
  return 'error' in loaded ? 0 : loaded.binding.crossings()[2];
}

describe('in-ring TLS (uring driver)', () => {
  const scope = new RuntimeScope();
  afterEach(() => scope.close());

  const serve = (
    handler: (stream: TlsStream) => Promise<void>,
    uring: Record<string, unknown> = {},
    options: { alpn?: string[]; ring?: boolean } = {},
  ) => ringServer(scope, pki, handler, { uring, ...options });

  test('carries the session in the ring by default, and not when asked', async () => {
    let layers: string[] = [];
    const server = await serve(async (stream) => {
      layers.push(stream.recordLayer);
      await echo(stream);
    });
    const socket = await nodeClient(server.port, {
      ca: pki.ca,
      servername: 'localhost',
      ALPNProtocols: ['http/1.1'],
    });
    expect(Buffer.from(await roundTrip(socket, Buffer.from('hello'))).toString()).toBe('hello');
    const first = await server.next();
    expect('stream' in first && first.stream.alpnProtocol).toBe('http/1.1');
    expect('stream' in first && first.stream.servername).toBe('localhost');
    expect(layers).toEqual(['ring']);

    await server.close();
    await scope.runtime!.close();
    layers = [];
    const plain = await serve(
      async (stream) => {
        layers.push(stream.recordLayer);
        await echo(stream);
      },
      {},
      { ring: false },
    );
    const again = await nodeClient(plain.port, { ca: pki.ca, servername: 'localhost' });
    expect(Buffer.from(await roundTrip(again, Buffer.from('hi'))).toString()).toBe('hi');
    await plain.next();
    expect(layers).toEqual(['javascript']);
  });

  test('costs no TlsSession call per request once the handshake is done', async () => {
    const server = await serve(async (stream) => {
      for (;;) {
        const chunk = await stream.recv();
        if (chunk === null) break;
        const copy = chunk.bytes.slice();
        chunk.release();
        await stream.writeAll(copy);
      }
    });
    const socket = await nodeClient(server.port, { ca: pki.ca, servername: 'localhost' });
    await server.next();
    const exchange = async (text: string) => {
      const got = once(socket, 'data');
      socket.write(text);
      return String((await got)[0]);
    };
    await exchange('warm-up');
    const before = tlsCalls();
    for (let i = 0; i < 50; i++) expect(await exchange(`request ${i}`)).toBe(`request ${i}`);
    expect(tlsCalls() - before).toBe(0);
    socket.destroy();
  });

  test('decrypts records split across many small provided buffers', async () => {
    // 512-byte provided buffers: every 16 KiB record spans 33 recv completions.
    const server = await serve(echo, { bufferSize: 512, bufferCount: 64 });
    const socket = await nodeClient(server.port, { ca: pki.ca, servername: 'localhost' });
    const data = bytes(300_000);
    expect(Buffer.compare(await roundTrip(socket, data), Buffer.from(data))).toBe(0);
    const outcome = await server.next();
    expect('stream' in outcome && outcome.stream.recordLayer).toBe('ring');
  });

  test('delivers plaintext larger than a plaintext buffer in several chunks', async () => {
    const sizes: number[] = [];
    const server = await serve(
      async (stream) => {
        const parts: Buffer[] = [];
        for (;;) {
          const chunk = await stream.recv();
          if (chunk === null) break;
          sizes.push(chunk.bytes.byteLength);
          parts.push(Buffer.from(chunk.bytes));
          chunk.release();
        }
        await stream.writeAll(Buffer.concat(parts));
        await stream.shutdown();
      },
      { plainSize: 1024, plainCount: 16 },
    );
    const socket = await nodeClient(server.port, { ca: pki.ca, servername: 'localhost' });
    const data = bytes(200_000);
    expect(Buffer.compare(await roundTrip(socket, data), Buffer.from(data))).toBe(0);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(1024);
    expect(sizes.length).toBeGreaterThanOrEqual(196);
  });

  test('holds a flooding peer back while the reader is stopped, losing nothing', async () => {
    let resume: () => void = () => undefined;
    const resumed = new Promise<void>((r) => {
      resume = r;
    });
    let received = 0;
    const server = await serve(
      async (stream) => {
        // Read one chunk, then stop reading while the peer keeps writing.
        const first = await stream.recv();
        received += first?.bytes.byteLength ?? 0;
        first?.release();
        await resumed;
        const rest = await readAll(stream);
        received += rest.byteLength;
        await stream.writeAll(Buffer.from(String(received)));
        await stream.shutdown();
      },
      { plainCount: 8, plainSize: 4096, bufferCount: 16, bufferSize: 4096 },
    );
    const socket = await nodeClient(server.port, { ca: pki.ca, servername: 'localhost' });
    const total = 32 * 1024 * 1024;
    const block = bytes(1024 * 1024);
    let flushed = false;
    for (let i = 0; i < total / block.byteLength; i++) socket.write(block);
    socket.end();
    socket.once('finish', () => {
      flushed = true;
    });
    // The ring stops taking bytes: most of the 32 MiB waits in the client (TCP flow control),
    // not in the server's memory.
    await eventually(() => socket.writableLength < total - 4 * 1024 * 1024, 2000);
    await new Promise((r) => setTimeout(r, 300));
    expect(flushed).toBe(false);
    expect(socket.writableLength).toBeGreaterThan(total / 4);
    const reply = new Promise<string>((resolve) => {
      let text = '';
      socket.on('data', (b: Buffer) => {
        text += b.toString();
      });
      socket.on('end', () => resolve(text));
    });
    resume();
    expect(await reply).toBe(String(total));
  });

  test('close_notify both ways: the peer sees a clean end, the reader sees closeNotifyReceived', async () => {
    let notified: boolean | undefined;
    const server = await serve(async (stream) => {
      const all = await readAll(stream);
      notified = stream.closeNotifyReceived && stream.facts.closeNotified === true;
      await stream.writeAll(all);
      await stream.shutdown();
    });
    const socket = await nodeClient(server.port, { ca: pki.ca, servername: 'localhost' });
    const back = await roundTrip(socket, Buffer.from('bye'));
    expect(back.toString()).toBe('bye');
    expect(notified).toBe(true);
  });

  test('an end without close_notify reads as an end, with closeNotifyReceived false', async () => {
    let notified: boolean | undefined;
    let data = '';
    const done = new Promise<void>((resolve) => {
      void serve(async (stream) => {
        data = (await readAll(stream)).toString();
        notified = stream.closeNotifyReceived || stream.facts.closeNotified !== false;
        resolve();
      }).then(async (server) => {
        const socket = await nodeClient(server.port, { ca: pki.ca, servername: 'localhost' });
        socket.write('cut');
        await new Promise((r) => setTimeout(r, 50));
        socket.destroy(); // TCP FIN/RST, no close_notify
      });
    });
    await done;
    expect(data).toBe('cut');
    expect(notified).toBe(false);
  });

  test('the ring sends the alert: a node:tls client refusing ALPN-less servers sees no_application_protocol', async () => {
    const server = await serve(echo, {}, { alpn: ['h2'] });
    const error = await new Promise<Error>((resolve) => {
      const socket = nodeConnect({
        host: '127.0.0.1',
        port: server.port,
        ca: pki.ca,
        servername: 'localhost',
        ALPNProtocols: ['http/1.1'],
      });
      socket.once('error', resolve);
      socket.once('secureConnect', () => resolve(new Error('connected')));
    });
    expect(error.message).toMatch(/no application protocol|alert number 120/i);
    const failure = await server.nextError();
    expect(failure).toBeInstanceOf(Error);
  });

  test("a peer's fatal alert fails the handshake with TlsAlertError on both ends' rings", async () => {
    const server = await serve(echo);
    // A Loch client (also in the ring) that does not trust the server's CA sends unknown_ca.
    const strict = new TlsClientContext({ ca: pki.otherCa });
    const raw = await TcpStream.connect({ host: '127.0.0.1', port: server.port, runtime: scope.runtime! });
    await expect(tlsConnect(raw, strict, { servername: 'localhost' })).rejects.toBeInstanceOf(
      TlsCertificateError,
    );
    const failure = await server.nextError();
    expect(failure, String(failure)).toBeInstanceOf(TlsAlertError);
    expect((failure as TlsAlertError).alert).toBe(48);
  });

  test('a Loch client in the ring: verification, ALPN, data both ways and a plain-HTTP peer', async () => {
    const runtime = scope.use(await createRuntime({ driver: 'uring', log: () => undefined }));
    const node = nodeServer(
      { key: pki.localhost.key, cert: pki.localhost.chain, ALPNProtocols: ['h2', 'http/1.1'] },
      (socket: TLSSocket) => socket.pipe(socket),
    );
    node.listen(0, '127.0.0.1');
    await once(node, 'listening');
    scope.defer(() => new Promise((r) => node.close(r)));
    const port = (node.address() as { port: number }).port;
    const client = new TlsClientContext({ ca: pki.ca, alpn: ['http/1.1'] });
    const raw = await TcpStream.connect({ host: '127.0.0.1', port, runtime });
    const stream = await tlsConnect(raw, client, { servername: 'localhost' });
    expect(stream.recordLayer).toBe('ring');
    expect(stream.alpnProtocol).toBe('http/1.1');
    const data = bytes(1_000_000);
    const reading = (async () => {
      const parts: Buffer[] = [];
      let n = 0;
      while (n < data.byteLength) {
        const chunk = await stream.recv();
        if (chunk === null) break;
        parts.push(Buffer.from(chunk.bytes));
        n += chunk.bytes.byteLength;
        chunk.release();
      }
      return Buffer.concat(parts);
    })();
    await stream.writeAll(data);
    expect(Buffer.compare(await reading, Buffer.from(data))).toBe(0);
    await stream.close();

    // An untrusted server certificate: the ring's handshake fails with TlsCertificateError.
    const strict = new TlsClientContext({ ca: pki.otherCa });
    const raw2 = await TcpStream.connect({ host: '127.0.0.1', port, runtime });
    await expect(tlsConnect(raw2, strict, { servername: 'localhost' })).rejects.toBeInstanceOf(
      TlsCertificateError,
    );
  });

  test('a plain-HTTP request handed over from the ring reads and writes raw', async () => {
    const runtime = scope.use(await createRuntime({ driver: 'uring', log: () => undefined }));
    const context = new TlsServerContext({
      certificates: [{ chain: pki.localhost.chain, key: pki.localhost.key }],
    });
    const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime });
    scope.defer(() => listener.close());
    const port = (listener.localAddress as { port: number }).port;
    const served = (async () => {
      const raw = await listener.accept();
      try {
        await tlsAccept(raw, context, { plainHttp: 'hand-over' });
        return 'handshook';
      } catch (error) {
        const e = error as { received?: Uint8Array; stream?: TcpStream };
        const head = Buffer.from(e.received ?? []).toString();
        await e.stream?.writeAll(Buffer.from('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n'));
        await e.stream?.close();
        return head;
      }
    })();
    const socket = netConnect(port, '127.0.0.1');
    socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    let answer = '';
    socket.on('data', (b: Buffer) => {
      answer += b.toString();
    });
    await once(socket, 'close');
    expect(await served).toMatch(/^GET \/ HTTP\/1\.1/);
    expect(answer).toMatch(/^HTTP\/1\.1 400/);
  });
});
