/**
 * The node:http side of the hello benchmark: the same 128-byte text body, keep-alive.
 * Usage: node node-server.ts <port> (plain JS-compatible TypeScript, run through tsx)
 */
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? 8081);
const body = Buffer.from(`${'x'.repeat(127)}\n`);
const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 300_000;
server.listen(port, '127.0.0.1', () => console.log(`node:http hello on ${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
