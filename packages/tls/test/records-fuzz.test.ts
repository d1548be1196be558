/**
 * Generated record sequences against Loch's record layer (fast-check), on every driver; records
 * sealed by the test under node:tls's client secret (records-peer.ts), echoed by the server.
 * - Valid: application data records of 0..16,384 bytes with 0..16,384 - size bytes of padding,
 *   KeyUpdates with and without update_requested at any point, the bytes cut into TCP writes of
 *   random sizes: the echo is the data, whole and in order, and close_notify ends it cleanly.
 * - Invalid: a valid prefix, then one bad record (a flipped bit anywhere but the length, an
 *   overlong length, no content type, an unknown inner type, bad KeyUpdates, a bad alert, an empty
 *   handshake record, 2^14 + 1 bytes of content, a wrong sequence number, a post-handshake message
 *   a server refuses, a record in the clear, a fatal alert, 33 records without data, a forged record),
 *   then data: the reader ends with a typed error (TlsAlertError for the
 *   peer's alert, TlsProtocolError otherwise), nothing after the bad record is echoed, and the
 *   worker carries on (the next run connects to it).
 */
import { TlsAlertError, TlsError, TlsProtocolError } from '@loch/tls';
import { createRuntime, type Runtime } from '@loch/uring-runtime';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makeTestPki, type TestPki } from './certs.js';
import { driverCases } from './harness.js';
import { ALERT, APPLICATION_DATA, HANDSHAKE, header, RecordPeer } from './records-peer.js';
import { endingBefore, RecordsServer } from './records-server.js';

const drivers = await driverCases();
const SUITES = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'] as const;
let pki: TestPki;

beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.remove());

type Op =
  | { kind: 'data'; size: number; padding: number; fill: number }
  | { kind: 'keyUpdate'; requested: boolean };

const dataOp = fc.record({
  kind: fc.constant('data' as const),
  size: fc.oneof(fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 16_384 })),
  padding: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 16_384 })),
  fill: fc.integer({ min: 0, max: 255 }),
});
const keyUpdateOp = fc.record({ kind: fc.constant('keyUpdate' as const), requested: fc.boolean() });
const opsArb = fc.array(fc.oneof({ weight: 4, arbitrary: dataOp }, { weight: 1, arbitrary: keyUpdateOp }), {
  minLength: 1,
  maxLength: 14,
});
const cutsArb = fc.array(fc.integer({ min: 1, max: 20_000 }), { minLength: 1, maxLength: 6 });

/** An op's content: `size` bytes from `fill`, different at each position. */
function content(op: Op & { kind: 'data' }): Buffer {
  const out = Buffer.alloc(op.size);
  for (let i = 0; i < op.size; i++) out[i] = (op.fill + i * 31 + (i >> 7)) & 0xff;
  return out;
}

/** Seals `ops` in order; returns the bytes and the application data they carry. */
function sealOps(p: RecordPeer, ops: readonly Op[]): { wire: Buffer; data: Buffer } {
  const wire: Buffer[] = [];
  const data: Buffer[] = [];
  for (const op of ops) {
    if (op.kind === 'keyUpdate') {
      wire.push(p.keyUpdate(op.requested));
    } else {
      const c = content(op);
      data.push(c);
      // RFC 8446 5.4: the whole inner plaintext (content, type, padding) stays within 2^14 + 1.
      wire.push(p.seal(APPLICATION_DATA, c, Math.min(op.padding, 16_384 - op.size)));
    }
  }
  return { wire: Buffer.concat(wire), data: Buffer.concat(data) };
}

/** Writes `bytes` in pieces of the sizes in `cuts` (cycled), each write a macrotask apart. */
async function writeCut(p: RecordPeer, bytes: Buffer, cuts: readonly number[]): Promise<void> {
  for (let at = 0, k = 0; at < bytes.length; k++) {
    const n = cuts[k % cuts.length]!;
    p.write(bytes.subarray(at, at + n));
    at += n;
    await new Promise((r) => setImmediate(r));
  }
}

/** One bad record (or run of records), built on the peer's current keys. */
type Bad =
  | { kind: 'flip'; at: number; bit: number; size: number }
  | { kind: 'overlong'; length: number }
  | { kind: 'noType'; zeros: number }
  | { kind: 'innerType'; type: number; size: number }
  | { kind: 'keyUpdateValue'; value: number }
  | { kind: 'keyUpdateNotLast' }
  | { kind: 'keyUpdateLength' }
  | { kind: 'alertLength'; length: number }
  | { kind: 'emptyHandshake' }
  | { kind: 'tooMuchContent' }
  | { kind: 'wrongSeq'; skip: number }
  | { kind: 'refusedMessage'; type: number }
  | { kind: 'clear'; type: number }
  | { kind: 'fatalAlert'; description: number }
  | { kind: 'idleRun' }
  | { kind: 'forged'; length: number };

const badArb: fc.Arbitrary<Bad> = fc.oneof(
  fc.record({
    kind: fc.constant('flip' as const),
    at: fc.nat(),
    bit: fc.integer({ min: 0, max: 7 }),
    size: fc.integer({ min: 0, max: 300 }),
  }),
  fc.record({ kind: fc.constant('overlong' as const), length: fc.integer({ min: 16_641, max: 65_535 }) }),
  fc.record({ kind: fc.constant('noType' as const), zeros: fc.integer({ min: 0, max: 64 }) }),
  fc.record({
    kind: fc.constant('innerType' as const),
    type: fc.constantFrom(0x14, 0x18, 0x01, 0x42, 0xff),
    size: fc.integer({ min: 0, max: 64 }),
  }),
  fc.record({ kind: fc.constant('keyUpdateValue' as const), value: fc.integer({ min: 2, max: 255 }) }),
  fc.record({ kind: fc.constant('keyUpdateNotLast' as const) }),
  fc.record({ kind: fc.constant('keyUpdateLength' as const) }),
  fc.record({ kind: fc.constant('alertLength' as const), length: fc.constantFrom(0, 1, 3, 4) }),
  fc.record({ kind: fc.constant('emptyHandshake' as const) }),
  fc.record({ kind: fc.constant('tooMuchContent' as const) }),
  fc.record({ kind: fc.constant('wrongSeq' as const), skip: fc.integer({ min: 1, max: 1000 }) }),
  // NewSessionTicket, CertificateRequest, Certificate, Finished, an unknown message.
  fc.record({ kind: fc.constant('refusedMessage' as const), type: fc.constantFrom(4, 13, 11, 20, 99) }),
  fc.record({ kind: fc.constant('clear' as const), type: fc.constantFrom(20, 21, 22) }),
  fc.record({
    kind: fc.constant('fatalAlert' as const),
    description: fc.constantFrom(10, 20, 40, 42, 47, 50, 80, 86, 109, 255),
  }),
  fc.record({ kind: fc.constant('idleRun' as const) }),
  fc.record({ kind: fc.constant('forged' as const), length: fc.integer({ min: 0, max: 2000 }) }),
);

function sealBad(p: RecordPeer, bad: Bad): Buffer {
  switch (bad.kind) {
    case 'flip': {
      const record = p.seal(APPLICATION_DATA, Buffer.alloc(bad.size, 7));
      // Any byte but the length (bytes 3-4), which would only reframe the stream.
      const positions = [0, 1, 2, ...Array.from({ length: record.length - 5 }, (_, i) => i + 5)];
      record[positions[bad.at % positions.length]!]! ^= 1 << bad.bit;
      return record;
    }
    case 'overlong':
      return Buffer.concat([header(APPLICATION_DATA, bad.length), Buffer.alloc(100, 1)]);
    case 'noType':
      return p.sealInner(Buffer.alloc(bad.zeros));
    case 'innerType':
      return p.seal(bad.type, Buffer.alloc(bad.size, 1));
    case 'keyUpdateValue':
      return p.seal(HANDSHAKE, Buffer.from([24, 0, 0, 1, bad.value]));
    case 'keyUpdateNotLast':
      return p.seal(HANDSHAKE, Buffer.from([24, 0, 0, 1, 0, 24, 0, 0, 1, 0]));
    case 'keyUpdateLength':
      return p.seal(HANDSHAKE, Buffer.from([24, 0, 0, 2, 0, 0]));
    case 'alertLength':
      return p.seal(ALERT, Buffer.alloc(bad.length, 2));
    case 'emptyHandshake':
      return p.seal(HANDSHAKE, Buffer.alloc(0));
    case 'tooMuchContent':
      return p.seal(APPLICATION_DATA, Buffer.alloc(16_385, 3));
    case 'wrongSeq':
      return p.sealInner(Buffer.from([1, 2, 3, APPLICATION_DATA]), bad.skip);
    case 'refusedMessage':
      return p.seal(HANDSHAKE, Buffer.from([bad.type, 0, 0, 4, 0, 0, 0, 0]));
    case 'clear':
      return Buffer.concat([header(bad.type, 2), Buffer.from([1, 0])]);
    case 'fatalAlert':
      return p.seal(ALERT, Buffer.from([2, bad.description]));
    case 'idleRun':
      return Buffer.concat(Array.from({ length: 33 }, () => p.seal(APPLICATION_DATA, Buffer.alloc(0))));
    case 'forged':
      // A header and a body of garbage (cut anywhere by the writes): it fails its tag.
      return Buffer.concat([header(APPLICATION_DATA, bad.length), Buffer.alloc(bad.length, 9)]);
  }
}

describe.each(drivers)("generated records on Loch's record layer, $name driver", ({ name, skip }) => {
  const test = skip === undefined ? it : it.skip;
  let runtime: Runtime;
  const servers: RecordsServer[] = [];
  const peers: RecordPeer[] = [];

  beforeEach(async () => {
    runtime = await createRuntime({ driver: name, log: () => undefined });
  });
  afterEach(async () => {
    for (const p of peers.splice(0)) p.destroy();
    for (const s of servers.splice(0)) await s.close();
    await runtime.close();
  });

  async function serve(suite: string): Promise<RecordsServer> {
    const s = await new RecordsServer(runtime, pki, suite).listen();
    servers.push(s);
    return s;
  }

  test.each(SUITES)(
    'valid records of any size, padding, KeyUpdates and TCP cuts arrive whole and in order (%s)',
    async (suite) => {
      const server = await serve(suite);
      await fc.assert(
        fc.asyncProperty(opsArb, cutsArb, async (ops, cuts) => {
          const p = await RecordPeer.connect(server.port, pki.ca);
          peers.push(p);
          const ending = server.endings.at(-1)!;
          const { wire, data } = sealOps(p, ops);
          await writeCut(p, wire, cuts);
          await p.waitFor(() => p.text().length >= data.length, `${data.length} bytes echoed`);
          expect(p.text().equals(data)).toBe(true);
          p.write(p.seal(ALERT, Buffer.from([1, 0])));
          expect(await ending).toEqual({ error: null, closeNotified: true });
          expect(p.error).toBeUndefined();
          p.destroy();
        }),
        { numRuns: 25 },
      );
      expect(server.context.recordStats().declined).toBe(0);
    },
    180_000,
  );

  test('a bad record after valid ones ends the connection with a typed error, and nothing after it is read', async () => {
    const server = await serve('TLS_AES_128_GCM_SHA256');
    await fc.assert(
      fc.asyncProperty(fc.array(dataOp, { maxLength: 3 }), badArb, cutsArb, async (prefix, bad, cuts) => {
        const p = await RecordPeer.connect(server.port, pki.ca);
        peers.push(p);
        const ending = server.endings.at(-1)!;
        const small = prefix.map((op) => ({ ...op, size: op.size % 2000, padding: op.padding % 300 }));
        const { wire, data } = sealOps(p, small);
        const badRecord = sealBad(p, bad);
        const after = p.seal(APPLICATION_DATA, Buffer.from('after the bad record'));
        await writeCut(p, Buffer.concat([wire, badRecord, after]), cuts);
        const { error } = await endingBefore(p, ending, 'after the bad record');
        expect(error).toBeInstanceOf(TlsError);
        expect(error).toBeInstanceOf(bad.kind === 'fatalAlert' ? TlsAlertError : TlsProtocolError);
        await p.closed;
        // What was echoed is (a prefix of) the data before the bad record, never what followed.
        const echoed = p.text();
        expect(data.subarray(0, echoed.length).equals(echoed)).toBe(true);
        p.destroy();
      }),
      { numRuns: 60 },
    );
    expect(server.context.recordStats()).toMatchObject({ declined: 0 });
  }, 180_000);
});
