/**
 * `loch run` reads its config in a short-lived thread (isolated-load.ts): what comes back must be
 * what loading in the thread itself gives (the config the workers get, the files a reload
 * watches), and a bad file must fail the same way, with every issue and where it is.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { describeConfig } from '../cli.js';
import { selfSignedCertificate } from '../demo-certificate.js';
import { gatewayFiles } from '../gateway/config.js';
import { ConfigError } from './config-error.js';
import { loadConfigIsolated } from './isolated-load.js';
import { loadConfigFile } from './load.js';
import { tlsFiles } from './tls.js';

const dir = mkdtempSync(join(tmpdir(), 'loch-isolated-load-'));
const monolake = fileURLToPath(new URL('../../test/monolake.toml', import.meta.url));

/** The error loading `file` here throws. */
async function failureHere(file: string): Promise<ConfigError> {
  const error = await loadConfigFile(file).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return error as ConfigError;
}

describe('loadConfigIsolated', () => {
  it('gives the config that loading here gives, and no files for a config that reads none', async () => {
    const loaded = await loadConfigIsolated(monolake);
    expect(loaded.config).toEqual(await loadConfigFile(monolake));
    expect(loaded.files).toEqual([]);
  });

  it('gives the certificate, key and IDL files a reload watches (the config as loaded here)', async () => {
    const cert = selfSignedCertificate(dir, 'iso');
    writeFileSync(join(dir, 'user.thrift'), 'service UserService {\n  string getUser(1: i64 id)\n}\n');
    const file = join(dir, 'tls-gateway.toml');
    writeFileSync(
      file,
      `
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8443" }
tls = { chain = "${cert.chain}", key = "${cert.key}" }

[[servers.web.routes]]
path = "/users/{id}"
thrift = { idl = "user.thrift", service = "UserService", method = "getUser", upstream = { type = "socket", value = "127.0.0.1:9090" } }
`,
    );
    const here = await loadConfigFile(file);
    const loaded = await loadConfigIsolated(file);
    // Equal but for the ticket keys, which each load makes afresh (redacted in the text).
    expect(describeConfig(loaded.config)).toEqual(describeConfig(here));
    expect(loaded.config.servers[0]!.tls!.ticketKeys).toBeInstanceOf(Uint8Array);
    expect(loaded.files).toEqual([...tlsFiles(here), ...gatewayFiles(here)]);
    expect(loaded.files).toEqual([cert.chain, cert.key, join(dir, 'user.thrift')]);
  });

  it.each([
    [
      'a schema problem',
      'bad-key.toml',
      '[servers.web]\nlistener = { type = "socket", value = "nowhere" }\nbogus = 1\n',
    ],
    ['TOML syntax', 'syntax.toml', '[servers.web\nlistener = 1\n'],
  ])(
    'fails on %s with the ConfigError loading here throws (every issue, where it is)',
    async (_what, name, text) => {
      const file = join(dir, name);
      writeFileSync(file, text);
      const expected = await failureHere(file);
      const error = await loadConfigIsolated(file).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).message).toBe(expected.message);
      expect((error as ConfigError).issues).toEqual(expected.issues);
      expect((error as ConfigError).source).toBe(file);
    },
  );

  it('fails on a file it cannot read with the ConfigError loading here throws', async () => {
    const file = join(dir, 'missing.toml');
    const expected = await failureHere(file);
    await expect(loadConfigIsolated(file)).rejects.toThrow(expected.message);
    await expect(loadConfigIsolated(file)).rejects.toBeInstanceOf(ConfigError);
  });

  it('reads the config when node was started with flags Node refuses in a thread (from sources)', () => {
    // From sources the thread needs the @loch/source condition, so it gets an explicit execArgv,
    // which Node refuses with V8 flags in it (ERR_WORKER_INVALID_EXEC_ARGV): createWorker drops them.
    const module = JSON.stringify(new URL('./isolated-load.ts', import.meta.url).href);
    const program = `const { loadConfigIsolated } = await import(${module});
      const loaded = await loadConfigIsolated(${JSON.stringify(monolake)});
      console.log(loaded.config.servers.length > 0 ? 'ok' : 'empty');`;
    const out = spawnSync(
      process.execPath,
      ['--max-old-space-size=512', '--import', 'tsx', '--input-type=module', '-e', program],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(out.stderr).not.toContain('invalid execArgv');
    expect(out.stdout.trim()).toBe('ok');
    expect(out.status).toBe(0);
  }, 90_000); // a node + tsx start with a thread: past vitest's 20 s on a loaded CI machine
});
