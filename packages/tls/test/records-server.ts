/**
 * Test support for the records-*.test.ts suites: a Loch TLS server on Loch's record layer whose
 * handler echoes each connection and keeps how its reader ended (null: end of stream, else what
 * it threw) and whether close_notify came, in accept order. Not a test itself.
 */
import { TlsServerContext, type TlsStream } from '@loch/tls';
import type { Runtime } from '@loch/uring-runtime';
import type { TestPki } from './certs.js';
import { LochTlsServer } from './harness.js';
import type { RecordPeer } from './records-peer.js';

/** How one connection's reader ended. */
export interface Ending {
  /** null at end of stream, else what recv() or a write threw. */
  readonly error: unknown;
  readonly closeNotified: boolean | undefined;
}

/** An echo server on `records: 'loch'` recording each connection's ending. */
export class RecordsServer {
  readonly endings: Promise<Ending>[] = [];
  #server: LochTlsServer | undefined;
  readonly context: TlsServerContext;

  constructor(
    readonly runtime: Runtime,
    pki: TestPki,
    ciphersuites?: string,
  ) {
    this.context = new TlsServerContext({
      certificates: [{ chain: pki.localhost.chain, key: pki.localhost.key }],
      records: 'loch',
      ...(ciphersuites ? { ciphersuites } : {}),
    });
  }

  get port(): number {
    return this.#server!.port;
  }

  async listen(): Promise<this> {
    this.#server = await new LochTlsServer(this.runtime, this.context, (stream) =>
      this.#echo(stream),
    ).listen();
    return this;
  }

  #echo(stream: TlsStream): Promise<void> {
    const ending = (async (): Promise<Ending> => {
      try {
        for (;;) {
          const chunk = await stream.recv();
          if (chunk === null) return { error: null, closeNotified: stream.facts.closeNotified };
          const copy = chunk.bytes.slice();
          chunk.release();
          await stream.writeAll(copy);
        }
      } catch (error) {
        return { error, closeNotified: stream.facts.closeNotified };
      }
    })();
    this.endings.push(ending);
    return ending.then(() => undefined);
  }

  async close(): Promise<void> {
    await this.#server?.close();
  }
}

/**
 * The connection's ending, once the server's reader ended; throws at once when `peer` got
 * `marker` echoed first (the connection went on past a record that should have ended it), or when
 * neither happened within 10 s.
 */
export async function endingBefore(
  peer: RecordPeer,
  ending: Promise<Ending>,
  marker: string,
): Promise<Ending> {
  let ended = false;
  void ending.then(() => {
    ended = true;
  });
  const echoed = () => peer.text().includes(marker);
  await peer.waitFor(() => ended || echoed(), `the end of the connection or an echo of '${marker}'`);
  if (echoed()) throw new Error(`the connection went on: '${marker}' was echoed`);
  return ending;
}
