/**
 * `loch run` pseudonymizing Thrift calls (issue 19), end to end on every available driver:
 * npm thrift clients (framed binary, and framed compact transcoded to a binary upstream) and a
 * python3-thrift client in front of an npm thrift server that echoes what it received. A
 * server with `direction = "upstream"` sends tokens upstream (the echo shows the upstream saw a
 * token, which opens to the value with the same key); one with `direction = "downstream"`
 * opens clients' tokens (also those of an older, still-kept key id: rotation) and seals a
 * reply field. A malformed token, a token of an unknown key id or of another field is a
 * TApplicationException PROTOCOL_ERROR naming the argument and never reaches the upstream;
 * methods without chosen fields pass untouched. `loch check` shows the table without any key
 * and refuses an unknown field path or an unset key variable by name.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pseudonymizer, PseudonymKeyring } from '@loch/gateway';
import { type TApplicationException, TApplicationExceptionType } from '@loch/thrift';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPython, NpmClient, type NpmUpstream, npmUpstream, pythonClient } from '../thrift/peers.js';
import {
  availableDrivers,
  freePort,
  type Loch,
  lochArgs,
  PROXY_DIR,
  startLoch,
  tempDir,
  waitConnectable,
} from './harness.js';

const drivers = availableDrivers();
const k1 = Buffer.alloc(64, 0x11);
const k2 = Buffer.alloc(64, 0x22);
const k9 = Buffer.alloc(64, 0x99);
const ENV = 'LOCH_TEST_PSEUDONYM_K2';
const IDL = `
service Echo {
  string echo(1: string text)
  string reply(1: string text)
  string plain(1: string text)
}
`;
/** The same keys as loch's (k2 current, k1 kept) and a stranger's. */
const ours = new Pseudonymizer(
  new PseudonymKeyring(
    [
      { id: 'k2', key: k2 },
      { id: 'k1', key: k1 },
    ],
    'k2',
  ),
);
const old = new Pseudonymizer(new PseudonymKeyring([{ id: 'k1', key: k1 }]));
const stranger = new Pseudonymizer(new PseudonymKeyring([{ id: 'k9', key: k9 }]));
const ECHO = 'Echo.echo.args.text';

function config(upPort: number, downPort: number, upstream: number, adminPort = 0): string {
  const route = `route = { upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:${upstream}" } }], upstream_protocol = "binary" }`;
  const keys = `keys = [{ id = "k2", env = "${ENV}" }, { id = "k1", file = "k1.key" }], current = "k2"`;
  return `
[runtime]
workers = 1
${adminPort === 0 ? '' : `\n[admin]\nlistener = { type = "socket", value = "127.0.0.1:${adminPort}" }\n`}
[servers.up]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:${upPort}" }
${route}
pseudonymize = { idl = "echo.thrift", direction = "upstream", ${keys}, fields = ["${ECHO}"] }

[servers.down]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:${downPort}" }
${route}
pseudonymize = { idl = "echo.thrift", direction = "downstream", ${keys}, fields = ["${ECHO}", { path = "Echo.reply.result.success", domain = "replies" }] }
`;
}

function writeFixtures(dir: string): void {
  writeFileSync(join(dir, 'echo.thrift'), IDL);
  writeFileSync(join(dir, 'k1.key'), `${k1.toString('hex')}\n`);
}

/**
 * The tests' timeout, a liveness bound above their longest waits: until()'s 30 s, and the reload
 * test's three reloads (loch.waitFor, 15 s each). The default 20 s was below both.
 */
const LIVENESS = { timeout: 60_000 };

async function until(ok: () => boolean): Promise<void> {
  // Up to 30 s: a state waited for, however late the machine (it is usually there at once).
  for (let i = 0; i < 3000 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(ok()).toBe(true);
}

async function refused(call: Promise<unknown>): Promise<TApplicationException> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(Error);
  return error as TApplicationException;
}

describe.each(drivers)('loch pseudonymizing thrift calls (driver %s)', LIVENESS, (driver) => {
  let upstream: NpmUpstream;
  let loch: Loch;
  let up: number;
  let down: number;
  let admin: number;
  const clients: NpmClient[] = [];

  beforeAll(async () => {
    upstream = await npmUpstream('a', 'binary');
    up = await freePort();
    down = await freePort();
    admin = await freePort();
    const dir = tempDir('loch-thrift-pseudonym-');
    writeFixtures(dir);
    loch = await startLoch(dir, config(up, down, upstream.port, admin), {
      LOCH_DRIVER: driver,
      [ENV]: k2.toString('base64'),
    });
    await waitConnectable({ port: up });
    await waitConnectable({ port: down });
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await loch?.stop();
    await upstream?.close();
  });

  async function client(port: number, protocol: 'binary' | 'compact'): Promise<NpmClient> {
    const c = await NpmClient.connect(port, protocol);
    clients.push(c);
    return c;
  }

  for (const protocol of ['binary', 'compact'] as const) {
    it(`direction upstream (${protocol}): the upstream sees a token of the current key`, async () => {
      const c = await client(up, protocol);
      const answer = await c.call('echo', 'alice@example.com');
      const [name, method, token] = answer.split(':');
      expect([name, method]).toEqual(['a', 'echo']);
      expect(token).toMatch(/^pn1\.k2\./);
      expect(ours.reveal(ECHO, token as string)).toBe('alice@example.com');
      // Deterministic: the same value, the same token.
      expect(await c.call('echo', 'alice@example.com')).toBe(answer);
      // Methods without chosen fields pass as they are.
      expect(await c.call('plain', 'alice@example.com')).toBe('a:plain:alice@example.com');
    });

    it(`direction downstream (${protocol}): clients' tokens open, also an older key's; a reply field is sealed`, async () => {
      const c = await client(down, protocol);
      expect(await c.call('echo', ours.pseudonymize(ECHO, 'bob'))).toBe('a:echo:bob');
      expect(await c.call('echo', old.pseudonymize(ECHO, 'carol'))).toBe('a:echo:carol');
      const sealed = await c.call('reply', 'x');
      expect(sealed).toMatch(/^pn1\.k2\./);
      expect(ours.reveal('replies', sealed)).toBe('a:reply:x');
    });

    it(`bad tokens (${protocol}) are a PROTOCOL_ERROR naming the argument and never reach the upstream`, async () => {
      const c = await client(down, protocol);
      const token = ours.pseudonymize(ECHO, 'bob');
      const last = token.at(-1) === 'A' ? 'B' : 'A';
      const cases: [string, string][] = [
        ['bob', 'ERR_PSEUDONYM_TOKEN'], // not a token
        [token.replace('pn1.', 'pn2.'), 'ERR_PSEUDONYM_TOKEN'], // malformed
        [token.slice(0, -1) + last, 'ERR_PSEUDONYM_INVALID'], // changed
        [stranger.pseudonymize(ECHO, 'bob'), 'ERR_PSEUDONYM_UNKNOWN_KEY'], // a key loch does not have
        [ours.pseudonymize('Echo.plain.args.text', 'bob'), 'ERR_PSEUDONYM_INVALID'], // another field's
      ];
      for (const [text, code] of cases) {
        const x = await refused(c.call('echo', text));
        expect((x as unknown as { type: number }).type).toBe(TApplicationExceptionType.PROTOCOL_ERROR);
        expect(x.message).toContain('args.text');
        expect(x.message).toContain(code);
        expect(x.message).not.toContain(text);
      }
      // Each refusal is logged with the field and the code, never the value.
      await loch.waitFor(
        /down: echo: loch: pseudonymization refused the call: args\.text: .*ERR_PSEUDONYM_UNKNOWN_KEY/,
      );
      expect(loch.stderr()).not.toContain(stranger.pseudonymize(ECHO, 'bob'));
      // The connection still serves.
      expect(await c.call('echo', ours.pseudonymize(ECHO, 'dan'))).toBe('a:echo:dan');
      // A oneway call has no answer to carry the refusal: it is dropped, never forwarded as is.
      c.oneway('echo', `not-a-token-${protocol}`);
      c.oneway('echo', ours.pseudonymize(ECHO, `oneway-${protocol}`));
      await until(() => upstream.oneways.includes(`oneway-${protocol}`));
      expect(upstream.oneways).not.toContain(`not-a-token-${protocol}`);
    });
  }

  it('refused calls are counted in loch_gateway_refusals_total by server and reason', async () => {
    const text = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
    const refusals = (server: string, reason: string) =>
      Number(
        text
          .split('\n')
          .find((l) => l.startsWith(`loch_gateway_refusals_total{server="${server}",reason="${reason}"}`))
          ?.split(' ')
          .pop(),
      );
    // Per protocol, the five bad tokens and the oneway one of the test above.
    expect(refusals('down', 'pseudonym_request')).toBe(12);
    expect(refusals('down', 'pseudonym_reply')).toBe(0);
    expect(refusals('up', 'pseudonym_request')).toBe(0);
  });

  it('a reload that makes k1 current seals with it; one without pseudonymize forwards values', async () => {
    const c = await client(up, 'binary');
    expect((await c.call('echo', 'fay')).split(':')[2]).toMatch(/^pn1\.k2\./);
    let mark = loch.stderr().length;
    writeFileSync(
      loch.configPath,
      config(up, down, upstream.port, admin).replaceAll('current = "k2"', 'current = "k1"'),
    );
    await loch.waitFor(/reloaded/, mark);
    const token = (await c.call('echo', 'fay')).split(':')[2] as string;
    expect(token).toMatch(/^pn1\.k1\./);
    expect(old.reveal(ECHO, token)).toBe('fay');
    mark = loch.stderr().length;
    writeFileSync(
      loch.configPath,
      config(up, down, upstream.port, admin).replace(/^pseudonymize = .*direction = "upstream".*$/m, ''),
    );
    await loch.waitFor(/reloaded/, mark);
    expect(await c.call('echo', 'fay')).toBe('a:echo:fay');
    // Back as it was for the tests that follow.
    mark = loch.stderr().length;
    writeFileSync(loch.configPath, config(up, down, upstream.port, admin));
    await loch.waitFor(/reloaded/, mark);
  });

  it.skipIf(!hasPython)('a python3-thrift client (framed binary and compact)', async () => {
    for (const protocol of ['binary', 'compact'] as const) {
      const lines = await pythonClient(up, 'framed', protocol, 'echo', ['erin']);
      const token = (lines[0] as string).split(':')[2] as string;
      expect(ours.reveal(ECHO, token)).toBe('erin');
      const bad = await pythonClient(down, 'framed', protocol, 'echo', ['erin']);
      expect(bad[0]).toMatch(
        new RegExp(`^EXCEPTION ${TApplicationExceptionType.PROTOCOL_ERROR} .*args\\.text`),
      );
    }
  });
});

// Each check starts a node with tsx compiling the proxy's TypeScript: seconds each on a loaded CI.
describe('loch check with pseudonymize', LIVENESS, () => {
  const dir = tempDir('loch-thrift-pseudonym-check-');
  writeFixtures(dir);
  const check = (text: string, env: Record<string, string> = {}) => {
    const file = join(dir, `c${Math.random().toString(36).slice(2)}.toml`);
    writeFileSync(file, text);
    return spawnSync(process.execPath, lochArgs('check', '-c', file), {
      cwd: PROXY_DIR,
      encoding: 'utf8',
      env: { ...process.env, ...env },
    });
  };

  it('shows where the keys are, never the keys', () => {
    const ok = check(config(1, 2, 3), { [ENV]: k2.toString('base64') });
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`"env": "${ENV}"`);
    expect(ok.stdout).toContain('"current": "k2"');
    expect(ok.stdout).toContain('"Echo.echo"');
    expect(ok.stdout).not.toContain(k1.toString('hex'));
    expect(ok.stdout).not.toContain(k2.toString('base64'));
    expect(ok.stdout + ok.stderr).not.toContain('IiIi'); // base64 of 0x22 bytes
  });

  it('refuses an unknown field path, an unset key variable, a bad key file, by name', () => {
    const bad = check(config(1, 2, 3).replace(`"${ECHO}"]`, '"Echo.echo.args.txet"]'), {
      [ENV]: k2.toString('base64'),
    });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('servers.up.pseudonymize.fields');
    expect(bad.stderr).toContain('"txet" is not a field of echo\'s arguments');
    const unset = check(config(1, 2, 3), {});
    expect(unset.status).not.toBe(0);
    expect(unset.stderr).toContain(`environment variable ${ENV} is not set`);
    writeFileSync(join(dir, 'short.key'), 'abcd');
    const short = check(config(1, 2, 3).replaceAll('k1.key', 'short.key'), {
      [ENV]: k2.toString('base64'),
    });
    expect(short.status).not.toBe(0);
    expect(short.stderr).toMatch(/pseudonym key "k1" \(file .*short\.key\): not 32, 48 or 64 bytes/);
    expect(short.stderr).not.toContain('abcd');
  });
});
