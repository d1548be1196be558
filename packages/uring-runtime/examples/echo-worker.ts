/**
 * Worker main for examples/workers.ts: every worker binds the same port with reusePort and
 * echoes; it answers the 'stats' command with its open stream count.
 */
import { copy, TcpListener, type WorkerContext } from '@loch/uring-runtime';

export async function main(context: WorkerContext): Promise<void> {
  const { port } = context.data as { port: number };
  const listener = await TcpListener.bind({ host: '127.0.0.1', port, reusePort: true });
  context.onCommand((message) =>
    message === 'stats' ? { worker: context.index, open: context.runtime.openStreams } : undefined,
  );
  // Serve in the background; the graceful stop closes the listener, which ends this loop.
  void (async () => {
    for await (const stream of listener) {
      void copy(stream, stream)
        .catch(() => undefined)
        .finally(() => stream.close());
    }
  })();
}
