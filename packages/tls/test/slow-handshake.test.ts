/**
 * A slow handshake on every runtime driver (issue 13: "a slow handshake ... ends one connection,
 * never a worker"): a client that trickles a real ClientHello one byte per tick keeps the
 * connection busy, but the handshake deadline is one deadline from the accept, not an idle timer
 * that each byte restarts, so the server cuts it with TlsTimeoutError long before the hello is
 * whole, while another client handshakes and is echoed meanwhile. No timing assertion: the
 * check is how many of the hello's bytes had been sent when the server closed (the trickle's
 * ticks are timers too, so a slow machine slows both sides alike).
 */
import { createServer as createNetServer, connect as netConnect, type Socket } from 'node:net';
import { connect as nodeTlsConnect } from 'node:tls';
import { TlsServerContext, TlsTimeoutError } from '@loch/tls';
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
  roundTrip,
} from './harness.js';

const drivers = await driverCases();
let pki: TestPki;
let hello: Buffer;

/** The first TLS record node:tls sends (its ClientHello), caught by a plain TCP server. */
async function capturedClientHello(): Promise<Buffer> {
  const catcher = createNetServer();
  const got = new Promise<Buffer>((resolve) => {
    catcher.on('connection', (s: Socket) => {
      let data = Buffer.alloc(0);
      s.on('error', () => undefined);
      s.on('data', (d: Buffer) => {
        data = Buffer.concat([data, d]);
        if (data.length >= 5 && data.length >= 5 + data.readUInt16BE(3)) {
          s.destroy();
          resolve(data.subarray(0, 5 + data.readUInt16BE(3)));
        }
      });
    });
  });
  await new Promise<void>((r) => catcher.listen(0, '127.0.0.1', r));
  const port = (catcher.address() as { port: number }).port;
  const client = nodeTlsConnect({
    host: '127.0.0.1',
    port,
    servername: 'localhost',
    rejectUnauthorized: false,
  });
  client.on('error', () => undefined);
  const record = await got;
  client.destroy();
  await new Promise((r) => catcher.close(r));
  return record;
}

beforeAll(async () => {
  pki = makeTestPki();
  hello = await capturedClientHello();
});
afterAll(() => pki.remove());

/** Milliseconds between two bytes of the trickled hello. */
const TICK = 20;
/** The server's handshake deadline: a few ticks, a small part of the whole trickle. */
const DEADLINE = 200;

describe.each(drivers)('a slow handshake on the $name driver', ({ name, skip }) => {
  const run = skip === undefined ? it : it.skip;
  let runtime: Runtime;
  let server: LochTlsServer;
  let baseline = 0;

  beforeEach(async () => {
    runtime = await createRuntime({ driver: name, log: () => undefined });
    baseline = fdCount();
  });
  afterEach(async () => {
    await server?.close();
    await runtime.close();
  });

  run(
    'a ClientHello trickled a byte per tick is cut at the handshake deadline; others are served',
    async () => {
      // The hello is a real one: at one byte per tick it takes far longer than the deadline.
      expect(hello[0]).toBe(0x16);
      expect(hello.length * TICK).toBeGreaterThan(10 * DEADLINE);
      const context = new TlsServerContext({
        certificates: [{ chain: pki.localhost.chain, key: pki.localhost.key }],
      });
      server = await new LochTlsServer(runtime, context, echo, { handshakeTimeout: DEADLINE }).listen();

      const raw = netConnect(server.port, '127.0.0.1');
      raw.on('error', () => undefined);
      let sent = 0;
      let sentAtClose = -1;
      const closed = new Promise<void>((resolve) =>
        raw.once('close', () => {
          sentAtClose = sent;
          resolve();
        }),
      );
      await new Promise<void>((resolve) => raw.once('connect', () => resolve()));
      const trickle = setInterval(() => {
        if (sent < hello.length && !raw.destroyed) raw.write(hello.subarray(sent, ++sent));
      }, TICK);
      try {
        // Another client, meanwhile: handshaken and echoed (the slow one holds no worker up).
        const other = await nodeClient(server.port, { ca: pki.ca, servername: 'localhost' });
        const outcomes = [await server.next(), await server.next()];
        const failure = (outcomes.find((o) => 'error' in o) as { error: unknown } | undefined)?.error;
        expect(failure, String(failure)).toBeInstanceOf(TlsTimeoutError);
        expect((failure as TlsTimeoutError).code).toBe('ERR_LOCH_TLS_HANDSHAKE_TIMEOUT');
        expect((await roundTrip(other, bytes(1000))).byteLength).toBe(1000);
        other.destroy();
        await closed;
      } finally {
        clearInterval(trickle);
        raw.destroy();
      }
      // The server closed it while most of the hello was still to come: each byte did not
      // restart the deadline (that would let the hello finish and wait out one more deadline).
      expect(sentAtClose).toBeGreaterThan(0);
      expect(sentAtClose).toBeLessThan(hello.length / 2);
      await server.close();
      expect(await eventually(() => fdCount() <= baseline)).toBe(true);
    },
  );
});
