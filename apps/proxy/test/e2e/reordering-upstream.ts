/**
 * Test support for the e2e suites of multiplexed Thrift upstreams (thrift-mux, gateway-mux): a
 * @loch/thrift server that runs a connection's calls concurrently and answers them out of order:
 * it holds calls until `batch` of them came, then answers them last first. What each call is
 * answered with is the suite's. Not a test itself.
 */
import { createReply, type ProtocolWriter, type ThriftRequest, ThriftServer } from '@loch/thrift';
import { type Runtime, TcpListener } from '@loch/uring-runtime';

/** A call's reply body (its result struct), or undefined for a call that gets no reply (ONEWAY). */
export type Answer = (req: ThriftRequest) => ((w: ProtocolWriter) => void) | undefined;

/** A running reordering upstream. */
export interface ReorderingUpstream {
  readonly port: number;
  /** Calls held before they are answered; a suite may change it between tests. */
  readonly state: { batch: number };
  /** Connections the server has open. */
  connections(): number;
  close(): Promise<void>;
}

/** Starts the upstream on 127.0.0.1 on `runtime`, holding `batch` calls at a time. */
export async function startReorderingUpstream(
  runtime: Runtime,
  answer: Answer,
  batch = 1,
): Promise<ReorderingUpstream> {
  const held: (() => void)[] = [];
  const state = { batch };
  const server = new ThriftServer(
    {
      call(req: ThriftRequest) {
        const body = answer(req);
        if (body === undefined) return undefined;
        return new Promise((resolve) => {
          held.push(() => resolve(createReply(req, body)));
          if (held.length >= state.batch)
            setImmediate(() => {
              for (const reply of held.splice(0).reverse()) reply();
            });
        });
      },
    },
    { maxConcurrentCalls: 256 },
  );
  const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime });
  const address = listener.localAddress;
  void server.serve(listener);
  return {
    port: address.family === 'unix' ? 0 : address.port,
    state,
    connections: () => server.connections,
    close: () => server.close(),
  };
}
