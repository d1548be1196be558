/**
 * In-ring TLS write progress (ByteStream.sentBytes of a stream the ring carries a session on) is
 * the ring's ciphertext sent count, which the ring keeps in memory JavaScript reads
 * (uring-runtime's uring/tls-sent.ts): reading it makes no call into the binding (an HTTP
 * server's write deadline reads it once per response), it counts the ciphertext the kernel took,
 * and a conn id the ring reuses after a close starts from nothing, while the closed stream keeps
 * its own last count. Skipped where io_uring cannot serve.
 */
import { once } from 'node:events';
import { createServer as nodeServer } from 'node:tls';
import { loadNative } from '@loch/native';
import { TlsClientContext, TlsServerContext, type TlsStream, tlsConnect } from '@loch/tls';
import { createRuntime, sentBytes, TcpStream } from '@loch/uring-runtime';
import { afterAll, afterEach, beforeAll, describe, expect } from 'vitest';
import { RuntimeScope } from '../../uring-runtime/test/runtime-scope.js';
import { countCalls } from './binding-calls.cjs';
import { makeTestPki, type TestPki } from './certs.js';
import { eventually, LochTlsServer, nodeClient, uringTest } from './harness.js';

const test = await uringTest();
let pki: TestPki;

beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.remove());

/** Counts every call into the binding's functions while `run` runs, by name. */
async function bindingCalls(run: () => Promise<void> | void): Promise<Map<string, number>> {
  const loaded = loadNative();
  if ('error' in loaded) throw loaded.error;
  const counting = countCalls(loaded.binding);
  try {
    await run();
  } finally {
    counting.restore();
  }
  return counting.calls;
}

describe('in-ring TLS sent counts (uring driver)', () => {
  const scope = new RuntimeScope();
  afterEach(() => scope.close());

  test('reading write progress makes no call into the binding, and counts the ciphertext sent', async () => {
    const runtime = scope.use(await createRuntime({ driver: 'uring', log: () => undefined }));
    const context = new TlsServerContext({
      certificates: [{ chain: pki.localhost.chain, key: pki.localhost.key }],
    });
    const SIZE = 256 * 1024;
    let tls: TlsStream | undefined;
    let written = false;
    let finish!: () => void;
    const finished = new Promise<void>((r) => {
      finish = r;
    });
    const server = await new LochTlsServer(runtime, context, async (stream) => {
      tls = stream;
      await stream.writeAll(new Uint8Array(SIZE));
      written = true;
      await finished;
    }).listen();
    scope.defer(() => server.close());
    scope.defer(() => finish()); // runs first: the handler ends, so the server's close does not wait
    const socket = await nodeClient(server.port, { ca: pki.ca, servername: 'localhost' });
    scope.defer(() => socket.destroy());
    let read = 0;
    socket.on('data', (b: Buffer) => {
      read += b.length;
    });
    expect(await eventually(() => written && read === SIZE, 10_000)).toBe(true);
    expect(tls!.recordLayer).toBe('ring');
    let progress = 0;
    const calls = await bindingCalls(() => {
      for (let i = 0; i < 1000; i++) progress = sentBytes(tls!);
    });
    expect(Object.fromEntries(calls)).toEqual({});
    // Every record of the body went out: the ciphertext (the handshake's flight too) is more.
    expect(progress).toBeGreaterThan(SIZE);
  });

  test('a conn id reused after a close starts from nothing; the closed stream keeps its own count', async () => {
    const runtime = scope.use(await createRuntime({ driver: 'uring', log: () => undefined }));
    // A node:tls server that reads everything each client sends.
    const peer = nodeServer({ key: pki.localhost.key, cert: pki.localhost.chain }, (s) => {
      s.on('data', () => {});
      s.on('error', () => {});
    });
    peer.listen(0, '127.0.0.1');
    await once(peer, 'listening');
    scope.defer(() => new Promise((r) => peer.close(r)));
    const port = (peer.address() as { port: number }).port;
    const context = new TlsClientContext({ ca: pki.ca });
    const open = async () => {
      const raw = await TcpStream.connect({ host: '127.0.0.1', port, runtime });
      return { raw, tls: await tlsConnect(raw, context, { servername: 'localhost', session: false }) };
    };

    const a = await open();
    expect(a.tls.recordLayer).toBe('ring');
    await a.tls.writeAll(new Uint8Array(512 * 1024));
    const aSent = sentBytes(a.raw);
    expect(aSent).toBeGreaterThan(512 * 1024);
    // Its close resolves once the ring closed the fd and let go of the conn (its close_notify's
    // send completed before): its id is the next one attached.
    await a.tls.close();

    // The next session attached takes the id a had: before its ClientHello was sent its count is 0.
    const raw = await TcpStream.connect({ host: '127.0.0.1', port, runtime });
    const handshake = tlsConnect(raw, context, { servername: 'localhost', session: false });
    scope.defer(() =>
      handshake.then(
        (s) => s.close(),
        () => raw.close(),
      ),
    );
    expect(sentBytes(raw)).toBe(0);
    const b = await handshake;
    expect(b.recordLayer).toBe('ring');
    await b.writeAll(new Uint8Array(100));
    const bSent = sentBytes(raw);
    expect(bSent).toBeGreaterThan(100);
    expect(bSent).toBeLessThan(16 * 1024);
    // The closed stream's count is its own, not the conn's that took its id.
    expect(sentBytes(a.raw)).toBe(aSent);
  });
});
