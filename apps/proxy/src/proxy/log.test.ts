import { mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequest } from '@loch/http';
import { describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../config/load.js';
import { AccessLogFileError } from './access-log.js';
import { ProxyLog, parseLogEnv } from './log.js';

/** A logger at info whose stdout lands in `out` (stderr dropped), its access tick `flushMs`. */
function capturing(flushMs?: number): { log: ProxyLog; out: string[] } {
  const out: string[] = [];
  const log = new ProxyLog(
    'info',
    '',
    (t) => out.push(t),
    () => {},
    flushMs,
  );
  return { log, out };
}

describe('ProxyLog', () => {
  it('buffers access lines and writes them in one call per tick (0 = next turn)', async () => {
    const out: string[] = [];
    const log = new ProxyLog(
      'info',
      'w0: ',
      (t) => out.push(t),
      () => {},
      0,
    );
    for (let i = 0; i < 3; i++) {
      log.access(
        'web',
        { family: 'ipv4', address: '10.1.2.3', port: 4000 + i },
        'GET',
        `/p${i}?q`,
        200,
        12,
        'http://u:1',
        1.234,
      );
    }
    expect(out).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(out).toHaveLength(1);
    const lines = out[0]!.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z web 10\.1\.2\.3:4000 GET \/p0\?q 200 12 http:\/\/u:1 1\.23$/,
    );
  });

  it('gives the time as toISOString does at every millisecond (the second formatted once, ms appended)', () => {
    const log = new ProxyLog(
      'info',
      '',
      () => {},
      () => {},
      0,
    );
    const base = Date.UTC(2026, 11, 4, 17, 30, 59);
    const times = [
      0,
      1,
      999,
      1000,
      1001,
      base,
      base + 7,
      base + 7,
      base + 42,
      base + 999,
      base + 1000,
      base + 1099,
      base + 1100,
      base + 60_000,
      base - 1,
      Date.UTC(9999, 11, 31, 23, 59, 59, 998),
      Date.UTC(9999, 11, 31, 23, 59, 59, 999),
      Date.UTC(10000, 0, 1),
      Date.UTC(10000, 0, 1, 0, 0, 0, 5),
      -1,
      -999,
      -1000,
      -1001,
      base + 5,
    ];
    // The system time the fake timers set (the default clock is the turn clock's).
    log.useClock(() => Date.now());
    vi.useFakeTimers();
    try {
      for (const ms of times) {
        vi.setSystemTime(ms);
        expect(log.now()).toBe(new Date(ms).toISOString());
      }
      for (let ms = base; ms < base + 2500; ms += 7) {
        vi.setSystemTime(ms);
        expect(log.now()).toBe(new Date(ms).toISOString());
      }
    } finally {
      vi.useRealTimers();
    }
  });

  it('stamps access lines with toISOString at every millisecond (the time bytes kept with the clock)', () => {
    const { log, out } = capturing(0);
    const base = Date.UTC(2026, 11, 5, 6, 30, 58, 990);
    const times = [base, base + 1, base + 9, base + 10, base + 99, base + 100, base + 1009, base + 1010];
    for (let ms = base + 2000; ms < base + 4500; ms += 13) times.push(ms);
    // A year past 9999 (no bytes kept: the string is read), then back.
    times.push(Date.UTC(10000, 0, 1, 0, 0, 0, 5), base + 5000, base + 5001);
    // The system time the fake timers set (the default clock is the turn clock's).
    log.useClock(() => Date.now());
    vi.useFakeTimers();
    try {
      for (const ms of times) {
        vi.setSystemTime(ms);
        // Between lines, the ops log's reads of the clock (the same cache) in any order.
        if (ms % 3 === 0) log.now();
        log.access('s', { family: 'unix', path: '/x' }, 'GET', '/', 200, 0, undefined, 0);
        log.flush();
        expect(out.pop()).toBe(`${new Date(ms).toISOString()} s unix GET / 200 0 - 0.00\n`);
      }
    } finally {
      vi.useRealTimers();
    }
  });

  it("stamps access lines with the turn clock's wall time: no Date.now() per line", async () => {
    const { log, out } = capturing(0);
    await new Promise((r) => setImmediate(r));
    const date = vi.spyOn(Date, 'now');
    try {
      const before = date.mock.calls.length;
      for (let i = 0; i < 5; i++)
        log.access('s', { family: 'unix', path: '/x' }, 'GET', '/', 200, 0, undefined, 0);
      expect(date.mock.calls.length - before).toBeLessThanOrEqual(1);
    } finally {
      date.mockRestore();
    }
    log.flush();
    const stamps = out
      .join('')
      .trimEnd()
      .split('\n')
      .map((l) => l.slice(0, 24));
    expect(stamps).toHaveLength(5);
    expect(new Set(stamps).size).toBe(1);
    expect(Math.abs(Date.parse(stamps[0]!) - Date.now())).toBeLessThan(1000);
  });

  it('waits for the coarse tick by default', async () => {
    const { log, out } = capturing();
    log.access('s', { family: 'unix', path: '/x' }, 'GET', '/', 200, 0, undefined, 0);
    await new Promise((r) => setImmediate(r));
    expect(out).toEqual([]);
    await new Promise((r) => setTimeout(r, 120));
    expect(out).toHaveLength(1);
  });

  it('flushes every 256 lines without waiting for the tick, and on flush()', () => {
    const { log, out } = capturing();
    for (let i = 0; i < 300; i++)
      log.access('s', { family: 'unix', path: '/x' }, 'GET', '/', 404, 0, undefined, 0);
    expect(out).toHaveLength(1);
    expect(out[0]!.split('\n')).toHaveLength(257);
    log.access('s', { family: 'unix', path: '/x' }, 'GET', '/', 404, 0, undefined, 0);
    log.flush();
    expect(out).toHaveLength(2);
    expect(out[1]).toMatch(/ s unix GET \/ 404 0 - 0\.00\n$/);
    expect(out[1]!.split('\n')).toHaveLength(46);
  });

  it('filters operational messages by level, to its own output', () => {
    const err: string[] = [];
    const log = new ProxyLog(
      'warn',
      'w1: ',
      () => {},
      (t) => err.push(t),
    );
    log.info('hidden');
    log.debug('hidden');
    log.warn('shown');
    log.error('also');
    log.flush();
    expect(err.join('')).toMatch(/ warn w1: shown\n.* error w1: also\n$/);
    expect(err.join('')).not.toContain('hidden');
    log.level = 'off';
    log.error('nothing');
    log.flush();
    expect(err.join('')).not.toContain('nothing');
  });

  it('module levels: a module follows [log] level unless named; LOCH_LOG overrides both', () => {
    const err: string[] = [];
    const log = new ProxyLog(
      'info',
      'w0: ',
      () => {},
      (t) => err.push(t),
    );
    const tls = log.at('tls');
    const upstream = log.at('upstream');
    expect(log.at('tls')).toBe(tls);
    expect(
      log.configureLevels({ logLevel: 'info', logModules: { tls: 'debug', upstream: 'error' } }, undefined),
    ).toBe(undefined);
    tls.debug('handshake detail');
    upstream.warn('hidden warn');
    upstream.error('upstream down');
    log.debug('hidden debug');
    log.at('accept').info('accept info');
    log.flush();
    const text = err.join('');
    expect(text).toMatch(/ debug w0: \[tls\] handshake detail\n/);
    expect(text).toMatch(/ error w0: \[upstream\] upstream down\n/);
    expect(text).toMatch(/ info w0: \[accept\] accept info\n/);
    expect(text).not.toContain('hidden');
    // LOCH_LOG: the level and one module over the config's.
    err.length = 0;
    log.configureLevels({ logLevel: 'info', logModules: { tls: 'debug' } }, 'warn,upstream=debug');
    tls.debug('now hidden');
    log.info('now hidden too');
    upstream.debug('upstream detail');
    log.flush();
    expect(err.join('')).toMatch(/\[upstream\] upstream detail/);
    expect(err.join('')).not.toContain('hidden');
    // A bad LOCH_LOG is reported and ignored.
    expect(log.configureLevels({ logLevel: 'info' }, 'tls=loud')).toMatch(/"loud" is not a level/);
    expect(log.level).toBe('info');
  });

  it('parses LOCH_LOG', () => {
    expect(parseLogEnv('debug')).toEqual({ level: 'debug', modules: {} });
    expect(parseLogEnv(' info , tls=debug,upstream = warn ')).toEqual({
      level: 'info',
      modules: { tls: 'debug', upstream: 'warn' },
    });
    expect(parseLogEnv('tsl=debug')).toEqual({ error: expect.stringMatching(/"tsl" is not a log module/) });
  });

  it("switches a server's lines to a committed config's output at the next line, and back (the last route is not kept past a commit)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loch-log-'));
    try {
      const configOf = (accessLog: string) =>
        parseConfig(
          `
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8081" }
${accessLog}
routes = [{ path = "/", upstreams = [{ endpoint = "http://127.0.0.1:9000" }] }]
`,
          join(dir, 'loch.toml'),
        );
      const { log, out } = capturing();
      const peer = { family: 'ipv4', address: '10.0.0.2', port: 4444 } as const;
      log.access('web', peer, 'GET', '/stdout-1', 200, 0, undefined, 0);
      log.commitAccess(log.prepareAccess(configOf(`access_log = { path = "${join(dir, 'web.log')}" }`)));
      log.access('web', peer, 'GET', '/file', 200, 0, undefined, 0);
      log.commitAccess(log.prepareAccess(configOf('')));
      log.access('web', peer, 'GET', '/stdout-2', 200, 0, undefined, 0);
      await log.close();
      expect(out.join('')).toMatch(/ GET \/stdout-1 .*\n.* GET \/stdout-2 /);
      expect(out.join('')).not.toContain('/file');
      expect(readFileSync(join(dir, 'web.log'), 'utf8')).toMatch(
        /^\S+ web 10\.0\.0\.2:4444 GET \/file 200 0 - 0\.00\n$/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('routes a server to its file in JSON, with the request id and the client behind trusted proxies', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loch-log-'));
    try {
      const config = parseConfig(
        `
[log]
access_log = { path = "all.log" }

[servers.api]
listener = { type = "socket", value = "127.0.0.1:8080" }
access_log = { path = "${join(dir, 'api.json')}", format = "json" }
trusted_proxies = ["10.0.0.0/8"]
routes = [{ path = "/", upstreams = [{ endpoint = "http://127.0.0.1:9000" }] }]

[servers.web]
listener = { type = "socket", value = "127.0.0.1:8081" }
routes = [{ path = "/", upstreams = [{ endpoint = "http://127.0.0.1:9000" }] }]
`,
        join(dir, 'loch.toml'),
      );
      const { log, out } = capturing();
      log.commitAccess(log.prepareAccess(config));
      const req = createRequest('GET', '/x', {
        headers: [
          ['x-request-id', 'abc-1'],
          ['x-forwarded-for', '203.0.113.9, 10.3.3.3'],
        ],
      });
      const peer = { family: 'ipv4', address: '10.0.0.2', port: 4444 } as const;
      log.accessRequest('api', peer, req.headers, 'GET', '/x', 200, 5, 'http://u', 2, 200, 1);
      log.access('web', peer, 'GET', '/y', 404, 0, undefined, 0.5);
      await log.close();
      expect(out).toEqual([]);
      expect(JSON.parse(readFileSync(join(dir, 'api.json'), 'utf8'))).toMatchObject({
        server: 'api',
        client: '203.0.113.9',
        client_port: null,
        peer: '10.0.0.2',
        request_id: 'abc-1',
        upstream_status: 200,
      });
      // The global [log] access_log, relative to the config file's directory, in text.
      expect(readFileSync(join(dir, 'all.log'), 'utf8')).toMatch(
        / web 10\.0\.0\.2:4444 GET \/y 404 0 - 0\.50\n$/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("writes a Thrift server's calls as JSON with service and method, through its module logger", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loch-log-'));
    try {
      const config = parseConfig(
        `
[servers.rpc]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:9090" }
access_log = { path = "rpc.json", format = "json" }
route = { upstreams = [{ endpoint = "127.0.0.1:9091" }] }
`,
        join(dir, 'loch.toml'),
      );
      const log = new ProxyLog(
        'info',
        '',
        () => {},
        () => {},
      );
      log.commitAccess(log.prepareAccess(config));
      const peer = { family: 'ipv4', address: '192.0.2.1', port: 5000 } as const;
      log.at('thrift').access('rpc', peer, 'CALL', 'UserService:getUser', 200, 42, '127.0.0.1:9091', 3);
      log.at('thrift').access('rpc', peer, 'ONEWAY', 'ping', 200, 0, '127.0.0.1:9091', 1);
      await log.close();
      const lines = readFileSync(join(dir, 'rpc.json'), 'utf8')
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines).toEqual([
        expect.objectContaining({
          server: 'rpc',
          kind: 'call',
          service: 'UserService',
          method: 'getUser',
          bytes: 42,
        }),
        expect.objectContaining({ kind: 'oneway', service: null, method: 'ping' }),
      ]);
      expect(lines[0]).not.toHaveProperty('path');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('[log] error_log: operational lines go to the file, reopened with the access logs, stderr after close', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loch-log-'));
    try {
      const config = parseConfig(
        `
[log]
error_log = { path = "error.log" }

[servers.web]
listener = { type = "socket", value = "127.0.0.1:8081" }
routes = [{ path = "/", upstreams = [{ endpoint = "http://127.0.0.1:9000" }] }]
`,
        join(dir, 'loch.toml'),
      );
      expect(config.errorLogPath).toBe(join(dir, 'error.log'));
      const err: string[] = [];
      const log = new ProxyLog(
        'info',
        'w0: ',
        () => {},
        (t) => err.push(t),
      );
      log.commitAccess(log.prepareAccess(config));
      log.warn('to the file');
      log.at('tls').error('a module line too');
      await log.reopen();
      renameSync(join(dir, 'error.log'), join(dir, 'error.log.1'));
      await log.reopen();
      log.info('after rotation');
      await log.close();
      log.error('after close');
      log.flush();
      expect(readFileSync(join(dir, 'error.log.1'), 'utf8')).toMatch(
        /warn w0: to the file\n.* error w0: \[tls\] a module line too\n$/,
      );
      expect(readFileSync(join(dir, 'error.log'), 'utf8')).toMatch(/ info w0: after rotation\n$/);
      expect(err.join('')).toMatch(/^\S+ error w0: after close\n$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a config whose access-log file cannot be opened, and keeps the running one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loch-log-'));
    try {
      const at = (path: string) =>
        parseConfig(
          `
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8081" }
access_log = { path = "${path}" }
routes = [{ path = "/", upstreams = [{ endpoint = "http://127.0.0.1:9000" }] }]
`,
          join(dir, 'loch.toml'),
        );
      const log = new ProxyLog(
        'info',
        '',
        () => {},
        () => {},
      );
      log.commitAccess(log.prepareAccess(at(join(dir, 'ok.log'))));
      expect(() => log.prepareAccess(at(join(dir, 'no', 'such', 'dir.log')))).toThrow(AccessLogFileError);
      log.access('web', { family: 'unix', path: '/s' }, 'GET', '/', 200, 0, undefined, 0);
      await log.close();
      expect(readFileSync(join(dir, 'ok.log'), 'utf8')).toMatch(/ web unix GET \/ 200 /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
