/**
 * The gateway under test, built with Loch: @loch/http's server (io_uring driver when it loads)
 * serving @loch/gateway's ThriftGateway, POST /echo -> Bench.echo over pooled framed binary
 * connections. Usage: tsx loch-gateway.ts <port> <upstream port>
 */
import { fileURLToPath } from 'node:url';
import { ClientExchange, loadIdl, ThriftGateway } from '@loch/gateway';
import { HttpServer } from '@loch/http';
import { createRuntime, TcpListener, TcpStream } from '@loch/uring-runtime';

const [port, upstreamPort] = process.argv.slice(2).map(Number) as [number, number];
const runtime = await createRuntime({ log: () => undefined });
const idl = loadIdl(fileURLToPath(new URL('./bench.thrift', import.meta.url)));
const upstream = new ClientExchange(
  () => TcpStream.connect({ host: '127.0.0.1', port: upstreamPort, runtime }),
  {
    connections: 32,
    timeout: 10_000,
  },
);
const gateway = new ThriftGateway([
  { idl, service: 'Bench', function: 'echo', path: '/echo', httpMethod: 'POST', upstream },
]);
void new HttpServer(gateway).serve(await TcpListener.bind({ host: '127.0.0.1', port, runtime }));
console.log(`loch gateway on ${port} (${runtime.driver ?? 'runtime'})`);
// Exit (rather than die) on SIGTERM, so that `node --cpu-prof` writes its profile (profile.ts).
process.on('SIGTERM', () => process.exit(0));
