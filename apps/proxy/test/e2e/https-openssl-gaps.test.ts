/**
 * loch's HTTPS listener on the default (OpenSSL) record layer, on every runtime driver, against
 * clients that break the record layer (issue 13's audit; https-own-records.test.ts covers Loch's
 * own record layer): a record header announcing more bytes than are sent, before and after the
 * handshake, followed by a close or by silence until the handshake or idle deadline, and a
 * client that vanishes (a reset) mid-record, sending or receiving. Each ends only its own
 * connection: the next client is served, no worker was replaced, and loch's descriptors
 * (/proc/<pid>/fd) come back to where they were. Also what the policy refuses, as openssl
 * s_client sees it: TLS 1.2 renegotiation (`R`) and TLS 1.3 early data (0-RTT) on a resumed
 * session.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../src/demo-certificate.js';
import {
  availableDrivers,
  curl,
  freePort,
  adminGet as get,
  httpUpstream,
  type Loch,
  startLoch,
  tempDir,
  until,
} from './harness.js';

const drivers = availableDrivers();
const BIG = 4 << 20;

/**
 * A TLS client whose transport is this relay over a real socket, so the test can also write
 * bytes beneath the TLS session (`raw`), half-close it or reset it.
 */
class Relay extends Duplex {
  constructor(readonly raw: net.Socket) {
    super();
    raw.on('data', (d: Buffer) => this.push(d));
    raw.on('end', () => this.push(null));
    raw.on('error', () => this.destroy());
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (e?: Error | null) => void): void {
    if (this.raw.destroyed) done();
    else this.raw.write(chunk, () => done());
  }
  override _read(): void {}
  override _final(done: () => void): void {
    this.raw.end(done);
  }
}

interface Raw {
  raw: net.Socket;
  /** Resolves when the server's side is gone (the socket closed, or reset). */
  closed: Promise<void>;
}

/** A plain TCP connection to loch. */
async function rawConnect(port: number): Promise<Raw> {
  const raw = net.connect(port, '127.0.0.1');
  raw.on('error', () => {});
  const closed = new Promise<void>((resolve) => raw.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    raw.once('connect', resolve);
    raw.once('error', reject);
  });
  return { raw, closed };
}

/** A TLS 1.3 (or `maxVersion`) session to loch over a socket the test can write beneath. */
async function secureRaw(
  port: number,
  options: tls.ConnectionOptions = {},
): Promise<Raw & { secure: tls.TLSSocket }> {
  const r = await rawConnect(port);
  const secure = tls.connect({
    socket: new Relay(r.raw) as never,
    servername: 'localhost',
    rejectUnauthorized: false,
    ALPNProtocols: ['http/1.1'],
    ...options,
  });
  secure.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    secure.once('secureConnect', resolve);
    secure.once('error', reject);
  });
  return { ...r, secure };
}

/** A record header of `type` announcing 16,384 bytes, and only `sent` of them. */
function truncatedRecord(type: number, sent: number): Buffer {
  const header = Buffer.from([type, 0x03, 0x03, 0x40, 0x00]);
  return Buffer.concat([header, Buffer.alloc(sent, 0x5a)]);
}

/** Runs openssl s_client with `args`; `drive` gets its stdin and its output so far. */
function sClient(
  args: readonly string[],
  drive: (stdin: NodeJS.WritableStream, output: () => string) => Promise<void>,
): Promise<string> {
  const child = spawn('openssl', ['s_client', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    output += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    output += d;
  });
  child.stdin.on('error', () => {});
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  return (async () => {
    try {
      await drive(child.stdin, () => output);
    } finally {
      child.stdin.end();
      await exited;
      clearTimeout(killer);
    }
    return output;
  })();
}

describe.each(drivers)('HTTPS on the OpenSSL record layer on the %s driver', (driver) => {
  let loch: Loch;
  let upstream: Awaited<ReturnType<typeof httpUpstream>>;
  let port: number;
  let admin: number;
  let dir: string;
  let baseline: number;
  const seen: string[] = [];

  beforeAll(async () => {
    dir = tempDir('loch-https-openssl-gaps-');
    selfSignedCertificate(dir, 'front', ['localhost']);
    upstream = await httpUpstream((req, res) => {
      seen.push(req.url ?? '');
      if (req.url === '/big') {
        res.writeHead(200, { 'content-length': BIG });
        res.end(Buffer.alloc(BIG, 0x62));
      } else res.end(`ok ${req.url}`);
    });
    port = await freePort();
    admin = await freePort();
    loch = await startLoch(
      dir,
      `
[runtime]
workers = 1

[admin]
listener = { type = "socket", value = "127.0.0.1:${admin}" }

[servers.s]
listener = { type = "socket", value = "127.0.0.1:${port}" }
timeouts = { server_keepalive = "1s", server_read_header = "1s", upstream_read = "10s" }
tls = { chain = "front.pem", key = "front.key", records = "openssl", handshake_timeout = "1s" }

[[servers.s.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream.port}" }]
`,
      // The record layer under test is OpenSSL's whatever the environment says.
      { LOCH_DRIVER: driver, LOCH_TLS_RECORDS: 'openssl' },
    );
    // One request first: the upstream pool's connection is part of the baseline.
    await servedAfter('warm-up');
    baseline = loch.fdCount();
  });
  afterAll(async () => {
    await loch?.stop();
    await upstream?.close();
  });

  /** A new client is served at once. */
  async function servedAfter(what: string): Promise<void> {
    const r = await curl(['-k', `https://127.0.0.1:${port}/${what}`]);
    expect(r.out).toBe(`ok /${what}`);
  }

  /** Only the connection ended: served after, no worker replaced, no descriptor kept. */
  async function onlyItsConnection(what: string): Promise<void> {
    await servedAfter(what);
    await until(() => loch.fdCount() <= baseline);
    expect(loch.fdCount()).toBeLessThanOrEqual(baseline);
    const metrics = await get(admin, '/metrics');
    expect(metrics).toMatch(/^loch_worker_restarts_total 0$/m);
    expect(metrics).toMatch(/^loch_workers_running 1$/m);
    expect(loch.stderr()).not.toMatch(/crashed|uncaught|unhandled/i);
    expect(loch.child.exitCode).toBe(null);
  }

  it('ends a truncated handshake record followed by a close', async () => {
    const c = await rawConnect(port);
    c.raw.end(truncatedRecord(0x16, 100));
    await c.closed;
    await onlyItsConnection('after-truncated-hello');
  });

  it('ends a truncated handshake record followed by silence at the handshake deadline', async () => {
    const c = await rawConnect(port);
    c.raw.write(truncatedRecord(0x16, 100));
    // Closed by loch (handshake_timeout 1 s), not by this test.
    await c.closed;
    await onlyItsConnection('after-stalled-hello');
  });

  it('ends a truncated application record followed by a close', async () => {
    const c = await secureRaw(port);
    c.raw.end(truncatedRecord(0x17, 200));
    await c.closed;
    await onlyItsConnection('after-truncated-record');
  });

  it('ends a truncated application record followed by silence at the idle deadline', async () => {
    const c = await secureRaw(port);
    c.raw.write(truncatedRecord(0x17, 200));
    await c.closed;
    await onlyItsConnection('after-stalled-record');
  });

  it('ends a request that stops mid-record at the header deadline (TLS 1.2 too)', async () => {
    for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
      const c = await secureRaw(port, { maxVersion });
      c.secure.write('GET /never HTTP/1.1\r\nHost: localhost\r\n');
      c.raw.write(truncatedRecord(0x17, 40));
      await c.closed;
    }
    expect(seen).not.toContain('/never');
    await onlyItsConnection('after-stalled-head');
  });

  it('ends a client that vanishes mid-record while sending', async () => {
    const c = await secureRaw(port);
    c.secure.write('GET /vanished HTTP/1.1\r\nHost: localhost\r\n');
    c.raw.write(truncatedRecord(0x17, 300), () => c.raw.resetAndDestroy());
    await c.closed;
    expect(seen).not.toContain('/vanished');
    await onlyItsConnection('after-vanished-sender');
  });

  it('ends a client that vanishes mid-record while receiving a large answer', async () => {
    const c = await secureRaw(port);
    // The first plaintext bytes of the answer: loch is mid-body, its next records unsent.
    const started = new Promise<void>((resolve) => c.secure.once('data', () => resolve()));
    c.secure.write('GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await started;
    c.raw.resetAndDestroy();
    await c.closed;
    await onlyItsConnection('after-vanished-reader');
  });

  it('refuses TLS 1.2 renegotiation (openssl s_client R)', async () => {
    const out = await sClient(
      ['-connect', `127.0.0.1:${port}`, '-tls1_2', '-servername', 'localhost'],
      async (stdin, output) => {
        await until(() => output().includes('Verify return code'));
        stdin.write('R\n');
        await until(() => /no renegotiation|handshake failure|alert/i.test(output()));
      },
    );
    expect(out).toContain('Protocol  : TLSv1.2');
    expect(out).toContain('RENEGOTIATING');
    // The client reads loch's no_renegotiation alert: no second handshake took place.
    expect(out).toMatch(/:no renegotiation:/);
    await onlyItsConnection('after-renegotiation');
  });

  it('accepts no TLS 1.3 early data (0-RTT) on a resumed session', async () => {
    const session = join(dir, `session-${driver}.pem`);
    const early = join(dir, 'early.txt');
    writeFileSync(early, 'GET /early HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const first = await sClient(
      ['-connect', `127.0.0.1:${port}`, '-tls1_3', '-servername', 'localhost', '-sess_out', session],
      // The ticket comes after the handshake: wait for s_client to write it.
      async () => until(() => existsSync(session) && statSync(session).size > 0),
    );
    expect(first).toContain('Max Early Data: 0');
    expect(readFileSync(session, 'utf8')).toContain('BEGIN SSL SESSION PARAMETERS');
    const second = await sClient(
      [
        '-connect',
        `127.0.0.1:${port}`,
        '-tls1_3',
        '-servername',
        'localhost',
        '-sess_in',
        session,
        '-early_data',
        early,
      ],
      async (_stdin, output) => until(() => /Early data was/.test(output())),
    );
    // The session resumed, and its early data was not taken.
    expect(second).toContain('Reused, TLSv1.3');
    expect(second).toMatch(/Early data was (not sent|rejected)/);
    expect(second).not.toContain('Early data was accepted');
    expect(seen).not.toContain('/early');
    await onlyItsConnection('after-early-data');
  });
});
