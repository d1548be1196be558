/**
 * Records a peer tampered with after the handshake, on OpenSSL's record layer (`records:
 * 'openssl'`, the opt-out; the default is Loch's) and every runtime driver (issue 13: "garbage ... end one connection, never a worker"; errors are
 * typed; own-records.test.ts has the same cases on Loch's record layer, truncated-records.test.ts
 * the truncated ones): an application record whose tag does not verify, one longer than TLS
 * allows, a handshake message in the clear and a record of no known content type, each written
 * beneath a node:tls client's session once it echoed. The server's reader fails with
 * TlsProtocolError (never an end of stream, never an untyped throw), the client hears the fatal alert
 * the server sent, and a client connected all along is still echoed afterwards.
 */
import { connect as netConnect } from 'node:net';
import { connect as nodeTlsConnect, type TLSSocket } from 'node:tls';
import { TlsProtocolError, TlsServerContext, type TlsStream } from '@loch/tls';
import { createRuntime, type Runtime } from '@loch/uring-runtime';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makeTestPki, type TestPki } from './certs.js';
import { bytes, driverCases, eventually, fdCount, LochTlsServer, nodeClient, roundTrip } from './harness.js';

const drivers = await driverCases();
let pki: TestPki;

beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.remove());

/** What each case writes beneath the session, and the alert the client must hear. */
const CASES: readonly (readonly [string, Buffer, RegExp])[] = [
  [
    'a forged record',
    Buffer.concat([Buffer.from([23, 3, 3, 0, 40]), Buffer.from(bytes(40))]),
    /bad record mac/i,
  ],
  [
    'an overlong record',
    Buffer.concat([Buffer.from([23, 3, 3, 0x48, 0x01]), Buffer.from(bytes(100))]),
    /record overflow/i,
  ],
  ['a handshake message in the clear', Buffer.from([22, 3, 3, 0, 4, 24, 0, 0, 1]), /unexpected message/i],
  ['no known content type', Buffer.from([0x42, 3, 3, 0, 3, 1, 2, 3]), /unexpected message/i],
];

describe.each(drivers)('tampered records on the $name driver (OpenSSL record layer)', ({ name, skip }) => {
  const run = skip === undefined ? it : it.skip;
  let runtime: Runtime;
  let server: LochTlsServer;
  let baseline = 0;
  /** How each connection's reader ended: null at end of stream, else what it threw. */
  const endings: Promise<unknown>[] = [];

  beforeEach(async () => {
    runtime = await createRuntime({ driver: name, log: () => undefined });
    baseline = fdCount();
    endings.length = 0;
  });
  afterEach(async () => {
    await server?.close();
    await runtime.close();
  });

  /** Echoes until the end, recording how the reader ended. */
  function echoing(stream: TlsStream): Promise<void> {
    const ending = (async () => {
      for (;;) {
        const chunk = await stream.recv();
        if (chunk === null) return null;
        const copy = chunk.bytes.slice();
        chunk.release();
        await stream.writeAll(copy);
      }
    })().catch((error: unknown) => error);
    endings.push(ending);
    return ending.then(() => undefined);
  }

  /** A node:tls client whose socket beneath the test can write to. */
  async function clientOverRaw(
    port: number,
  ): Promise<{ secure: TLSSocket; raw: ReturnType<typeof netConnect> }> {
    const raw = netConnect({ host: '127.0.0.1', port });
    raw.on('error', () => undefined);
    const secure = nodeTlsConnect({ socket: raw, ca: pki.ca, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    secure.on('error', () => undefined);
    return { secure, raw };
  }

  run(
    'each ends its own connection with a typed error and a fatal alert; a bystander is still echoed',
    async () => {
      const context = new TlsServerContext({
        certificates: [{ chain: pki.localhost.chain, key: pki.localhost.key }],
        records: 'openssl',
      });
      server = await new LochTlsServer(runtime, context, echoing).listen();
      const bystander = await nodeClient(server.port, { ca: pki.ca, servername: 'localhost' });
      expect('stream' in (await server.next())).toBe(true);
      for (const [i, [what, record, alert]] of CASES.entries()) {
        const { secure, raw } = await clientOverRaw(server.port);
        const opened = await server.next();
        expect('stream' in opened, what).toBe(true);
        expect((opened as { stream: TlsStream }).stream.recordLayer === 'ring', what).toBe(name === 'uring');
        // One good exchange first: the session is established both ways.
        const echoed = new Promise<Buffer>((r) => secure.once('data', r));
        secure.write('ok');
        expect((await echoed).toString(), what).toBe('ok');
        const heard = new Promise<string>((resolve) => {
          secure.once('error', (e: Error) => resolve(e.message));
          secure.once('close', () => resolve('closed without an alert'));
        });
        raw.write(record);
        expect(await heard, what).toMatch(alert);
        const ending = await endings[i + 1];
        expect(ending, `${what}: ${String(ending)}`).toBeInstanceOf(TlsProtocolError);
        expect((ending as TlsProtocolError).code, what).toBe('ERR_LOCH_TLS_PROTOCOL');
        secure.destroy();
      }
      // The connection that was open all along carried on.
      const data = bytes(100_000);
      expect(Buffer.from(await roundTrip(bystander, data)).equals(Buffer.from(data))).toBe(true);
      bystander.destroy();
      await server.close();
      expect(await eventually(() => fdCount() <= baseline)).toBe(true);
    },
  );
});
