/**
 * @loch/tls in one file: an HTTPS echo server (a throwaway self-signed certificate made with the
 * openssl CLI), a Loch TLS client that resumes its session on the second request, curl when it
 * is installed, and a plain-HTTP request to the TLS port answered 400.
 * Run: pnpm --filter @loch/tls example (exits by itself; `-- --serve` keeps serving on
 * PORT, default 8443, for `curl -k https://localhost:8443/`).
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  TlsClientContext,
  TlsPlainHttpError,
  TlsServerContext,
  type TlsStream,
  tlsAccept,
  tlsConnect,
} from '@loch/tls';
import { currentRuntime, TcpListener, TcpStream } from '@loch/uring-runtime';

const serve = process.argv.includes('--serve');
const dir = mkdtempSync(join(tmpdir(), 'loch-tls-example-'));
execFileSync(
  'openssl',
  [
    ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
    ...['-keyout', 'key.pem', '-out', 'cert.pem', '-days', '1', '-subj', '/CN=localhost'],
    ...['-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
  ],
  { cwd: dir, stdio: 'ignore' },
);
const context = new TlsServerContext({
  certificates: [{ chain: join(dir, 'cert.pem'), key: join(dir, 'key.pem') }],
  alpn: ['http/1.1'],
});

/** Answers one HTTP/1.1 request with what the connection negotiated. */
async function answer(stream: TlsStream): Promise<void> {
  let head = '';
  while (!head.includes('\r\n\r\n')) {
    const chunk = await stream.recv();
    if (chunk === null) return;
    head += Buffer.from(chunk.bytes).toString('latin1');
    chunk.release();
  }
  const body = `${head.split('\r\n')[0]}: ${stream.protocol} ${stream.cipher}, alpn ${stream.alpnProtocol}, sni ${stream.servername}, resumed ${stream.sessionReused}\n`;
  await stream.writeAll(
    Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`),
  );
  await stream.close();
}

const runtime = await currentRuntime();
const listener = await TcpListener.bind({
  host: '127.0.0.1',
  port: serve ? Number(process.env.PORT ?? 8443) : 0,
});
const port = (listener.localAddress as { port: number }).port;
console.log(`HTTPS on https://localhost:${port}/ (driver ${runtime.driver.name})`);

const accepting = (async () => {
  for await (const raw of listener) {
    tlsAccept(raw, context, { handshakeTimeout: 5000, plainHttp: 'hand-over' })
      .then(answer)
      .catch(async (error: unknown) => {
        if (error instanceof TlsPlainHttpError && error.stream !== undefined) {
          // What nginx does: 400 in plain text, then close.
          const body = 'plain HTTP request was sent to HTTPS port\n';
          await error.stream.writeAll(
            Buffer.from(
              `HTTP/1.1 400 Bad Request\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
            ),
          );
          await error.stream.close();
        } else console.log('handshake failed:', (error as Error).message);
      });
  }
})().catch(() => undefined); // the loop ends with ECANCELED when the listener closes

if (!serve) {
  const client = new TlsClientContext({ ca: join(dir, 'cert.pem'), alpn: ['http/1.1'] });
  for (const path of ['/first', '/second']) {
    const raw = await TcpStream.connect({ host: '127.0.0.1', port });
    const stream = await tlsConnect(raw, client, { servername: 'localhost' });
    await stream.writeAll(Buffer.from(`GET ${path} HTTP/1.1\r\nhost: localhost\r\n\r\n`));
    let text = '';
    for await (const bytes of stream) text += Buffer.from(bytes).toString();
    process.stdout.write(`loch client: ${text.split('\r\n\r\n')[1]}`);
    await stream.close();
  }
  try {
    // Not execFileSync: the server answers on this very thread.
    const curl = promisify(execFile);
    const out = await curl('curl', ['-sk', `https://127.0.0.1:${port}/curl`]);
    process.stdout.write(`curl: ${out.stdout}`);
    const plain = await curl('curl', ['-s', `http://127.0.0.1:${port}/plain`]);
    process.stdout.write(`curl over plain HTTP: ${plain.stdout}`);
  } catch (error) {
    console.log('(curl failed or is not installed:', (error as Error).message, ')');
  }
  await listener.close();
  await accepting;
  rmSync(dir, { recursive: true, force: true });
  await runtime.close();
}
