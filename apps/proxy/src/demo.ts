/**
 * `pnpm start`: a demo upstream (node:http on 127.0.0.1:18081, answering with what it received)
 * and `loch run` on config/default.toml, in one process, so `curl localhost:8080/` (and, with a
 * self-signed certificate made at start, `curl -k https://localhost:8443/`) answers at once. Ctrl-C stops both (loch drains first). Not for production: run `loch run -c` there.
 */
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { main } from './cli.js';
import { selfSignedCertificate } from './demo-certificate.js';

const DEMO_PORT = 18081;

const upstream = createServer((req, res) => {
  const body = `hello from the demo upstream: ${req.method} ${req.url}\nvia: ${req.headers.via ?? '-'}, x-forwarded-for: ${req.headers['x-forwarded-for'] ?? '-'}\n`;
  res.writeHead(200, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
});

await new Promise<void>((resolve, reject) => {
  upstream.once('error', reject);
  upstream.listen(DEMO_PORT, '127.0.0.1', () => resolve());
});
process.stderr.write(`demo upstream on http://127.0.0.1:${DEMO_PORT}\n`);
const config = fileURLToPath(new URL('../config/default.toml', import.meta.url));
// The HTTPS listener's certificate: self-signed, next to the config (config/.demo-tls/, not in git).
selfSignedCertificate(fileURLToPath(new URL('../config/.demo-tls/', import.meta.url)));
process.stderr.write(`loch run -c ${config}; try: curl localhost:8080/ or curl -k https://localhost:8443/\n`);
const code = await main(['run', '-c', config]);
upstream.close();
upstream.closeAllConnections();
process.exit(code);
