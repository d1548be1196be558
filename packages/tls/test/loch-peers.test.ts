/**
 * Loch on both ends and curl as a client, on every runtime driver: a TlsStream client to a
 * TlsStream server (close_notify in both directions, writev, a Unix stream below, several MB),
 * curl over HTTPS with ALPN and SNI against a minimal HTTP/1.1 answer, and a handshake-heavy
 * burst that leaves no descriptor behind.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TlsClientContext, TlsServerContext, type TlsStream, tlsAccept, tlsConnect } from '@loch/tls';
import { createRuntime, type Runtime, TcpStream, UnixListener, UnixStream } from '@loch/uring-runtime';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makeTestPki, type TestPki } from './certs.js';
import { bytes, driverCases, echo, eventually, fdCount, LochTlsServer, readAll } from './harness.js';

const run = promisify(execFile);
const drivers = await driverCases();
let pki: TestPki;

beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.remove());

/** Answers one HTTP/1.1 request with the request line echoed, then closes (close_notify). */
async function httpAnswer(stream: TlsStream): Promise<void> {
  let head = '';
  while (!head.includes('\r\n\r\n')) {
    const chunk = await stream.recv();
    if (chunk === null) return;
    head += Buffer.from(chunk.bytes).toString('latin1');
    chunk.release();
  }
  const body = `${head.split('\r\n')[0]} over ${stream.protocol} alpn=${stream.alpnProtocol} sni=${stream.servername}\n`;
  await stream.writev([
    Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`),
    Buffer.from(body),
  ]);
  await stream.shutdown();
}

describe.each(drivers)('Loch to Loch and curl on the $name driver', ({ name, skip }) => {
  const test = skip === undefined ? it : it.skip;
  let runtime: Runtime;
  let server: TlsServerContext;
  let client: TlsClientContext;
  const closers: (() => unknown)[] = [];

  beforeEach(async () => {
    runtime = await createRuntime({ driver: name, log: () => undefined });
    server = new TlsServerContext({
      certificates: [{ chain: pki.localhost.chain, key: pki.localhost.key }],
      alpn: ['http/1.1'],
    });
    client = new TlsClientContext({ ca: pki.ca, alpn: ['http/1.1'] });
  });

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await runtime.close();
  });

  async function listen(handler: (s: TlsStream) => Promise<void>): Promise<LochTlsServer> {
    const s = await new LochTlsServer(runtime, server, handler).listen();
    closers.push(() => s.close());
    return s;
  }

  test('client and server: writev, several MB, close_notify both ways', async () => {
    const s = await listen(echo);
    const raw = await TcpStream.connect({ host: '127.0.0.1', port: s.port, runtime });
    const stream = await tlsConnect(raw, client, { servername: 'localhost' });
    closers.push(() => stream.close());
    expect(stream.alpnProtocol).toBe('http/1.1');
    const payload = bytes(4 * 1024 * 1024 + 3);
    const reading = readAll(stream);
    const parts = [payload.subarray(0, 10), payload.subarray(10, 70_000), payload.subarray(70_000)];
    expect(await stream.writev(parts)).toBe(payload.byteLength);
    await stream.shutdown(); // close_notify: the server's echo loop ends and shuts down too
    expect((await reading).equals(Buffer.from(payload))).toBe(true);
    expect(stream.closeNotifyReceived).toBe(true);
  });

  test('over a Unix stream', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loch-tls-unix-'));
    closers.push(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 's.sock');
    const listener = await UnixListener.bind({ path, runtime });
    closers.push(() => listener.close());
    const served = listener
      .accept()
      .then((raw) => tlsAccept(raw, server))
      .then(echo);
    const raw = await UnixStream.connect({ path, runtime });
    const stream = await tlsConnect(raw, client, { servername: 'localhost' });
    await stream.writeAll(new TextEncoder().encode('over unix'));
    await stream.shutdown();
    expect((await readAll(stream)).toString()).toBe('over unix');
    await served;
    await stream.close();
  });

  test('curl -k over HTTPS (ALPN http/1.1, SNI)', async () => {
    const s = await listen(httpAnswer);
    const { stdout } = await run('curl', [
      '-sS',
      '-k',
      '--http1.1',
      '--resolve',
      `localhost:${s.port}:127.0.0.1`,
      `https://localhost:${s.port}/hello`,
    ]);
    expect(stdout).toMatch(/^GET \/hello HTTP\/1.1 over TLSv1.3 alpn=http\/1.1 sni=localhost/);
    // curl verifying against the test CA, over TLS 1.2.
    const verified = await run('curl', [
      '-sS',
      '--cacert',
      pki.caFile,
      '--tls-max',
      '1.2',
      '--resolve',
      `localhost:${s.port}:127.0.0.1`,
      `https://localhost:${s.port}/v`,
    ]);
    expect(verified.stdout).toMatch(/over TLSv1.2/);
    // Plain HTTP to the TLS port: the connection is closed, not hung.
    const plain = await run('curl', ['-sS', '-m', '5', `http://127.0.0.1:${s.port}/`]).catch(
      (e: unknown) => e,
    );
    expect(String((plain as Error).message)).toMatch(/Empty reply|reset|closed/i);
  });

  /** Runs `command` with `input` on stdin; resolves with its stdout (and never rejects). */
  function runWithInput(command: string, args: string[], input: string): Promise<string> {
    return new Promise((resolve) => {
      const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
      });
      child.stderr.on('data', (b: Buffer) => {
        out += b.toString();
      });
      child.on('close', () => resolve(out));
      child.stdin.end(input);
    });
  }

  test('openssl s_client: versions, ALPN, SNI, verification, resumption, client certificate', async () => {
    const s = await listen(httpAnswer);
    const dir = mkdtempSync(join(tmpdir(), 'loch-tls-sclient-'));
    closers.push(() => rmSync(dir, { recursive: true, force: true }));
    const sess = join(dir, 'session.pem');
    const request = 'GET /s HTTP/1.1\r\nhost: localhost\r\n\r\n';
    const base = [
      's_client',
      '-connect',
      `127.0.0.1:${s.port}`,
      '-servername',
      'localhost',
      '-CAfile',
      pki.caFile,
    ];
    for (const version of ['-tls1_2', '-tls1_3']) {
      const first = await runWithInput(
        'openssl',
        [...base, version, '-alpn', 'h2,http/1.1', '-ign_eof', '-sess_out', sess],
        request,
      );
      expect(first).toMatch(/Verify return code: 0 \(ok\)/);
      expect(first).toMatch(/ALPN protocol: http\/1.1/);
      expect(first).toMatch(
        new RegExp(
          `GET /s HTTP/1.1 over ${version === '-tls1_2' ? 'TLSv1.2' : 'TLSv1.3'} alpn=http/1.1 sni=localhost`,
        ),
      );
      const second = await runWithInput('openssl', [...base, version, '-ign_eof', '-sess_in', sess], request);
      expect(second).toMatch(/^Reused, TLSv1\.[23]/m);
    }
    // A client certificate is presented when the server asks for one.
    const mtls = new TlsServerContext({
      certificates: [{ chain: pki.localhost.chain, key: pki.localhost.key }],
      clientCa: pki.ca,
    });
    const m = await new LochTlsServer(runtime, mtls, httpAnswer).listen();
    closers.push(() => m.close());
    const withCert = await runWithInput(
      'openssl',
      [
        ...['s_client', '-connect', `127.0.0.1:${m.port}`, '-servername', 'localhost', '-CAfile', pki.caFile],
        ...['-cert', pki.client.chainFile, '-key', pki.client.keyFile, '-ign_eof'],
      ],
      request,
    );
    expect(withCert).toMatch(/HTTP\/1.1 200 OK/);
    const stream = ((await m.next()) as { stream: TlsStream }).stream;
    expect(stream.peerCertificate).not.toBeNull();
  });

  test("Python's ssl module as a client (verification, SNI, ALPN)", async () => {
    const s = await listen(httpAnswer);
    const script = [
      'import socket, ssl, sys',
      `ctx = ssl.create_default_context(cafile=${JSON.stringify(pki.caFile)})`,
      "ctx.set_alpn_protocols(['http/1.1'])",
      `with socket.create_connection(('127.0.0.1', ${s.port})) as raw:`,
      "    with ctx.wrap_socket(raw, server_hostname='localhost') as tls:",
      "        tls.sendall(b'GET /py HTTP/1.1\\r\\nhost: localhost\\r\\n\\r\\n')",
      "        data = b''",
      '        while True:',
      '            part = tls.recv(4096)',
      '            if not part: break',
      '            data += part',
      "        print(tls.version(), tls.selected_alpn_protocol(), data.decode().split('\\r\\n\\r\\n')[1])",
    ].join('\n');
    const { stdout } = await run('python3', ['-c', script]);
    expect(stdout).toMatch(/^TLSv1.3 http\/1.1 GET \/py HTTP\/1.1 over TLSv1.3 alpn=http\/1.1 sni=localhost/);
  });

  test('200 handshakes in a row leave no descriptor behind', async () => {
    const baseline = fdCount();
    const s = await listen(echo);
    for (let i = 0; i < 200; i++) {
      const raw = await TcpStream.connect({ host: '127.0.0.1', port: s.port, runtime });
      const stream = await tlsConnect(raw, client, { servername: 'localhost' });
      await stream.writeAll(new Uint8Array([i & 0xff]));
      expect((await stream.recv())?.bytes[0]).toBe(i & 0xff);
      await stream.close();
    }
    await s.close();
    expect(await eventually(() => fdCount() <= baseline)).toBe(true);
  });
});
