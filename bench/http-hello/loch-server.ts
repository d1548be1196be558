/**
 * The Loch side of the hello benchmark: HttpServer on a runtime TcpListener answering every
 * request with a fixed 128-byte text body. Driver from LOCH_DRIVER (auto by default).
 * Usage: tsx --conditions=@loch/source loch-server.ts <port>
 */
import { createResponse, FixedBody, HttpHeaders, HttpServer } from '@loch/http';
import { TcpListener } from '@loch/uring-runtime';

const port = Number(process.argv[2] ?? 8080);
const body = new FixedBody(`${'x'.repeat(127)}\n`);
const headers = new HttpHeaders([['content-type', 'text/plain']]);
const listener = await TcpListener.bind({ host: '127.0.0.1', port });
const server = new HttpServer({ call: () => createResponse(200, { headers, body }) });
process.on('SIGTERM', () => {
  void server.close().then(() => process.exit(0));
});
console.log(`loch hello on ${port} (${listener.driver})`);
await server.serve(listener);
