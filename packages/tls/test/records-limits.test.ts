/**
 * What a peer can make Loch's record layer do for records that carry no application data
 * (native/src/tls13_record.cc), on every driver; records sealed by the test (records-peer.ts).
 * - KeyUpdate(update_requested) while the server sent no application data since its last KeyUpdate
 *   gets no new answer (RFC 8446 4.6.3: "an implementation which receives multiple KeyUpdates
 *   while it is silent" answers once): a peer that asks and never reads cannot make the server
 *   queue output without bound. Once the server sent data again, the next request is answered.
 * - More than 32 records in a row without application data (zero-length ones, user_canceled
 *   alerts, KeyUpdates; OpenSSL and BoringSSL cap each kind about there) end the connection with
 *   unexpected_message and a TlsProtocolError; 32 of them, then data, are fine, and data resets
 *   the count.
 */
import { TlsProtocolError } from '@loch/tls';
import { createRuntime, type Runtime } from '@loch/uring-runtime';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makeTestPki, type TestPki } from './certs.js';
import { driverCases } from './harness.js';
import { ALERT, APPLICATION_DATA, RecordPeer, records } from './records-peer.js';
import { endingBefore, RecordsServer } from './records-server.js';

const drivers = await driverCases();
let pki: TestPki;

beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.remove());

/** The server's KeyUpdate records in `wire` from byte `from`: 5-byte message + type + tag = 22. */
function keyUpdatesIn(wire: Buffer[], from: number): number {
  return records(Buffer.concat(wire).subarray(from)).filter(
    ([type, length]) => type === APPLICATION_DATA && length === 22,
  ).length;
}

describe.each(drivers)(
  "records without application data on Loch's record layer, $name driver",
  ({ name, skip }) => {
    const test = skip === undefined ? it : it.skip;
    let runtime: Runtime;
    let server: RecordsServer;
    const peers: RecordPeer[] = [];

    beforeEach(async () => {
      runtime = await createRuntime({ driver: name, log: () => undefined });
      server = await new RecordsServer(runtime, pki, 'TLS_AES_128_GCM_SHA256').listen();
    });
    afterEach(async () => {
      for (const p of peers.splice(0)) p.destroy();
      await server.close();
      await runtime.close();
    });

    async function peer(): Promise<RecordPeer> {
      const p = await RecordPeer.connect(server.port, pki.ca);
      peers.push(p);
      return p;
    }

    test('KeyUpdate requests while the server is silent get one answer; after its data, one more', async () => {
      const p = await peer();
      const from = Buffer.concat(p.wire).length; // a record boundary: the 'ok' echo arrived whole
      await p.waitFor(
        () => keyUpdatesIn(p.wire, from) === 1,
        'the answer to the first request',
        () => p.write(p.keyUpdate(true)),
      );
      // Four more requests, each in a write of its own (on their own they were answered one each).
      for (let i = 0; i < 4; i++) {
        p.write(p.keyUpdate(true));
        await new Promise((r) => setTimeout(r, 20));
      }
      await p.waitFor(
        () => p.text().toString() === 'ping',
        'the echo of ping',
        () => p.write(p.seal(APPLICATION_DATA, Buffer.from('ping'))),
      );
      // Everything the server sent before that echo has arrived (one ordered stream).
      expect(keyUpdatesIn(p.wire, from)).toBe(1);
      // The echo was sealed under the server's current key: a request now is answered again.
      await p.waitFor(
        () => p.text().toString() === 'pingpong',
        'the echo of pong',
        () => p.write(Buffer.concat([p.keyUpdate(true), p.seal(APPLICATION_DATA, Buffer.from('pong'))])),
      );
      expect(keyUpdatesIn(p.wire, from)).toBe(2);
      expect(p.error).toBeUndefined();
      p.write(p.seal(ALERT, Buffer.from([1, 0])));
      expect(await server.endings[0]).toEqual({ error: null, closeNotified: true });
    });

    test('32 records without data, then data, twice: fine', async () => {
      const p = await peer();
      for (const round of ['one', 'two']) {
        const idle: Buffer[] = [];
        for (let i = 0; i < 32; i++) {
          if (i % 3 === 0) idle.push(p.seal(APPLICATION_DATA, Buffer.alloc(0)));
          else if (i % 3 === 1)
            idle.push(p.seal(ALERT, Buffer.from([1, 90]))); // user_canceled
          else idle.push(p.keyUpdate(false));
        }
        const before = p.text().length;
        await p.waitFor(
          () => p.text().length === before + round.length,
          `the echo of round ${round}`,
          () => p.write(Buffer.concat([...idle, p.seal(APPLICATION_DATA, Buffer.from(round))])),
        );
      }
      expect(p.text().toString()).toBe('onetwo');
      p.write(p.seal(ALERT, Buffer.from([1, 0])));
      expect(await server.endings[0]).toEqual({ error: null, closeNotified: true });
    });

    test.each([
      ['zero-length records', (p: RecordPeer) => p.seal(APPLICATION_DATA, Buffer.alloc(0))],
      ['user_canceled alerts', (p: RecordPeer) => p.seal(ALERT, Buffer.from([1, 90]))],
      ['KeyUpdates', (p: RecordPeer) => p.keyUpdate(false)],
      ['KeyUpdates with update_requested', (p: RecordPeer) => p.keyUpdate(true)],
    ])('33 %s in a row end the connection with unexpected_message', async (_, make) => {
      const p = await peer();
      const flood: Buffer[] = [];
      for (let i = 0; i < 33; i++) flood.push(make(p));
      // Data after them: never echoed.
      p.write(Buffer.concat([...flood, p.seal(APPLICATION_DATA, Buffer.from('after'))]));
      const ending = await endingBefore(p, server.endings[0]!, 'after');
      expect(ending.error).toBeInstanceOf(TlsProtocolError);
      expect((ending.error as Error).message).toMatch(
        /more than 32 TLS records in a row without application data/,
      );
      await p.closed;
      expect(p.error?.message).toMatch(/unexpected message/i);
      expect(p.text().toString()).toBe('');
    });
  },
);
