/**
 * An HTTP upstream that answers every request with its own body (as JSON): the plain-proxy
 * comparison of run.ts sends the gateway's JSON through `loch run` to it. Usage: tsx http-echo.ts <port>
 */
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(Buffer.concat(chunks));
  });
}).listen(port, '127.0.0.1', () => console.log(`http echo on ${port}`));
