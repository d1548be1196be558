/**
 * The gateway under test, built with Loch: @loch/http's server (io_uring driver when it loads)
 * serving @loch/gateway's ThriftGateway, POST /echo -> Bench.echo over pooled framed binary
 * connections: `exclusive` (default) keeps `connections` (default 32) connections carrying one
 * call at a time each; `multiplexed` shares fewer connections, calls matched by seq id (what a
 * user configures with ClientExchange's `multiplexed`); `multiplexed-client` the same on
 * @loch/thrift's promise-driven ThriftClient (what ClientExchange ran before
 * multiplexed-connection.ts, and still runs for streams without callbacks), for comparison.
 * Usage: tsx loch-gateway.ts <port> <upstream port> [exclusive|multiplexed|multiplexed-client]
 *          [connections]
 */
import { fileURLToPath } from 'node:url';
import { ClientExchange, loadIdl, ThriftGateway } from '@loch/gateway';
import { HttpServer } from '@loch/http';
import type { ThriftStream } from '@loch/thrift';
import { createRuntime, TcpListener, TcpStream } from '@loch/uring-runtime';

const [port, upstreamPort] = process.argv.slice(2, 4).map(Number) as [number, number];
const mode = process.argv[4] ?? 'exclusive';
if (!['exclusive', 'multiplexed', 'multiplexed-client'].includes(mode))
  throw new Error(`unknown upstream mode ${mode}`);
const connections = Number(process.argv[5] ?? 32);
const runtime = await createRuntime({ log: () => undefined });
const idl = loadIdl(fileURLToPath(new URL('./bench.thrift', import.meta.url)));

/** A connection to the upstream; for `multiplexed-client`, without the stream's callbacks. */
async function connect(): Promise<ThriftStream> {
  const stream = await TcpStream.connect({ host: '127.0.0.1', port: upstreamPort, runtime });
  if (mode !== 'multiplexed-client') return stream;
  return {
    recv: () => stream.recv(),
    writev: (bufs) => stream.writev(bufs),
    close: () => stream.close(),
    get closed() {
      return stream.closed;
    },
  };
}

const upstream = new ClientExchange(connect, {
  connections,
  multiplexed: mode !== 'exclusive',
  timeout: 10_000,
});
const gateway = new ThriftGateway([
  { idl, service: 'Bench', function: 'echo', path: '/echo', httpMethod: 'POST', upstream },
]);
void new HttpServer(gateway).serve(await TcpListener.bind({ host: '127.0.0.1', port, runtime }));
console.log(`loch gateway on ${port} (${runtime.driver ?? 'runtime'}, ${mode} x${connections})`);
// Exit (rather than die) on SIGTERM, so that `node --cpu-prof` writes its profile (profile.ts).
process.on('SIGTERM', () => process.exit(0));
