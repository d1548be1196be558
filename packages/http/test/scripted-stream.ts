/**
 * Test support: a server-side connection whose client is a script. It hands out the given chunks
 * (latin1), one per receive, then the end of stream, and records every write call as the list of
 * its buffers (one for a single-buffer write, several for a writev). Built on the promise adapter
 * (promise-stream.ts). Not for a client that waits for answers: the whole script is there at once.
 */
import type { HttpStream } from '../src/transport.js';
import { type PromiseStreamDouble, promiseStream } from './promise-stream.js';

/** A scripted connection and the writes made on it, in order. */
export interface ScriptedStream {
  readonly stream: HttpStream;
  /** Each write call's buffers as latin1 text. */
  readonly writes: string[][];
}

/** A connection from `10.0.0.1:1000` to `10.0.0.2:80` that receives `chunks`, then its end. */
export function scriptedStream(chunks: string[]): ScriptedStream {
  const writes: string[][] = [];
  const double: PromiseStreamDouble = {
    remoteAddress: { family: 'ipv4', address: '10.0.0.1', port: 1000 },
    localAddress: { family: 'ipv4', address: '10.0.0.2', port: 80 },
    driver: 'legacy',
    closed: false,
    async recv() {
      const c = chunks.shift();
      return c === undefined ? null : { bytes: Buffer.from(c, 'latin1'), release() {} };
    },
    async writeAll<B extends Uint8Array>(b: B) {
      writes.push([Buffer.from(b).toString('latin1')]);
      return b;
    },
    async writev(bufs: readonly Uint8Array[]) {
      writes.push(bufs.map((b) => Buffer.from(b).toString('latin1')));
      return bufs.reduce((n, b) => n + b.byteLength, 0);
    },
    async shutdown() {},
    async close() {},
    setNoDelay() {},
  };
  return { stream: promiseStream(double), writes };
}
