/**
 * The handshake deadline arms no timer per handshake: every handshake of a thread shares one
 * coarse sweep (src/internal/handshake-deadline.ts). A `setTimeout` per handshake cost a Timeout,
 * a closure and native calls (libuv's clock, the timer handle's ref and unref) on each of the
 * thousands of handshakes a second a server makes. Counted with async_hooks: Timeouts created with
 * the handshake's own duration while both ends of many connections handshake, on both drivers. That
 * the deadline still fires (and only its connection fails) is server.test.ts's and
 * client.test.ts's "times out" cases, and slow-handshake.test.ts's.
 */
import { createHook } from 'node:async_hooks';
import { TlsClientContext, TlsServerContext, tlsAccept, tlsConnect } from '@loch/tls';
import { createRuntime, TcpListener, TcpStream } from '@loch/uring-runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestPki, type TestPki } from './certs.js';
import { drain, driverCases, eventually } from './harness.js';

const drivers = await driverCases();
let pki: TestPki;

beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.remove());

/** A handshake deadline no other timer of the process has: its Timeouts are the handshakes'. */
const DEADLINE = 7_777;

describe.each(drivers)('handshake deadlines on the $name driver', ({ name, skip }) => {
  const test = skip === undefined ? it : it.skip;

  test('a handshake, server or client, arms no timer of its own', async () => {
    const runtime = await createRuntime({ driver: name, log: () => undefined });
    const server = new TlsServerContext({
      certificates: [{ chain: pki.localhost.chain, key: pki.localhost.key }],
      handshakeTimeout: DEADLINE,
    });
    const client = new TlsClientContext({ ca: pki.ca, handshakeTimeout: DEADLINE });
    const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime });
    const port = (listener.localAddress as { port: number }).port;
    let served = 0;
    let failed = 0;
    const accepting = (async () => {
      for (;;) {
        const raw = await listener.accept().catch(() => null);
        if (raw === null) return;
        void tlsAccept(raw, server)
          .then(drain)
          .catch(() => {
            failed++;
          })
          .finally(() => {
            served++;
          });
      }
    })();
    let handshakeTimers = 0;
    const hook = createHook({
      init(_id, type, _trigger, resource) {
        if (type === 'Timeout' && (resource as { _idleTimeout?: number })._idleTimeout === DEADLINE)
          handshakeTimers++;
      },
    });
    const connections = 20;
    hook.enable();
    try {
      for (let i = 0; i < connections; i++) {
        const raw = await TcpStream.connect({ host: '127.0.0.1', port, runtime });
        const stream = await tlsConnect(raw, client, { servername: 'localhost', session: false });
        expect(stream.protocol).toMatch(/^TLSv1\.[23]$/);
        await stream.close();
      }
      expect(await eventually(() => served === connections)).toBe(true);
    } finally {
      hook.disable();
      await listener.close();
      await accepting;
      await runtime.close();
    }
    expect(failed).toBe(0);
    // One timer per handshake (both ends: 2 per connection) before the shared sweep; none now.
    expect(handshakeTimers).toBe(0);
  });
});
