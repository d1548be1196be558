/**
 * A fixed-count request/response run for an instruction-counting profiler: a Loch server and a
 * Loch client in this process over loopback on the uring driver, REQUESTS round trips of a
 * 128-byte request and a SIZE-byte response, over plain TCP or TLS in the ring. Wall time and
 * CPU are not the point (use callgrind: they count instructions whatever the machine's load);
 * run it twice with different counts and divide the difference, so start-up cancels:
 *   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p node --conditions=@loch/source \
 *     --import tsx packages/tls/bench/profile-requests.ts -- --mode tls --size 16384 --requests 2000
 * The response is written the way the proxy writes one: a header piece and the body, one writev
 * (--piece N: body pieces of N bytes; --chunked: each framed as an HTTP/1.1 chunk; --joined:
 * head and body in one buffer). Read the TLS
 * engine's share with callgrind_annotate --inclusive=yes: loch::Ring::PrepTls (encrypt) plus
 * loch::Ring::TlsRecv (decrypt), over the requests. The server's side runs on Loch's own TLS 1.3
 * record layer (the default; the client stays on OpenSSL's); LOCH_TLS_RECORDS=openssl puts it on
 * OpenSSL's.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TlsClientContext, TlsServerContext, tlsAccept, tlsConnect } from '@loch/tls';
import { type ByteStream, createRuntime, TcpListener, TcpStream } from '@loch/uring-runtime';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? (process.argv[i + 1] ?? fallback) : fallback;
};
const MODE = arg('mode', 'tls');
const SIZE = Number(arg('size', '128'));
const REQUESTS = Number(arg('requests', '2000'));
const BODY_PIECE = Number(arg('piece', '16384'));

const dir = mkdtempSync(join(tmpdir(), 'loch-tls-profile-'));
execFileSync(
  'openssl',
  [
    ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
    ...['-keyout', 'key.pem', '-out', 'cert.pem', '-days', '1', '-subj', '/CN=localhost'],
    ...['-addext', 'subjectAltName=DNS:localhost'],
  ],
  { cwd: dir, stdio: 'ignore' },
);
const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
const key = readFileSync(join(dir, 'key.pem'), 'utf8');
rmSync(dir, { recursive: true, force: true });

const runtime = await createRuntime({ driver: 'uring', log: () => undefined });
const serverCtx = new TlsServerContext({ certificates: [{ chain: cert, key }], minVersion: 'TLSv1.3' });
const clientCtx = new TlsClientContext({ ca: cert, minVersion: 'TLSv1.3', sessionCacheSize: 0 });
const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime });
const port = (listener.localAddress as { port: number }).port;
const tls = MODE === 'tls';
const accepted = listener
  .accept()
  .then((raw): Promise<ByteStream> | ByteStream => (tls ? tlsAccept(raw, serverCtx) : raw));
const raw = await TcpStream.connect({ host: '127.0.0.1', port, runtime });
const client: ByteStream = tls ? await tlsConnect(raw, clientCtx, { servername: 'localhost' }) : raw;
const server = await accepted;
const request = new Uint8Array(128).fill(1);
const head = new TextEncoder().encode(`HTTP/1.1 200 OK\r\ncontent-length: ${SIZE}\r\n\r\n`);
// The body as the proxy has it: pieces of an upstream's receive buffers; with --chunked, each
// framed the way an HTTP/1.1 chunked response is written (size line, data, CRLF).
const CHUNKED = process.argv.includes('--chunked');
const pieces: Uint8Array[] = [head];
for (let at = 0; at < SIZE; at += BODY_PIECE) {
  const n = Math.min(BODY_PIECE, SIZE - at);
  if (CHUNKED) pieces.push(new TextEncoder().encode(`${n.toString(16)}\r\n`));
  pieces.push(new Uint8Array(n).fill(2));
  if (CHUNKED) pieces.push(new TextEncoder().encode('\r\n'));
}
// --joined: the response as one buffer (what @loch/http writes when the body is up to 1 KiB).
if (process.argv.includes('--joined')) pieces.splice(0, pieces.length, Buffer.concat(pieces));
const responseBytes = pieces.reduce((n, p) => n + p.byteLength, 0);

const serving = (async () => {
  for (;;) {
    const chunk = await server.recv();
    if (chunk === null) return;
    chunk.release();
    await server.writev(pieces);
  }
})();
for (let i = 0; i < REQUESTS; i++) {
  await client.writeAll(request);
  let got = 0;
  while (got < responseBytes) {
    const chunk = await client.recv();
    if (chunk === null) throw new Error('ended');
    got += chunk.bytes.byteLength;
    chunk.release();
  }
}
await client.close();
await serving.catch(() => undefined);
await server.close();
await listener.close();
await runtime.close();
console.log(
  `${MODE} ${REQUESTS} requests, ${responseBytes} B responses, server record layer ${serverCtx.records} ${JSON.stringify(serverCtx.recordStats())}`,
);
