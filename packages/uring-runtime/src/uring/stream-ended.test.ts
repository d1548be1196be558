// recvTo() on a stream that ended, failed or is closing, and a receive that fails (a reset):
// stream.ts's close paths that bench/http-proxy/close-deopts-2026-12-07.md reads (its .patch
// moves them into methods of their own; these tests hold with and without it). Over real
// loopback sockets: each case is asked while the receive is pending (the completion's path) and
// again after (recvTo's own), and both must tell the same outcome.
import { connect as netConnect, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RuntimeError } from '../errors.js';
import type { RecvChunk, RecvTarget, StreamListener } from '../stream.js';
import { createUringDriver, probeUring, type UringDriver } from './index.js';
import type { UringStream } from './stream.js';

const probe = probeUring();
if (!probe.available) console.warn(`stream end tests skipped: ${probe.reason}`);

function portOf(l: StreamListener): number {
  const a = l.localAddress;
  if (a.family === 'unix') throw new Error('not a TCP listener');
  return a.port;
}

/** What one recvTo delivered: a chunk's text, the end (null) or the error. */
type Outcome = { text: string | null; error: unknown };

/** One recvTo's outcome as a promise. */
function recvOnce(stream: UringStream): Promise<Outcome> {
  return new Promise((resolve) => {
    const target: RecvTarget = {
      onRecv(chunk: RecvChunk | null, error: unknown): void {
        const text = chunk === null ? null : new TextDecoder().decode(chunk.bytes);
        chunk?.release();
        resolve({ text, error });
      },
    };
    stream.recvTo(target);
  });
}

describe.skipIf(!probe.available)('uring stream: recvTo after the end, a failure or close', () => {
  let driver: UringDriver;
  let peer: Socket | null = null;
  beforeEach(() => {
    driver = createUringDriver({ entries: 64, bufferCount: 16, bufferSize: 4096 });
  });
  afterEach(async () => {
    peer?.destroy();
    peer = null;
    await driver.close();
  });

  async function servedPair(): Promise<{ served: UringStream; listener: StreamListener }> {
    const listener = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
    const accepted = listener.accept();
    const socket = netConnect(portOf(listener), '127.0.0.1');
    peer = socket;
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    return { served: (await accepted) as UringStream, listener };
  }

  it("tells the peer's end to a pending receive and to every recvTo after it", async () => {
    const { served, listener } = await servedPair();
    peer!.write('ab');
    expect(await recvOnce(served)).toEqual({ text: 'ab', error: undefined });
    const pending = recvOnce(served);
    peer!.end();
    expect(await pending).toEqual({ text: null, error: undefined });
    expect(await recvOnce(served)).toEqual({ text: null, error: undefined });
    expect(await recvOnce(served)).toEqual({ text: null, error: undefined });
    await served.close();
    await listener.close();
  });

  it('tells a reset to a pending receive, and the same failure to a recvTo after it', async () => {
    const { served, listener } = await servedPair();
    const pending = recvOnce(served);
    peer!.resetAndDestroy();
    const first = await pending;
    expect(first.text).toBeNull();
    const second = await recvOnce(served);
    if (first.error === undefined) {
      // The FIN won the race (as uring.test.ts's reset case allows): an end, then ends.
      expect(second).toEqual({ text: null, error: undefined });
    } else {
      expect((first.error as RuntimeError).code).toBe('ECONNRESET');
      expect(second.text).toBeNull();
      expect(second.error).toBe(first.error);
    }
    await served.close();
    await listener.close();
  });

  it('cancels a recvTo made while the stream closes (ECANCELED), not waiting for bytes', async () => {
    const { served, listener } = await servedPair();
    const closed = served.close();
    const after = await recvOnce(served);
    expect(after.text).toBeNull();
    expect((after.error as RuntimeError).code).toBe('ECANCELED');
    await closed;
    await listener.close();
  });

  it("a receive cancelled by close() fails with an ECANCELED that carries no stack frames (one a closed connection under churn), and the thread's stack limit is left as it was", async () => {
    const { served, listener } = await servedPair();
    const limit = Error.stackTraceLimit;
    const pending = recvOnce(served);
    await served.close();
    const { text, error } = await pending;
    expect(text).toBeNull();
    const e = error as RuntimeError;
    expect(e.code).toBe('ECANCELED');
    expect(e.syscall).toBe('recv');
    expect(e.stack?.split('\n')).toEqual([`RuntimeError: ${e.message}`]);
    expect(Error.stackTraceLimit).toBe(limit);
    expect(new Error('x').stack?.split('\n').length).toBeGreaterThan(1);
    await listener.close();
  });
});
