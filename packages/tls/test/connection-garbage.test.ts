/**
 * A finished TLS connection is young garbage: once both ends closed, nothing of it may survive a
 * scavenge (V8's young-generation GC). What survives two is promoted to the old generation and
 * stays until a full GC, so a server making thousands of handshakes a second would pay a major
 * GC every few thousand of them, as the facts object's getter once made it do (~2.4 KB promoted
 * per handshake: the getter's per-object hidden class lived in the old space and kept the whole
 * connection alive). Counted with forced GCs and V8's heap statistics on the uring driver. The
 * legacy driver is left out: node:net's own sockets are promoted there with or without TLS, by
 * amounts that vary between runs by tens of times what this test looks for (0.3 to 15 KB per
 * connection measured this way); TlsStream's code, where the getter was, is the same on both.
 */
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { TlsClientContext, TlsServerContext, tlsAccept, tlsConnect } from '@loch/tls';
import { createRuntime, type Runtime, TcpListener, TcpStream } from '@loch/uring-runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestPki, type TestPki } from './certs.js';
import { drain, driverCases, eventually } from './harness.js';

const drivers = (await driverCases()).filter((d) => d.name === 'uring');
let pki: TestPki;

beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.remove());

type Gc = (options?: { type: 'minor' | 'major'; execution: 'sync' }) => void;

/** V8's gc() without --expose-gc on the command line (vitest's workers take no V8 flags). */
function exposedGc(): Gc {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as Gc;
}

/** Bytes in use in V8's old generation (old objects and, where V8 has one, the map space). */
function oldGenerationBytes(): number {
  let bytes = 0;
  for (const s of getHeapSpaceStatistics())
    if (s.space_name === 'old_space' || s.space_name === 'map_space') bytes += s.space_used_size;
  return bytes;
}

describe.each(drivers)('finished connections on the $name driver', ({ name, skip }) => {
  const test = skip === undefined ? it : it.skip;

  test('leave nothing behind that survives scavenges (no promotion per handshake)', async () => {
    const gc = exposedGc();
    const runtime: Runtime = await createRuntime({ driver: name, log: () => undefined });
    const server = new TlsServerContext({
      certificates: [{ chain: pki.localhost.chain, key: pki.localhost.key }],
    });
    const client = new TlsClientContext({ ca: pki.ca });
    const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime });
    const port = (listener.localAddress as { port: number }).port;
    // No list of streams or outcomes anywhere: the test itself must not keep a connection alive.
    let served = 0;
    const accepting = (async () => {
      for (;;) {
        const raw = await listener.accept().catch(() => null);
        if (raw === null) return;
        void tlsAccept(raw, server)
          .then(drain)
          .catch(() => undefined)
          .finally(() => {
            served++;
          });
      }
    })();
    let opened = 0;
    /** `n` connections one after another: handshake, close_notify, close; resolves once both ends are done. */
    const connections = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const raw = await TcpStream.connect({ host: '127.0.0.1', port, runtime });
        const stream = await tlsConnect(raw, client, { servername: 'localhost', session: false });
        await stream.close();
        opened++;
      }
      await eventually(() => served === opened);
    };
    try {
      // Warm up first: compiled code, feedback and pools are old-generation growth of their own.
      await connections(40);
      gc();
      const rounds = 4;
      const perRound = 60;
      for (let r = 0; r < rounds; r++) {
        await connections(perRound);
        // Two scavenges: whatever of these connections survives both is promoted.
        gc({ type: 'minor', execution: 'sync' });
        gc({ type: 'minor', execution: 'sync' });
      }
      // What was promoted and is dead by now: a full GC frees it. Old-generation growth that
      // stays (compiled code's metadata, pools) is not what this measures.
      const promoted = oldGenerationBytes();
      gc();
      const promotedPerConnection = (promoted - oldGenerationBytes()) / (rounds * perRound);
      // Both ends of each connection are in this process: with the facts getter 4.2-4.3 KB, without
      // it 0.3-0.6 KB (what is still in flight when the forced scavenges run).
      expect(promotedPerConnection).toBeLessThan(2000);
    } finally {
      await listener.close();
      await accepting;
      await runtime.close();
    }
  });
});
