/**
 * The `loch` command line as a user runs it (src/bin.ts in a child process): --help, --version,
 * `check` on a good file (prints the effective config, exit 0) and on a bad one (every error
 * with its key path, exit 1), and usage errors (exit 2).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SIGNALS } from '../src/cli.js';
import { lochArgs, PROXY_DIR } from './e2e/harness.js';

function loch(...args: string[]) {
  const r = spawnSync(process.execPath, lochArgs(...args), {
    cwd: PROXY_DIR,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('loch CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'loch-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prints usage with --help and the version with --version', () => {
    const help = loch('--help');
    expect(help.code).toBe(0);
    expect(help.out).toContain('loch run   -c <config.toml|config.json>');
    const version = loch('--version');
    expect(version.code).toBe(0);
    const pkg = JSON.parse(readFileSync(join(PROXY_DIR, 'package.json'), 'utf8')) as { version: string };
    expect(version.out).toBe(`loch ${pkg.version}\n`);
  });

  it('--help lists every signal loch run acts on, what each does, and the environment', () => {
    const help = loch('--help').out;
    for (const [signal, effect] of SIGNALS) expect(help).toContain(`  ${signal.padEnd(18)}${effect}`);
    for (const signal of ['SIGHUP', 'SIGTERM', 'SIGINT', 'SIGUSR1', 'SIGUSR2', 'SIGURG', 'SIGQUIT'])
      expect(help).toMatch(new RegExp(`^  ${signal}\\b|, ${signal} `, 'm'));
    for (const env of ['LOCH_DRIVER', 'LOCH_LOG', 'LOCH_IDLE_TRIM_MS', 'LOCH_DEBUG_CRASH_WORKER'])
      expect(help).toContain(env);
    expect(help).toContain('proxy_protocol, upstream');
  });

  it('check warns about an access-log file that could not be opened here', () => {
    const file = join(dir, 'access-log.toml');
    writeFileSync(
      file,
      `[servers.web]
listener = { type = "socket", value = "127.0.0.1:8080" }
access_log = { path = "no-such-dir/access.log", format = "json" }
routes = [{ path = "/", upstreams = [{ endpoint = "http://127.0.0.1:9000" }] }]
`,
    );
    const r = loch('check', '-c', file);
    expect(r.code).toBe(0);
    expect(r.err).toContain(
      `loch check: warning: access log ${join(dir, 'no-such-dir/access.log')} cannot be written here (ENOENT)`,
    );
    expect(r.out).toContain('"accessLogOutput"');
  });

  it('check warns about an admin listener other hosts can reach, as loch run does', () => {
    const file = join(dir, 'admin-exposed.toml');
    const body = (host: string) => `[admin]
listener = { type = "socket", value = "${host}:9901" }
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8080" }
routes = [{ path = "/", upstreams = [{ endpoint = "http://127.0.0.1:9000" }] }]
`;
    writeFileSync(file, body('0.0.0.0'));
    const exposed = loch('check', '-c', file);
    expect(exposed.code).toBe(0);
    expect(exposed.err).toContain(
      'loch check: warning: admin listener on 0.0.0.0:9901 is reachable from other hosts',
    );
    writeFileSync(file, body('127.0.0.1'));
    const loopback = loch('check', '-c', file);
    expect(loopback.code).toBe(0);
    expect(loopback.err).not.toContain('admin listener');
  });

  it('check prints the effective config of a valid file (Monolake spelling) and exits 0', () => {
    const r = loch('check', '-c', join(PROXY_DIR, 'test/monolake.toml'));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/monolake\.toml: ok\n$/);
    const json = JSON.parse(r.out.slice(0, r.out.lastIndexOf('}') + 1)) as {
      runtime: { workers: number; driver: string };
      servers: { key: string }[];
    };
    expect(json.runtime).toMatchObject({ workers: 2, driver: 'uring' });
    expect(json.servers.map((s) => s.key)).toEqual(['demo_http', 'demo_uds']);
  });

  it('check lists every error with its location and exits 1 (TOML and JSON)', () => {
    const bad = join(dir, 'bad.toml');
    writeFileSync(
      bad,
      '[runtime]\nworkerz = 2\n[servers.web]\nlistener = { type = "socket", value = "nowhere" }\n[[servers.web.routes]]\npath = "x"\nupstreams = []\n',
    );
    const r = loch('check', '-c', bad);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toContain(`${bad}: `);
    expect(r.err).toContain('runtime: unknown key "workerz"');
    expect(r.err).toMatch(/servers\.web\.routes\[0\]\.path: /);
    expect(r.err).toMatch(/servers\.web\.routes\[0\]\.upstreams: a route needs at least one upstream/);
    const json = join(dir, 'bad.json');
    writeFileSync(
      json,
      '{ "servers": { "web": { "listener": { "type": "socket", "value": "1.2.3.4:99999" }, "routes": [] } } }',
    );
    const j = loch('check', '-c', json);
    expect(j.code).toBe(1);
    expect(j.err).toMatch(/servers\.web\.listener\.value: /);
    expect(j.err).toMatch(/servers\.web\.routes: a server needs at least one route/);
    const syntax = join(dir, 'syntax.toml');
    writeFileSync(syntax, '[servers\n');
    const s = loch('check', '-c', syntax);
    expect(s.code).toBe(1);
    expect(s.err).toMatch(/line 1, column \d+: TOML syntax/);
  });

  it('run exits 1 and says why when a listener cannot be bound', async () => {
    const { createServer } = await import('node:net');
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    const port = (holder.address() as { port: number }).port;
    const file = join(dir, 'taken.toml');
    writeFileSync(
      file,
      `[runtime]\nworkers = 1\n[servers.web]\nlistener = { type = "socket", value = "127.0.0.1:${port}" }\n[[servers.web.routes]]\npath = "/"\nupstreams = [{ endpoint = "http://127.0.0.1:9" }]\n`,
    );
    try {
      const r = loch('run', '-c', file);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/cannot start: worker 0: .*EADDRINUSE/);
      // one worker fails (worker 0 owns the Unix listener), the other started: all stop, exit 1
      const half = join(dir, 'half.toml');
      writeFileSync(
        half,
        `[runtime]\nworkers = 2\n[servers.web]\nlistener = { type = "socket", value = "127.0.0.1:0" }\n[[servers.web.routes]]\npath = "/"\nupstreams = [{ endpoint = "http://127.0.0.1:9" }]\n[servers.u]\nlistener = { type = "unix", value = "${dir}/missing/x.sock" }\n[[servers.u.routes]]\npath = "/"\nupstreams = [{ endpoint = "http://127.0.0.1:9" }]\n`,
      );
      const h = loch('run', '-c', half);
      expect(h.code).toBe(1);
      expect(h.err).toMatch(/cannot start: worker 0: .*ENOENT/);
    } finally {
      holder.close();
    }
  });

  it('exits 2 on usage errors', () => {
    expect(loch('frobnicate').code).toBe(2);
    expect(loch('check').err).toContain('missing -c');
    expect(loch('--bogus').code).toBe(2);
  });
});

describe('examples/basic.ts', () => {
  it('runs and prints the effective route and the errors of a bad config', () => {
    const r = spawnSync(
      process.execPath,
      ['--conditions=@loch/source', '--import', 'tsx', 'examples/basic.ts'],
      {
        cwd: PROXY_DIR,
        encoding: 'utf8',
        timeout: 30_000,
      },
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(
      'web: /api/{*rest} -> http://127.0.0.1:9001, unix:/run/app.sock (round_robin)',
    );
    expect(r.stdout).toContain('servers.web.listener.value: "nowhere" is not an address');
  });
});
