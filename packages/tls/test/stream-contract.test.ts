/**
 * TlsStream keeps the ByteStream contract of @loch/uring-runtime (stream.ts), on every driver:
 * recvTo/writeTo results never arrive from inside the call, close() settles a pending receive and
 * later writes with ECANCELED, read(buf) leaves the rest of a chunk first in line, an aborted
 * recv() loses no bytes, empty writes complete, and `facts` carry what TLS negotiated.
 */
import { TlsClientContext, TlsServerContext, type TlsStream, tlsAccept, tlsConnect } from '@loch/tls';
import {
  createRuntime,
  type RecvChunk,
  type Runtime,
  RuntimeError,
  TcpListener,
  TcpStream,
} from '@loch/uring-runtime';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makeTestPki, type TestPki } from './certs.js';
import { driverCases } from './harness.js';

const drivers = await driverCases();
let pki: TestPki;

beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.remove());

describe.each(drivers)('TlsStream contract on the $name driver', ({ name, skip }) => {
  const run = skip === undefined ? it : it.skip;
  let runtime: Runtime;
  let pair: { client: TlsStream; server: TlsStream };
  let listener: TcpListener;

  beforeEach(async () => {
    if (skip !== undefined) return;
    runtime = await createRuntime({ driver: name, log: () => undefined });
    listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime });
    const port = (listener.localAddress as { port: number }).port;
    const serverContext = new TlsServerContext({
      certificates: [{ chain: pki.localhost.chain, key: pki.localhost.key }],
      alpn: ['h2', 'http/1.1'],
    });
    const accepted = listener.accept().then((raw) => tlsAccept(raw, serverContext));
    const raw = await TcpStream.connect({ host: '127.0.0.1', port, runtime });
    const client = await tlsConnect(raw, new TlsClientContext({ ca: pki.ca, alpn: ['h2'] }), {
      servername: 'localhost',
    });
    pair = { client, server: await accepted };
  });

  afterEach(async () => {
    if (skip !== undefined) return;
    await pair.client.close();
    await pair.server.close();
    await listener.close();
    await runtime.close();
  });

  run('recvTo and writeTo deliver later, never from inside the call', async () => {
    const { client, server } = pair;
    let inside = true;
    let written: RuntimeError | undefined | 'pending' = 'pending';
    client.writeTo(new TextEncoder().encode('ping'), {
      onWritten(error) {
        expect(inside).toBe(false);
        written = error;
      },
    });
    const got = new Promise<string>((resolve, reject) => {
      server.recvTo({
        onRecv(chunk, error) {
          expect(inside).toBe(false);
          if (error !== undefined || chunk === null) return reject(error ?? new Error('end'));
          resolve(Buffer.from(chunk.bytes).toString());
          chunk.release();
        },
      });
    });
    inside = false;
    expect(await got).toBe('ping');
    await new Promise((r) => setTimeout(r, 0));
    expect(written).toBeUndefined();
    // Data already decrypted is also delivered later, not from inside recvTo.
    await server.writeAll(new TextEncoder().encode('ab'));
    const first = await client.recv();
    expect(Buffer.from(first!.bytes).toString()).toBe('ab');
    first!.release();
  });

  run('close() settles a pending receive and later writes with ECANCELED', async () => {
    const { client } = pair;
    const pending = new Promise<RuntimeError | undefined>((resolve) =>
      client.recvTo({ onRecv: (_chunk, error) => resolve(error) }),
    );
    await client.close();
    const error = await pending;
    expect(error).toBeInstanceOf(RuntimeError);
    expect(error?.code).toBe('ECANCELED');
    expect(client.closed).toBe(true);
    await expect(client.writeAll(new Uint8Array([1]))).rejects.toMatchObject({ code: 'ECANCELED' });
  });

  run('read(buf) leaves the rest of a chunk first; an aborted recv loses nothing', async () => {
    const { client, server } = pair;
    await server.writeAll(new TextEncoder().encode('hello world'));
    const small = new Uint8Array(5);
    const [n] = await client.read(small);
    expect(Buffer.from(small.subarray(0, n)).toString()).toBe('hello');
    const rest = await client.recv();
    expect(Buffer.from(rest!.bytes).toString()).toBe(' world');
    rest!.release();
    const abort = new AbortController();
    const aborted = client.recv({ signal: abort.signal });
    abort.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'ECANCELED' });
    await server.writeAll(new TextEncoder().encode('kept'));
    const next = (await client.recv()) as RecvChunk;
    expect(Buffer.from(next.bytes).toString()).toBe('kept');
    next.release();
  });

  run('an empty write completes; writev of several buffers arrives whole', async () => {
    const { client, server } = pair;
    await client.writeAll(new Uint8Array(0));
    expect(await client.writev([new Uint8Array([1, 2]), new Uint8Array(0), new Uint8Array([3])])).toBe(3);
    const got: number[] = [];
    while (got.length < 3) {
      const chunk = (await server.recv())!;
      got.push(...chunk.bytes);
      chunk.release();
    }
    expect(got).toEqual([1, 2, 3]);
  });

  run('writes started from onWritten go out in order, each settled once after its own bytes', async () => {
    const { client, server } = pair;
    const settled: number[] = [];
    const total = 50;
    const size = (n: number) => 1000 + n;
    await new Promise<void>((resolve, reject) => {
      // Groups of one or two writes (so a batch below carries several targets); the last write
      // of a group starts the next group from its onWritten.
      const writeGroup = (first: number) => {
        const count = first % 7 === 0 && first + 1 < total ? 2 : 1;
        for (let k = 0; k < count; k++) {
          const n = first + k;
          client.writeTo(new Uint8Array(size(n)).fill(n), {
            onWritten(error) {
              if (error !== undefined) return reject(error);
              settled.push(n);
              if (n === total - 1) resolve();
              else if (k === count - 1) writeGroup(n + 1);
            },
          });
        }
      };
      writeGroup(0);
    });
    expect(settled).toEqual(Array.from({ length: total }, (_, i) => i));
    let expected = 0;
    let offset = 0;
    let received = 0;
    const want = Array.from({ length: total }, (_, i) => size(i)).reduce((a, b) => a + b, 0);
    while (received < want) {
      const chunk = (await server.recv())!;
      for (const byte of chunk.bytes) {
        expect(byte).toBe(expected);
        if (++offset === size(expected)) {
          expected++;
          offset = 0;
        }
      }
      received += chunk.bytes.byteLength;
      chunk.release();
    }
    expect(expected).toBe(total);
  });

  run('facts carry what TLS negotiated, the same object on every read', () => {
    const { client, server } = pair;
    expect(server.facts).toBe(server.facts);
    expect(server.facts).toEqual({
      secure: true,
      alpnProtocol: 'h2',
      servername: 'localhost',
      peerCertificate: null,
      clientAddress: server.remoteAddress,
      closeNotified: false,
    });
    expect(client.facts.secure).toBe(true);
    expect(client.facts.peerCertificate).toBeInstanceOf(Uint8Array);
    expect(Object.keys(client.facts)).toEqual([
      'secure',
      'alpnProtocol',
      'servername',
      'peerCertificate',
      'clientAddress',
      'closeNotified',
    ]);
  });
});
