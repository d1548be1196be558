/**
 * A stream whose receive waits until the test hands it something: bytes (`push(text)`), the end
 * (`push(null)`) or a failure (`fail(error)`). What is handed while no receive waits is queued for
 * the next one. A promise double (promise-stream.ts), adapted, so the server drives it as it drives
 * a runtime stream; close() ends a waiting receive. Used by the idle-connection and parked-end tests.
 */
import type { HttpStream, StreamChunk } from '../src/transport.js';
import { type PromiseStreamDouble, promiseStream } from './promise-stream.js';

type Handed = { text: string | null } | { error: unknown };

export function handStream() {
  const writes: string[] = [];
  const queued: Handed[] = [];
  let waiter: { resolve: (c: StreamChunk | null) => void; reject: (e: unknown) => void } | null = null;
  let closes = 0;
  const chunk = (s: string | null): StreamChunk | null =>
    s === null ? null : { bytes: Buffer.from(s, 'latin1'), release() {} };
  const double: PromiseStreamDouble = {
    remoteAddress: { family: 'ipv4', address: '10.0.0.1', port: 1000 },
    localAddress: { family: 'ipv4', address: '10.0.0.2', port: 80 },
    driver: 'legacy',
    closed: false,
    recv() {
      const next = queued.shift();
      if (next !== undefined)
        return 'error' in next ? Promise.reject(next.error) : Promise.resolve(chunk(next.text));
      return new Promise((resolve, reject) => {
        waiter = { resolve, reject };
      });
    },
    async writeAll<B extends Uint8Array>(b: B) {
      writes.push(Buffer.from(b).toString('latin1'));
      return b;
    },
    async writev(bufs: readonly Uint8Array[]) {
      for (const b of bufs) writes.push(Buffer.from(b).toString('latin1'));
      return bufs.reduce((n, b) => n + b.byteLength, 0);
    },
    async shutdown() {},
    async close() {
      closes++;
      (double as { closed: boolean }).closed = true;
      const w = waiter;
      waiter = null;
      w?.resolve(null);
    },
    setNoDelay() {},
  };
  const stream: HttpStream = promiseStream(double);
  const hand = (h: Handed) => {
    const w = waiter;
    waiter = null;
    if (w === null) queued.push(h);
    else if ('error' in h) w.reject(h.error);
    else w.resolve(chunk(h.text));
  };
  return {
    stream,
    writes,
    /** Bytes as latin1 text, or null for the peer's end. */
    push: (text: string | null) => hand({ text }),
    /** A receive failure (a reset, EIO...). */
    fail: (error: unknown) => hand({ error }),
    closes: () => closes,
    /** Whether a receive waits now. */
    waiting: () => waiter !== null,
  };
}
