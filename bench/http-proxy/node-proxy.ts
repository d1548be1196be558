/**
 * The node:http reverse proxy peer of the HTTP proxy benchmark: what a Node user writes first —
 * `http.createServer`, `http.request` through a keep-alive Agent, bodies piped both ways. It is
 * the baseline Loch must beat, not a proxy to use (no hop-by-hop handling beyond Connection, no
 * timeouts, no error pages beyond 502).
 *
 * Usage: node --import tsx node-proxy.ts <listenPort> <upstreamPort> [workers]
 * With workers > 1 it forks through node:cluster with SCHED_NONE: the workers share the one
 * listening socket and the kernel hands each accept to one of them (Node 20 has no
 * SO_REUSEPORT option on net.Server, and the default round-robin policy would route every
 * connection through the primary process).
 */
import cluster from 'node:cluster';
import { Agent, createServer, type IncomingHttpHeaders, request } from 'node:http';

const listenPort = Number(process.argv[2]);
const upstreamPort = Number(process.argv[3]);
const workers = Number(process.argv[4] ?? 1);

/** Request headers forwarded upstream: everything but Connection (the agent keeps it alive). */
function upstreamHeaders(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = { ...headers };
  delete out.connection;
  delete out['keep-alive'];
  return out;
}

function serve(): void {
  const agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256 });
  const server = createServer((req, res) => {
    const up = request(
      {
        host: '127.0.0.1',
        port: upstreamPort,
        method: req.method,
        path: req.url,
        headers: upstreamHeaders(req.headers),
        agent,
      },
      (upRes) => {
        const headers: IncomingHttpHeaders = { ...upRes.headers };
        delete headers.connection;
        delete headers['keep-alive'];
        res.writeHead(upRes.statusCode ?? 502, headers);
        upRes.pipe(res);
      },
    );
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  });
  server.keepAliveTimeout = 300_000;
  server.headersTimeout = 301_000;
  server.listen(listenPort, '127.0.0.1', 4096);
}

if (workers > 1 && cluster.isPrimary) {
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  for (let i = 0; i < workers; i++) cluster.fork();
  process.on('SIGTERM', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGTERM');
    process.exit(0);
  });
} else {
  serve();
}
