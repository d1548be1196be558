/**
 * Loch's own TLS 1.3 record layer (`records: 'loch'`, the default, native/src/tls13_record.h;
 * `records: 'openssl'` or LOCH_TLS_RECORDS=openssl opts out) against real peers on every driver: node:tls, openssl s_client (KeyUpdate with and without
 * update_requested), curl and Python's ssl; each TLS 1.3 suite; 1 MB each way; resumption; 0, 1
 * and 4 session tickets before the take-over; garbage, overlong and truncated records after it
 * end that connection only; a peer's fatal alert (sealed by the test under node:tls's logged client
 * secret) is a TlsAlertError on both record layers; TLS 1.2 and a suite the layer does not run stay on OpenSSL. A wrong
 * sequence number or key fails them: the peer (or the server) refuses the first record.
 */
import { execFile, spawn } from 'node:child_process';
import { createCipheriv, createHash, createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TLSSocket, connect as tlsConnectNode } from 'node:tls';
import { promisify } from 'node:util';
import {
  TlsAlertError,
  TlsError,
  TlsServerContext,
  type TlsServerContextOptions,
  type TlsStream,
} from '@loch/tls';
import { createRuntime, type Runtime } from '@loch/uring-runtime';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makeTestPki, type TestPki } from './certs.js';
import { bytes, driverCases, echo, LochTlsServer, nodeClient, roundTrip } from './harness.js';

const run = promisify(execFile);
const drivers = await driverCases();
const SUITES = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'] as const;
const MB = 1024 * 1024;
let pki: TestPki;

beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.remove());

function sha(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * A minimal HTTP/1.1 answer: reads the head and a content-length body, answers with the body's
 * length and hash, or with `size` bytes of a fixed pattern for GET /bytes/<size>; then closes.
 */
async function httpAnswer(stream: TlsStream): Promise<void> {
  let buffered = Buffer.alloc(0);
  let headEnd = -1;
  while (headEnd < 0) {
    const chunk = await stream.recv();
    if (chunk === null) return;
    buffered = Buffer.concat([buffered, chunk.bytes]);
    chunk.release();
    headEnd = buffered.indexOf('\r\n\r\n');
  }
  const head = buffered.subarray(0, headEnd).toString('latin1');
  const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
  let body = buffered.subarray(headEnd + 4);
  while (body.length < length) {
    const chunk = await stream.recv();
    if (chunk === null) return;
    body = Buffer.concat([body, chunk.bytes]);
    chunk.release();
  }
  const wanted = /^GET \/bytes\/(\d+)/.exec(head);
  const answer = wanted !== null ? pattern(Number(wanted[1])) : Buffer.from(`${body.length} ${sha(body)}\n`);
  await stream.writev([
    Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${answer.length}\r\nconnection: close\r\n\r\n`),
    answer,
  ]);
  await stream.shutdown();
}

/** HKDF-Expand-Label(secret, label, "", length) with SHA-256 (RFC 8446 7.1), lengths <= 32. */
function expandLabel(secret: Buffer, label: string, length: number): Buffer {
  const full = Buffer.from(`tls13 ${label}`, 'latin1');
  const info = Buffer.concat([
    Buffer.from([length >> 8, length & 0xff, full.length]),
    full,
    Buffer.from([0]),
  ]);
  return createHmac('sha256', secret)
    .update(Buffer.concat([info, Buffer.from([1])]))
    .digest()
    .subarray(0, length);
}

/**
 * A TLS 1.3 record of `type` sealed with TLS_AES_128_GCM_SHA256 under the traffic secret
 * `secret` at sequence number `seq` (RFC 8446 5.2, 5.3): what the peer's own stack would send,
 * made here because no client sends a fatal alert on demand.
 */
function sealRecord(secret: Buffer, seq: number, type: number, content: Buffer): Buffer {
  const key = expandLabel(secret, 'key', 16);
  const nonce = expandLabel(secret, 'iv', 12);
  nonce.writeUInt32BE((nonce.readUInt32BE(8) ^ seq) >>> 0, 8);
  const inner = Buffer.concat([content, Buffer.from([type])]);
  const header = Buffer.from([23, 3, 3, (inner.length + 16) >> 8, (inner.length + 16) & 0xff]);
  const cipher = createCipheriv('aes-128-gcm', key, nonce).setAAD(header);
  return Buffer.concat([header, cipher.update(inner), cipher.final(), cipher.getAuthTag()]);
}

function pattern(n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = (i * 7 + (i >> 8)) & 0xff;
  return out;
}

describe.each(drivers)("Loch's TLS 1.3 record layer on the $name driver", ({ name, skip }) => {
  const test = skip === undefined ? it : it.skip;
  let runtime: Runtime;
  const closers: (() => unknown)[] = [];

  beforeEach(async () => {
    runtime = await createRuntime({ driver: name, log: () => undefined });
  });
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c();
    await runtime.close();
  });

  function context(options: Partial<TlsServerContextOptions> = {}): TlsServerContext {
    return new TlsServerContext({
      certificates: [{ chain: pki.localhost.chain, key: pki.localhost.key }],
      records: 'loch',
      ...options,
    });
  }

  async function listen(
    ctx: TlsServerContext,
    handler: (stream: TlsStream) => Promise<void> = echo,
  ): Promise<LochTlsServer> {
    const s = await new LochTlsServer(runtime, ctx, handler).listen();
    closers.push(() => s.close());
    return s;
  }

  test.each(SUITES)('node:tls with %s: 1 MB each way, then close_notify', async (suite) => {
    const ctx = context({ ciphersuites: suite });
    const s = await listen(ctx);
    const socket = await nodeClient(s.port, { ca: pki.ca, servername: 'localhost' });
    expect(socket.getCipher().standardName).toBe(suite);
    const data = bytes(MB);
    const back = await roundTrip(socket, data);
    expect(back.length).toBe(MB);
    expect(sha(back)).toBe(sha(data));
    expect(ctx.recordStats()).toEqual({ loch: 1, declined: 0 });
    socket.destroy();
  });

  test("the default; records: 'openssl' or LOCH_TLS_RECORDS=openssl keeps OpenSSL's, the option winning", async () => {
    const previous = process.env.LOCH_TLS_RECORDS;
    const certificates = [{ chain: pki.localhost.chain, key: pki.localhost.key }];
    /** Which layer a context made now says it runs, and which one carried a 1,000 B echo. */
    const exchange = async (options: Partial<TlsServerContextOptions> = {}) => {
      const ctx = new TlsServerContext({ certificates, ...options });
      const s = await listen(ctx);
      const socket = await nodeClient(s.port, { ca: pki.ca, servername: 'localhost' });
      expect((await roundTrip(socket, bytes(1000))).length).toBe(1000);
      socket.destroy();
      return { records: ctx.records, stats: ctx.recordStats() };
    };
    const onLoch = { records: 'loch', stats: { loch: 1, declined: 0 } };
    const onOpenssl = { records: 'openssl', stats: { loch: 0, declined: 0 } };
    try {
      delete process.env.LOCH_TLS_RECORDS;
      expect(await exchange()).toEqual(onLoch);
      expect(await exchange({ records: 'openssl' })).toEqual(onOpenssl);
      process.env.LOCH_TLS_RECORDS = 'openssl';
      expect(await exchange()).toEqual(onOpenssl);
      expect(await exchange({ records: 'loch' })).toEqual(onLoch);
      process.env.LOCH_TLS_RECORDS = 'loch';
      expect(await exchange({ records: 'openssl' })).toEqual(onOpenssl);
      process.env.LOCH_TLS_RECORDS = 'kernel';
      expect(() => new TlsServerContext({ certificates })).toThrow(
        /LOCH_TLS_RECORDS must be 'openssl' or 'loch'/,
      );
    } finally {
      if (previous === undefined) delete process.env.LOCH_TLS_RECORDS;
      else process.env.LOCH_TLS_RECORDS = previous;
    }
    expect(() => context({ records: 'kernel' as never })).toThrow(/records must be 'openssl' or 'loch'/);
  });

  test.each([0, 1, 4])('%i session tickets before the take-over, then resumption', async (tickets) => {
    const ctx = context({ ticketsPerHandshake: tickets });
    const s = await listen(ctx);
    const sessions: Buffer[] = [];
    const first = tlsConnectNode({ host: '127.0.0.1', port: s.port, ca: pki.ca, servername: 'localhost' });
    first.on('session', (session: Buffer) => sessions.push(session));
    await new Promise<void>((resolve, reject) => {
      first.once('secureConnect', () => resolve());
      first.once('error', reject);
    });
    const data = bytes(200_000);
    expect(sha(await roundTrip(first, data))).toBe(sha(data));
    expect(sessions.length).toBe(tickets);
    first.destroy();
    if (tickets > 0) {
      const second = await nodeClient(s.port, {
        ca: pki.ca,
        servername: 'localhost',
        session: sessions.at(-1)!,
      });
      expect(second.isSessionReused()).toBe(true);
      expect(sha(await roundTrip(second, data))).toBe(sha(data));
      second.destroy();
    }
    expect(ctx.recordStats()).toEqual({ loch: tickets > 0 ? 2 : 1, declined: 0 });
  });

  test('after a HelloRetryRequest (the client guessed a group the server does not take)', async () => {
    const ctx = context();
    const s = await listen(ctx);
    // The client's key share is for P-521, which the server does not accept: it asks again for P-256.
    const socket = await nodeClient(s.port, {
      ca: pki.ca,
      servername: 'localhost',
      ecdhCurve: 'P-521:P-256',
    });
    expect(socket.getEphemeralKeyInfo()).toMatchObject({ name: 'prime256v1' });
    const data = bytes(100_000);
    expect(sha(await roundTrip(socket, data))).toBe(sha(data));
    expect(ctx.recordStats()).toEqual({ loch: 1, declined: 0 });
    socket.destroy();
  });

  test('the first request in the same segment as the Finished', async () => {
    // openssl s_client writes its Finished and the first line in one flight once the handshake
    // is done; Python below too. Here: node:tls writes at once on secureConnect.
    const ctx = context();
    const s = await listen(ctx);
    const socket = tlsConnectNode({ host: '127.0.0.1', port: s.port, ca: pki.ca, servername: 'localhost' });
    const parts: Buffer[] = [];
    socket.on('data', (b: Buffer) => parts.push(b));
    socket.write('hello at once'); // queued before the handshake completes: sent right after Finished
    const ended = new Promise((r) => socket.once('end', r));
    socket.end();
    await ended;
    expect(Buffer.concat(parts).toString()).toBe('hello at once');
    expect(ctx.recordStats().loch).toBe(1);
  });

  test('openssl s_client: KeyUpdate without and with update_requested, both ways after', async () => {
    const ctx = context();
    const s = await listen(ctx);
    const child = spawn(
      'openssl',
      [
        's_client',
        '-connect',
        `127.0.0.1:${s.port}`,
        '-servername',
        'localhost',
        '-CAfile',
        pki.caFile,
        '-tls1_3',
        '-msg',
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      err += b.toString();
    });
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    const waitFor = async (text: string): Promise<void> => {
      for (let i = 0; i < 500 && !out.includes(text); i++) await new Promise((r) => setTimeout(r, 10));
      expect(out, `${err}\n${out.slice(-300)}`).toContain(text);
    };
    // s_client reads a command letter as the whole of one stdin read: each is written once the
    // one before was taken (it prints KEYUPDATE), so no line rides along with a command.
    const command = async (letter: string, nth: number): Promise<void> => {
      child.stdin.write(`${letter}\n`);
      for (let i = 0; i < 500 && (err.match(/KEYUPDATE/g) ?? []).length < nth; i++)
        await new Promise((r) => setTimeout(r, 10));
      expect((err.match(/KEYUPDATE/g) ?? []).length, err).toBe(nth);
    };
    await waitFor('Verify return code: 0 (ok)');
    child.stdin.write('line one\n');
    await waitFor('line one');
    await command('k', 1); // KeyUpdate, update_not_requested
    child.stdin.write('line two\n');
    await waitFor('line two');
    // With update_requested the server answers with a KeyUpdate of its own (-msg shows what
    // arrives) and its next records are under its next key.
    const answered = async (nth: number): Promise<void> => {
      const count = () => (out.match(/<<< TLS 1.3, Handshake \[length 0005\], KeyUpdate/g) ?? []).length;
      for (let i = 0; i < 500 && count() < nth; i++) await new Promise((r) => setTimeout(r, 10));
      expect(count(), out.slice(-600)).toBe(nth);
    };
    await command('K', 2); // KeyUpdate, update_requested: the server updates its keys too
    await answered(1);
    child.stdin.write('line three\n');
    await waitFor('line three');
    await command('K', 3);
    await answered(2);
    // Data under the server's new key before the next request: a server still silent since its
    // last KeyUpdate answers further requests with none (RFC 8446 4.6.3, one update while silent).
    child.stdin.write('line 3b\n');
    await waitFor('line 3b');
    await command('K', 4);
    await answered(3);
    child.stdin.write('line four\n');
    await waitFor('line four');
    child.stdin.end();
    await closed;
    expect(err).toMatch(/KEYUPDATE/);
    expect(err).not.toMatch(/alert|error/i);
    expect(ctx.recordStats()).toEqual({ loch: 1, declined: 0 });
  });

  test('curl: 1 MB down and up', async () => {
    const ctx = context();
    const s = await listen(ctx, httpAnswer);
    const base = ['-sS', '--tlsv1.3', '--cacert', pki.caFile, '--resolve', `localhost:${s.port}:127.0.0.1`];
    const down = await run('curl', [...base, '-o', '-', `https://localhost:${s.port}/bytes/${MB}`], {
      encoding: 'buffer',
      maxBuffer: 4 * MB,
    });
    expect(sha(down.stdout as unknown as Buffer)).toBe(sha(pattern(MB)));
    const dir = mkdtempSync(join(tmpdir(), 'loch-tls-records-'));
    closers.push(() => rmSync(dir, { recursive: true, force: true }));
    const upload = bytes(MB);
    writeFileSync(join(dir, 'up.bin'), upload);
    const up = await run('curl', [
      ...base,
      '--data-binary',
      `@${join(dir, 'up.bin')}`,
      `https://localhost:${s.port}/`,
    ]);
    expect(up.stdout).toBe(`${MB} ${sha(upload)}\n`);
    expect(ctx.recordStats()).toEqual({ loch: 2, declined: 0 });
  });

  test.each(SUITES)("Python's ssl with %s: 1 MB up, the hash and 1 MB down", async (suite) => {
    const ctx = context({ ciphersuites: suite });
    const s = await listen(ctx, httpAnswer);
    const script = [
      'import socket, ssl, hashlib, os',
      `ctx = ssl.create_default_context(cafile=${JSON.stringify(pki.caFile)})`,
      'ctx.minimum_version = ssl.TLSVersion.TLSv1_3',
      'body = os.urandom(1048576)',
      'def fetch(req):',
      `    with socket.create_connection(('127.0.0.1', ${s.port})) as raw:`,
      "        with ctx.wrap_socket(raw, server_hostname='localhost') as tls:",
      '            tls.sendall(req)',
      "            data = b''",
      '            while True:',
      '                part = tls.recv(65536)',
      '                if not part: break',
      '                data += part',
      '            return tls.cipher()[0], data',
      "name, up = fetch(b'POST / HTTP/1.1\\r\\nhost: localhost\\r\\ncontent-length: 1048576\\r\\n\\r\\n' + body)",
      "print(name, up.split(b'\\r\\n\\r\\n')[1].decode().strip() == '%d %s' % (len(body), hashlib.sha256(body).hexdigest()))",
      "name, down = fetch(b'GET /bytes/1048576 HTTP/1.1\\r\\nhost: localhost\\r\\n\\r\\n')",
      "print(hashlib.sha256(down.split(b'\\r\\n\\r\\n', 1)[1]).hexdigest())",
    ].join('\n');
    const { stdout } = await run('python3', ['-c', script]);
    expect(stdout).toBe(`${suite} True\n${sha(pattern(MB))}\n`);
    expect(ctx.recordStats()).toEqual({ loch: 2, declined: 0 });
  });

  test('TLS 1.2 and a suite the layer does not run stay on OpenSSL', async () => {
    const ctx = context({ ciphersuites: 'TLS_AES_128_CCM_SHA256' });
    const s = await listen(ctx);
    const v12 = await nodeClient(s.port, { ca: pki.ca, servername: 'localhost', maxVersion: 'TLSv1.2' });
    expect(v12.getProtocol()).toBe('TLSv1.2');
    const data = bytes(300_000);
    expect(sha(await roundTrip(v12, data))).toBe(sha(data));
    v12.destroy();
    expect(ctx.recordStats()).toEqual({ loch: 0, declined: 0 });
    const ccm = await nodeClient(s.port, {
      ca: pki.ca,
      servername: 'localhost',
      ciphers: 'TLS_AES_128_CCM_SHA256',
    });
    expect(ccm.getCipher().standardName).toBe('TLS_AES_128_CCM_SHA256');
    expect(sha(await roundTrip(ccm, data))).toBe(sha(data));
    ccm.destroy();
    expect(ctx.recordStats()).toEqual({ loch: 0, declined: 1 });
  });

  /** A node:tls client over a socket we can also write raw bytes to. */
  async function rawClient(port: number): Promise<{ tls: TLSSocket; raw: ReturnType<typeof netConnect> }> {
    const raw = netConnect({ host: '127.0.0.1', port });
    const tls = tlsConnectNode({ socket: raw, ca: pki.ca, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      tls.once('secureConnect', () => resolve());
      tls.once('error', reject);
    });
    tls.on('error', () => undefined);
    return { tls, raw };
  }

  /** The error the server's reader gets on its connection (null: it ended cleanly). */
  const notified: (boolean | undefined)[] = [];
  function failing(): { handler: (stream: TlsStream) => Promise<void>; errors: Promise<unknown>[] } {
    const errors: Promise<unknown>[] = [];
    const handler = (stream: TlsStream): Promise<void> => {
      const p = (async () => {
        for (;;) {
          const chunk = await stream.recv();
          if (chunk === null) {
            notified.push(stream.facts.closeNotified);
            return null;
          }
          const copy = chunk.bytes.slice();
          chunk.release();
          await stream.writeAll(copy);
        }
      })().catch((e: unknown) => e);
      errors.push(p);
      return p.then(() => undefined);
    };
    return { handler, errors };
  }

  test('a forged record, an overlong one, a non-TLS byte and a truncated one each end their connection only', async () => {
    const ctx = context();
    const { handler, errors } = failing();
    const s = await listen(ctx, handler);
    const bystander = await nodeClient(s.port, { ca: pki.ca, servername: 'localhost' });
    const alerts: string[] = [];
    const cases: [string, Buffer][] = [
      ['forged', Buffer.concat([Buffer.from([23, 3, 3, 0, 40]), Buffer.from(bytes(40))])],
      ['overlong', Buffer.concat([Buffer.from([23, 3, 3, 0x41, 0x01]), Buffer.from(bytes(100))])],
      ['handshake in the clear', Buffer.from([22, 3, 3, 0, 4, 24, 0, 0, 1])],
      ['short', Buffer.from([23, 3, 3, 0, 3, 1, 2, 3])],
    ];
    for (const [i, [, record]] of cases.entries()) {
      const { tls, raw } = await rawClient(s.port);
      // One good exchange first: the connection is on Loch's record layer.
      const echoed = new Promise<Buffer>((r) => tls.once('data', r));
      tls.write('ok');
      expect((await echoed).toString()).toBe('ok');
      const closed = new Promise<void>((r) => tls.once('close', () => r()));
      tls.once('error', (e: Error) => alerts.push(e.message));
      raw.write(record);
      await closed;
      const error = await errors[i + 1];
      expect(error).toBeInstanceOf(TlsError);
    }
    expect(alerts.join('\n')).toMatch(/bad record mac/i);
    expect(alerts.join('\n')).toMatch(/record overflow/i);
    // Truncated: a record's header and part of its body, then the client goes away.
    const { tls, raw } = await rawClient(s.port);
    const echoed = new Promise<Buffer>((r) => tls.once('data', r));
    tls.write('ok');
    await echoed;
    raw.end(Buffer.from([23, 3, 3, 0, 100, 1, 2, 3]));
    // End of stream without close_notify, as on OpenSSL's record layer: readers that need the
    // difference read facts.closeNotified (an HTTP body delimited by the close is then an error).
    expect(await errors[cases.length + 1]).toBeNull();
    expect(notified.at(-1)).toBe(false);
    tls.destroy();
    // The bystander's connection (and the worker) carried on.
    const data = bytes(100_000);
    expect(sha(await roundTrip(bystander, data))).toBe(sha(data));
    expect(ctx.recordStats()).toEqual({ loch: cases.length + 2, declined: 0 });
    bystander.destroy();
  });

  test.each(['loch', 'openssl'] as const)(
    "a peer's fatal alert after the handshake ends the reader with TlsAlertError, answered by no alert (records: %s)",
    async (records) => {
      const ctx = context({ records, ciphersuites: 'TLS_AES_128_GCM_SHA256' });
      const { handler, errors } = failing();
      const s = await listen(ctx, handler);
      const raw = netConnect({ host: '127.0.0.1', port: s.port });
      const tls = tlsConnectNode({ socket: raw, ca: pki.ca, servername: 'localhost' });
      let secret: Buffer | undefined;
      tls.on('keylog', (line: Buffer) => {
        const [label, , hex] = line.toString('latin1').trim().split(' ');
        if (label === 'CLIENT_TRAFFIC_SECRET_0') secret = Buffer.from(hex!, 'hex');
      });
      await new Promise<void>((resolve, reject) => {
        tls.once('secureConnect', () => resolve());
        tls.once('error', reject);
      });
      tls.on('error', () => undefined);
      // One exchange first (the client's record 0 under its application key): taken over.
      const echoed = new Promise<Buffer>((r) => tls.once('data', r));
      tls.write('ok');
      expect((await echoed).toString()).toBe('ok');
      expect(ctx.recordStats().loch).toBe(records === 'loch' ? 1 : 0);
      // Record 1: alert(fatal, handshake_failure), then the bytes the server sends back until it closes.
      const back: Buffer[] = [];
      raw.on('data', (d: Buffer) => back.push(d));
      const closed = new Promise<void>((r) => raw.once('close', () => r()));
      raw.write(sealRecord(secret!, 1, 21, Buffer.from([2, 40])));
      const error = await errors[0];
      expect(error).toBeInstanceOf(TlsAlertError);
      expect((error as TlsAlertError).alert).toBe(40);
      expect((error as Error).message).toMatch(/the peer sent the fatal alert handshake failure \(40\)/);
      await closed;
      // RFC 8446 6.2: a fatal alert closes the connection at once; the server sends nothing after it.
      expect(Buffer.concat(back).byteLength).toBe(0);
      tls.destroy();
    },
  );

  test("the peer's close_notify ends the reader with end of stream, not an error", async () => {
    const ctx = context();
    const { handler, errors } = failing();
    const s = await listen(ctx, handler);
    const { tls } = await rawClient(s.port);
    const echoed = new Promise<Buffer>((r) => tls.once('data', r));
    tls.write('ok');
    await echoed;
    tls.end(); // close_notify, then FIN
    expect(await errors[0]).toBeNull();
    expect(notified.at(-1)).toBe(true);
    expect(ctx.recordStats().loch).toBe(1);
    tls.destroy();
  });
});
