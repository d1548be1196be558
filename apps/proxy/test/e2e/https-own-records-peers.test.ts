/**
 * Loch's own TLS 1.3 record layer (a server's `tls.records = "loch"`) against foreign record
 * layers, on every runtime driver: `openssl s_client` and Python's ssl (OpenSSL's records as
 * other programs drive them; node:tls is covered by https-own-records.test.ts, crafted records
 * by packages/tls/test/records-*). KeyUpdate from the client without and with update_requested
 * (s_client's `k` and `K`), between requests, many in a row, inside an upload's body, and while
 * loch's answer waits to be sent behind a stalled reader; a 1 MiB upload in full and in ~1,000-byte
 * records; pipelined requests, whole and cut into 7-byte records; a verified client certificate
 * forwarded on every request of a kept-alive connection (read after OpenSSL's SSL is freed at the
 * take-over), a client's own claim dropped; a client that sends close_notify
 * after its request and keeps the socket open (with and without bytes after it, which must be
 * ignored), answered as on OpenSSL's record layer; TLS 1.2 (an upload, and renegotiation, which
 * is refused) stays on OpenSSL's record layer and is counted in no take-over.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../src/demo-certificate.js';
import {
  availableDrivers,
  freePort,
  adminGet as get,
  httpUpstream,
  type Loch,
  startLoch,
  type TakeoverCounts,
  tempDir,
  tlsTakeovers,
  until,
} from './harness.js';

const drivers = availableDrivers();
const PEER = join(import.meta.dirname, 'peers/tls_records_client.py');
/** /big's length: more than loopback's socket buffers hold, so loch keeps some of it unsent. */
const BIG = 24 << 20;

/** Runs tls_records_client.py; its JSON line. */
async function python<T>(...args: (string | number)[]): Promise<T> {
  const { stdout } = await promisify(execFile)('python3', [PEER, ...args.map(String)], {
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 16 << 20,
  });
  return JSON.parse(stdout) as T;
}

/**
 * `openssl s_client` driven through stdin: a line typed is sent as one record (LF as CRLF), and
 * a line `k` or `K` alone sends a KeyUpdate (update_not_requested / update_requested). Its
 * protocol messages (-msg) go to their own file, so stdout is the session summary and what loch
 * answered.
 */
class SClient {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  #out = '';
  /** Bytes of '~' received (/big's body), counted as they come. */
  tildes = 0;

  constructor(
    port: number,
    readonly msgFile: string,
    extra: readonly string[],
  ) {
    this.child = spawn(
      'openssl',
      [
        's_client',
        '-connect',
        `127.0.0.1:${port}`,
        '-servername',
        'localhost',
        '-crlf',
        '-msg',
        '-msgfile',
        msgFile,
        ...extra,
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    this.child.stdout!.setEncoding('latin1').on('data', (d: string) => {
      for (let i = d.indexOf('~'); i >= 0; i = d.indexOf('~', i + 1)) this.tildes++;
      // /big's body is not kept: only the text around it is asserted on.
      this.#out += d.replace(/~+/g, '~');
    });
    this.child.stderr!.setEncoding('latin1').on('data', (d: string) => {
      this.#out += d;
    });
    this.child.stdin!.on('error', () => {});
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
  }

  /** stdout and stderr so far ('~' runs shortened to one). */
  out(): string {
    return this.#out;
  }

  /** The -msg lines so far. */
  msgs(): string {
    try {
      return readFileSync(this.msgFile, 'latin1');
    } catch {
      return '';
    }
  }

  /** How many protocol messages matching `what` (e.g. 'KeyUpdate') went out ('>>>') or came in ('<<<'). */
  count(direction: '>>>' | '<<<', what: string): number {
    return this.msgs()
      .split('\n')
      .filter((l) => l.startsWith(direction) && l.includes(what)).length;
  }

  /**
   * For a failure's message: the system call s_client waits in (from /proc: 0 is read(), 23
   * select(), 270 pselect6(), with its descriptor), the -msg tail and stdout's tail.
   */
  state(): string {
    let call: string;
    try {
      call = readFileSync(`/proc/${this.child.pid}/syscall`, 'latin1').split(' ').slice(0, 2).join(' ');
    } catch {
      call = `none (exit ${this.child.exitCode})`;
    }
    const msgs = this.msgs().split('\n').slice(-12).join('\n');
    return `s_client in syscall ${call}, ${this.tildes} '~' read\n-msg tail:\n${msgs}\nout tail:\n${this.out().slice(-800)}`;
  }

  /** Records sent so far (each one's header line). */
  recordsSent(): number {
    return this.count('>>>', 'RecordHeader');
  }

  async connected(): Promise<void> {
    await until(() => this.out().includes('Verify return code'));
    expect(this.out()).toContain('Verify return code');
  }

  /** Types `text` (one read of stdin: one record) and waits until s_client sent it. */
  async type(text: string): Promise<void> {
    const before = this.recordsSent();
    this.child.stdin!.write(text);
    await until(() => this.recordsSent() > before);
    expect(this.recordsSent()).toBeGreaterThan(before);
  }

  /**
   * Sends a KeyUpdate (`K`: update_requested, `k`: not); with `answered`, waits for loch's own
   * KeyUpdate in answer.
   */
  async keyUpdate(command: 'k' | 'K', answered = command === 'K'): Promise<void> {
    const sent = this.count('>>>', 'KeyUpdate');
    const got = this.count('<<<', 'KeyUpdate');
    this.child.stdin!.write(`${command}\n`);
    await until(() => this.count('>>>', 'KeyUpdate') > sent);
    expect(this.count('>>>', 'KeyUpdate')).toBe(sent + 1);
    if (!answered) return;
    await until(() => this.count('<<<', 'KeyUpdate') > got);
    expect(this.count('<<<', 'KeyUpdate')).toBe(got + 1);
  }

  /** Sends a GET and waits for its answer (`ok <path>` from the upstream). */
  async exchange(path: string): Promise<void> {
    const from = this.out().length;
    await this.type(`GET ${path} HTTP/1.1\nHost: localhost\n\n`);
    await until(() => this.out().includes(`ok ${path}`, from));
    expect(this.out().slice(from)).toContain(`ok ${path}`);
  }

  /** Ends stdin (s_client sends close_notify and exits). */
  async quit(): Promise<void> {
    this.child.stdin!.end();
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(killer);
  }
}

/**
 * A TCP relay to loch whose loch-to-client direction can be stopped (it stops reading loch's
 * socket: loch's sends then wait, its answer queues inside it) while the client's bytes still pass.
 *
 * It passes loch's bytes in whole TLS records only, so it stops at a record's end: s_client reads
 * stdin only when its socket has nothing to read (the socket's branch comes first in its loop), and
 * with part of a record buffered (SSL_has_pending() counts an unprocessed partial record) it skips
 * select() and blocks in read() for the rest, deaf to stdin. Stopped mid-record, a `K` typed after
 * the stop was read only if s_client had caught up with the relay at a record's end before, which
 * a loaded machine does not do (session 39's CI).
 */
async function stallingRelay(target: number) {
  let toLoch: net.Socket | undefined;
  let toClient: net.Socket | undefined;
  /** Loch's bytes read and not yet passed: a partial record, or whatever came after the stop. */
  let held: Buffer = Buffer.alloc(0);
  let down = 0;
  let up = 0;
  let stallAt = Number.POSITIVE_INFINITY;
  /** Passes the whole records held, up to the first record's end at or after stallAt. */
  function pass(): void {
    let at = 0;
    while (down + at < stallAt && held.byteLength - at >= 5) {
      const end = at + 5 + held.readUInt16BE(at + 3);
      if (end > held.byteLength) break;
      at = end;
    }
    if (at > 0) {
      toClient?.write(held.subarray(0, at));
      down += at;
      held = held.subarray(at);
    }
    if (down >= stallAt) toLoch?.pause();
  }
  const server = net.createServer((client) => {
    client.on('error', () => {});
    const loch = net.connect(target, '127.0.0.1');
    toLoch = loch;
    toClient = client;
    loch.on('error', () => client.destroy());
    client.on('data', (d: Buffer) => {
      up += d.byteLength;
      loch.write(d);
    });
    loch.on('data', (d: Buffer) => {
      held = held.byteLength === 0 ? d : Buffer.concat([held, d]);
      pass();
    });
    client.on('end', () => loch.end());
    loch.on('end', () => client.end(held));
    client.on('close', () => loch.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    /** Stops passing loch's bytes at the first record's end at or after `bytes`. */
    stallAfter(bytes: number) {
      stallAt = bytes;
    },
    stalled: () => toLoch?.isPaused() === true,
    resume() {
      stallAt = Number.POSITIVE_INFINITY;
      pass();
      toLoch?.resume();
    },
    /** The client's bytes passed to loch, all of them written to its socket. */
    upFlushed: () => toLoch !== undefined && toLoch.writableLength === 0,
    sentUp: () => up,
    /** For a failure's message: what passed each way, what is held, whether loch is unread. */
    state: () =>
      `relay: up ${up}, down ${down}, held ${held.byteLength}, loch paused ${toLoch?.isPaused()}, ` +
      `to client unflushed ${toClient?.writableLength}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

type Counts = TakeoverCounts;

describe.each(drivers)("Loch's record layer against foreign TLS peers on the %s driver", (driver) => {
  let loch: Loch;
  let upstream: Awaited<ReturnType<typeof httpUpstream>>;
  let dir: string;
  /** HTTPS servers: `own` on Loch's record layer, `ossl` on OpenSSL's (the same routes). */
  let own: number;
  let ossl: number;
  /** `own` with client certificates required and forwarded (x-forwarded-client-cert). */
  let mtls: number;
  /** What loch forwards for the client certificate: Hash=<SHA-256 of its DER>;Subject=... */
  let clientIdentity: string;
  let admin: number;
  let baseline: number;

  beforeAll(async () => {
    dir = tempDir('loch-own-records-peers-');
    selfSignedCertificate(dir, 'front', ['localhost']);
    const client = selfSignedCertificate(dir, 'client', ['loch-client']);
    const der = new X509Certificate(readFileSync(client.chain)).raw;
    clientIdentity = `Hash=${createHash('sha256').update(der).digest('hex')};Subject="CN=loch-client"`;
    upstream = await httpUpstream((req, res) => {
      if (req.url === '/echo') {
        // The body's length and SHA-256 (hex).
        const hash = createHash('sha256');
        let length = 0;
        req.on('data', (d: Buffer) => {
          hash.update(d);
          length += d.byteLength;
        });
        req.on('end', () => res.end(`${length} ${hash.digest('hex')}`));
      } else if (req.url === '/xfcc') {
        res.end(`xfcc=${req.headers['x-forwarded-client-cert'] ?? '-'}`);
      } else if (req.url === '/big') {
        res.writeHead(200, { 'content-length': BIG });
        res.end(Buffer.alloc(BIG, 0x7e));
      } else {
        req.resume();
        res.end(`ok ${req.url}`);
      }
    });
    [own, ossl, mtls, admin] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const server = (name: string, port: number, records: string, more = '') => `
[servers.${name}]
listener = { type = "socket", value = "127.0.0.1:${port}" }
timeouts = { upstream_read = "30s" }
# No idle upstream connection kept: loch's descriptors come back to the baseline whichever
# requests overlapped (healthy()).
upstream_keepalive = 0
tls = { chain = "front.pem", key = "front.key", records = "${records}"${more} }

[[servers.${name}.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream.port}" }]
`;
    loch = await startLoch(
      dir,
      `
log = { access = false }
[runtime]
workers = 1

[admin]
listener = { type = "socket", value = "127.0.0.1:${admin}" }
${server('own', own, 'loch')}
${server('ossl', ossl, 'openssl')}
${server('mtls', mtls, 'loch', ', client_ca = "client.pem", client_certificate = "required", forward_client_certificate = true')}
`,
      { LOCH_DRIVER: driver },
    );
    // One exchange first (anything loch opens once, on first use, is in the baseline), then its
    // upstream connection closed.
    const fresh = loch.fdCount();
    await python('upload', own, '1.3', 10, 10);
    await until(() => loch.fdCount() <= fresh, 5000);
    baseline = loch.fdCount();
  }, 60_000);
  afterAll(async () => {
    await loch?.stop();
    await upstream?.close();
  });

  /** The worker's take-over counts for `server` (default `own`), from loch's /stats. */
  function takeovers(server = 'own'): Promise<Counts> {
    return tlsTakeovers(admin, server);
  }

  /** Only the connections ended: no worker replaced, no descriptor kept, nothing crashed. */
  async function healthy(): Promise<void> {
    await until(() => loch.fdCount() <= baseline);
    expect(loch.fdCount()).toBeLessThanOrEqual(baseline);
    const metrics = await get(admin, '/metrics');
    expect(metrics).toMatch(/^loch_worker_restarts_total 0$/m);
    expect(loch.stderr()).not.toMatch(/crashed|uncaught|unhandled/i);
    expect(loch.child.exitCode).toBe(null);
  }

  it('follows KeyUpdates from openssl s_client (k and K): between requests, 20 in a row, inside a body', async () => {
    const before = await takeovers();
    const s = new SClient(own, join(dir, `msg-keys-${driver}.txt`), ['-tls1_3']);
    try {
      await s.connected();
      await s.exchange('/a');
      await s.keyUpdate('k');
      await s.exchange('/b');
      await s.keyUpdate('K');
      await s.exchange('/c');
      // 20 in a row while loch sends nothing: RFC 8446 4.6.3 lets a silent receiver answer
      // several requests with one update, but one must come before its next application data.
      const answered = s.count('<<<', 'KeyUpdate');
      for (let i = 0; i < 20; i++) await s.keyUpdate(i % 2 === 0 ? 'K' : 'k', false);
      await s.exchange('/d');
      const run = s.count('<<<', 'KeyUpdate') - answered;
      expect(run).toBeGreaterThanOrEqual(1);
      expect(run).toBeLessThanOrEqual(10);
      // An upload whose body crosses two key changes of the client's and one of loch's.
      const line = 'q'.repeat(1000);
      const body = `${line}\r\n`.repeat(3);
      const sha = createHash('sha256').update(body).digest('hex');
      const from = s.out().length;
      await s.type(`POST /echo HTTP/1.1\nHost: localhost\nContent-Length: ${body.length}\n\n`);
      await s.type(`${line}\n`);
      await s.keyUpdate('K');
      await s.type(`${line}\n`);
      await s.keyUpdate('k');
      await s.type(`${line}\n`);
      await until(() => s.out().includes(sha, from));
      expect(s.out().slice(from)).toContain(`${body.length} ${sha}`);
      expect(s.count('>>>', 'KeyUpdate')).toBe(24);
      expect(s.count('<<<', 'KeyUpdate')).toBe(run + 2);
      expect(s.msgs()).not.toMatch(/^<<< .*Alert/m);
    } finally {
      await s.quit();
    }
    expect(s.out()).toContain('Protocol  : TLSv1.3');
    expect(await takeovers()).toEqual({ loch: before.loch + 1, declined: before.declined });
    await healthy();
  }, 60_000);

  it("answers a KeyUpdate that arrives while loch's answer waits behind a stalled reader, the answer whole", async () => {
    const before = await takeovers();
    const relay = await stallingRelay(own);
    const s = new SClient(relay.port, join(dir, `msg-stall-${driver}.txt`), ['-tls1_3']);
    try {
      await s.connected();
      relay.stallAfter(1 << 20);
      await s.type('GET /big HTTP/1.1\nHost: localhost\n\n');
      await until(relay.stalled);
      expect(relay.stalled()).toBe(true);
      // The KeyUpdate reaches loch while most of /big still waits inside it (records under the
      // old key): its own KeyUpdate must go out after those, the rest under the new key. s_client
      // reads the `K` once it has read all the relay passed (whole records: see stallingRelay).
      const up = relay.sentUp();
      const sent = s.count('>>>', 'KeyUpdate');
      s.child.stdin!.write('K\n');
      await until(() => s.count('>>>', 'KeyUpdate') > sent && relay.sentUp() > up && relay.upFlushed());
      expect(relay.sentUp(), `${relay.state()}\n${s.state()}`).toBeGreaterThan(up);
      // Only how much of /big is still inside loch when it reads the KeyUpdate depends on this
      // pause (not the outcome: the assertions hold whenever it is read).
      await new Promise((r) => setTimeout(r, 300));
      relay.resume();
      await until(() => s.tildes >= BIG || s.child.exitCode !== null, 60_000);
      expect(s.tildes, `${relay.state()}\n${s.state()}`).toBe(BIG);
      await until(() => s.count('<<<', 'KeyUpdate') > 0);
      expect(s.count('<<<', 'KeyUpdate')).toBe(1);
      expect(s.msgs()).not.toMatch(/^<<< .*Alert/m);
      // The connection still carries requests, under the new keys both ways.
      await s.exchange('/after-stall');
    } finally {
      await s.quit();
      await relay.close();
    }
    expect(await takeovers()).toEqual({ loch: before.loch + 1, declined: before.declined });
    await healthy();
  }, 120_000);

  it("carries a 1 MiB upload from Python's ssl whole, in 16 KiB and in 1,000-byte records; TLS 1.2 stays on OpenSSL", async () => {
    const before = await takeovers();
    type Upload = { version: string; status: number; body: string; sha: string; size: number };
    for (const chunk of [16384, 1000]) {
      const r = await python<Upload>('upload', own, '1.3', 1 << 20, chunk);
      expect(r).toMatchObject({ version: 'TLSv1.3', status: 200, body: `${1 << 20} ${r.sha}` });
    }
    const after = await takeovers();
    expect(after).toEqual({ loch: before.loch + 2, declined: before.declined });
    const old = await python<Upload>('upload', own, '1.2', 1 << 20, 1000);
    expect(old).toMatchObject({ version: 'TLSv1.2', status: 200, body: `${1 << 20} ${old.sha}` });
    expect(await takeovers()).toEqual(after);
    await healthy();
  }, 120_000);

  it("answers Python's pipelined requests in order, sent whole and cut into 7-byte records", async () => {
    const before = await takeovers();
    const count = 40;
    for (const split of [0, 7]) {
      const r = await python<{ version: string; answers: [number, string][]; shas: Record<string, string> }>(
        'pipeline',
        own,
        count,
        split,
      );
      expect(r.version).toBe('TLSv1.3');
      const expected = Array.from({ length: count }, (_, i) =>
        i % 10 === 5 ? [200, `${20000 + i} ${r.shas[String(i)]}`] : [200, `ok /p/${i}`],
      );
      expect(r.answers).toEqual(expected);
    }
    expect(await takeovers()).toEqual({ loch: before.loch + 2, declined: before.declined });
    await healthy();
  }, 120_000);

  it("forwards a Python client's verified certificate on every request of a connection Loch's records carry", async () => {
    // The identity is read after the take-over (OpenSSL's SSL is freed there), per request.
    const before = await takeovers('mtls');
    const client = { cert: join(dir, 'client.pem'), key: join(dir, 'client.key') };
    const r = await python<{ version: string; answers: [number, string][] }>(
      'mtls',
      mtls,
      client.cert,
      client.key,
      3,
    );
    expect(r.version).toBe('TLSv1.3');
    // Each request's own claim is dropped; the verified identity goes up instead, on all three.
    expect(r.answers).toEqual(Array.from({ length: 3 }, () => [200, `xfcc=${clientIdentity}`]));
    expect(await takeovers('mtls')).toEqual({ loch: before.loch + 1, declined: before.declined });
    await healthy();
  }, 60_000);

  it('treats close_notify after a request, the socket left open, as OpenSSL records do; bytes after it ignored', async () => {
    type Half = { version: string; answer: string; closeNotify: boolean; eof: boolean; error: string | null };
    const before = await takeovers();
    for (const trailer of [0, 1]) {
      const mine = await python<Half>('close-notify', own, `/half-${trailer}`, trailer);
      const theirs = await python<Half>('close-notify', ossl, `/half-${trailer}`, trailer);
      // Loch closes the connection itself (close_notify, then its FIN), with no error and no wait.
      expect(mine).toMatchObject({ version: 'TLSv1.3', closeNotify: true, eof: true, error: null });
      expect(mine).toEqual(theirs);
    }
    expect(await takeovers()).toEqual({ loch: before.loch + 2, declined: before.declined });
    await healthy();
  }, 60_000);

  it('refuses TLS 1.2 renegotiation (s_client R) with records = "loch": still OpenSSL, no take-over', async () => {
    const before = await takeovers();
    const s = new SClient(own, join(dir, `msg-reneg-${driver}.txt`), ['-tls1_2']);
    try {
      await s.connected();
      s.child.stdin!.write('R\n');
      await until(() => /no renegotiation|handshake failure/i.test(s.out()));
    } finally {
      await s.quit();
    }
    expect(s.out()).toContain('Protocol  : TLSv1.2');
    expect(s.out()).toContain('RENEGOTIATING');
    expect(s.out()).toMatch(/:no renegotiation:/);
    expect(await takeovers()).toEqual(before);
    await healthy();
  }, 60_000);
});
