/**
 * Loch's L4 forwarder for the L4 benchmark (runtime proof 2): accept on a TcpListener, connect a
 * TcpStream to the upstream per client, and move bytes both ways with copy() (pooled recv
 * chunks through JS) or zeroCopy() (splice in the kernel), written only against
 * @loch/uring-runtime's public API. Not a product: no timeouts, no limits, no logging.
 *
 * Usage: node --conditions=@loch/source --import tsx loch-forwarder.ts <copy|zeroCopy> <listenPort> <upstreamPort>
 * Prints `listening <port> driver <uring|legacy> (<reason>)` once it accepts. Exits with code 3
 * and the reason on stderr when the runtime's public API lacks what it needs.
 */
import * as runtimeModule from '@loch/uring-runtime';

/** The slice of the public API this forwarder uses (checked at start, so a missing export is a clear message). */
interface ForwarderApi {
  TcpListener: { bind(options: { host: string; port: number; backlog?: number }): Promise<Listener> };
  TcpStream: { connect(options: { host: string; port: number; noDelay?: boolean }): Promise<Stream> };
  copy(from: Stream, to: Stream): Promise<number>;
  zeroCopy(from: Stream, to: Stream): Promise<number>;
  currentRuntime(): Promise<{ selection: { driver: string; reason: string } }>;
}
interface Stream {
  close(): Promise<void>;
  setNoDelay(enabled: boolean): void;
}
interface Listener {
  accept(): Promise<Stream>;
}

const REQUIRED = ['TcpListener', 'TcpStream', 'copy', 'zeroCopy', 'currentRuntime'] as const;

const mode = process.argv[2];
const listenPort = Number(process.argv[3]);
const upstreamPort = Number(process.argv[4]);

function loadApi(): ForwarderApi {
  const exported = runtimeModule as Record<string, unknown>;
  const missing = REQUIRED.filter((name) => exported[name] === undefined);
  if (missing.length) {
    process.stderr.write(`loch-forwarder: @loch/uring-runtime does not export ${missing.join(', ')} yet\n`);
    process.exit(3);
  }
  return exported as unknown as ForwarderApi;
}

/** Closes a stream, ignoring the error of one that is already gone. */
async function closeQuietly(stream: Stream): Promise<void> {
  try {
    await stream.close();
  } catch {
    // already closed or reset: nothing to release
  }
}

async function forward(api: ForwarderApi, client: Stream, move: ForwarderApi['copy']): Promise<void> {
  let upstream: Stream | undefined;
  try {
    client.setNoDelay(true);
    upstream = await api.TcpStream.connect({ host: '127.0.0.1', port: upstreamPort, noDelay: true });
    await Promise.all([move(client, upstream), move(upstream, client)]);
  } catch {
    // a reset on either side ends the pair; both are closed below
  } finally {
    await closeQuietly(client);
    if (upstream) await closeQuietly(upstream);
  }
}

async function main(): Promise<void> {
  if (mode !== 'copy' && mode !== 'zeroCopy') {
    process.stderr.write('loch-forwarder: mode must be copy or zeroCopy\n');
    process.exit(2);
  }
  const api = loadApi();
  const move = mode === 'copy' ? api.copy : api.zeroCopy;
  const { selection } = await api.currentRuntime();
  const listener = await api.TcpListener.bind({ host: '127.0.0.1', port: listenPort, backlog: 4096 });
  process.stdout.write(`listening ${listenPort} driver ${selection.driver} (${selection.reason})\n`);
  for (;;) {
    const client = await listener.accept();
    void forward(api, client, move);
  }
}

process.on('SIGTERM', () => process.exit(0));
await main();
