import { describe, expect, it } from 'vitest';
import { configIssues } from '../../test/config-issues.js';
import { parseConfig } from './load.js';

const config = (log: string, server: string, thrift = '') => `
${log}
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8080" }
${server}
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:9000" }]

[servers.rpc]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:9090" }
route = { upstreams = [{ endpoint = "127.0.0.1:9091" }] }
${thrift}
`;

const issuesOf = (text: string) => configIssues(text, '/etc/loch/loch.toml');

describe('access_log, [log] modules, trusted_proxies, tunnel_drain (config)', () => {
  it('by default: access lines as text to stdout, no module levels, no trusted proxies, drain = grace', () => {
    const c = parseConfig(config('', ''), '/etc/loch/loch.toml');
    expect(c.servers[0]!.accessLog).toBe(true);
    expect(c.servers[0]!.accessLogOutput).toBeUndefined();
    expect(c.servers[0]!.trustedProxies).toBeUndefined();
    expect(c.servers[0]!.timeouts.tunnelDrain).toBeUndefined();
    expect(c.logModules).toBeUndefined();
  });

  it('reads a server access_log table (relative paths from the config file) and [log] access_log for the rest', () => {
    const c = parseConfig(
      config(
        '[log]\naccess_log = { path = "/var/log/loch/all.log" }',
        'access_log = { path = "web.json", format = "json" }',
      ),
      '/etc/loch/loch.toml',
    );
    expect(c.servers[0]!.accessLogOutput).toEqual({ path: '/etc/loch/web.json', format: 'json' });
    expect(c.thriftServers[0]!.accessLogOutput).toEqual({ path: '/var/log/loch/all.log', format: 'text' });
    expect(c.thriftServers[0]!.accessLog).toBe(true);
    // JSON to stdout: a format without a path.
    const stdoutJson = parseConfig(config('', 'access_log = { format = "json" }'), '/etc/loch/loch.toml');
    expect(stdoutJson.servers[0]!.accessLogOutput).toEqual({ path: null, format: 'json' });
  });

  it('access_log = false turns a server off; a table turns it on even when [log] access = false', () => {
    const c = parseConfig(
      config('[log]\naccess = false', 'access_log = { path = "a.log" }', 'access_log = false'),
      '/etc/loch/loch.toml',
    );
    expect(c.servers[0]!.accessLog).toBe(true);
    expect(c.thriftServers[0]!.accessLog).toBe(false);
  });

  it('reads [log] modules, trusted_proxies and timeouts.tunnel_drain', () => {
    const c = parseConfig(
      config(
        '[log]\nlevel = "warn"\nmodules = { tls = "debug", upstream = "error" }',
        'trusted_proxies = ["10.0.0.0/8", "::1"]\ntimeouts = { tunnel_drain = "5s" }',
      ),
      '/etc/loch/loch.toml',
    );
    expect(c.logLevel).toBe('warn');
    expect(c.logModules).toEqual({ tls: 'debug', upstream: 'error' });
    expect(c.servers[0]!.trustedProxies).toEqual(['10.0.0.0/8', '::1']);
    expect(c.servers[0]!.timeouts.tunnelDrain).toBe(5_000);
  });

  it('refuses unknown modules, levels and formats, bad trusted_proxies entries, naming the key', () => {
    const issues = issuesOf(
      config(
        '[log]\nmodules = { tsl = "debug", tls = "loud" }',
        'trusted_proxies = ["10.0.0.0/33", "proxy.internal"]\naccess_log = { format = "csv", size = 1 }',
      ),
    );
    const paths = issues.map((i) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^log\.modules/),
        expect.stringMatching(/^servers\.web\.access_log/),
      ]),
    );
    const trusted = issuesOf(config('', 'trusted_proxies = ["10.0.0.0/33", "proxy.internal"]'));
    expect(trusted).toEqual([
      { path: 'servers.web.trusted_proxies[0]', message: expect.stringMatching(/prefix length is 0 to 32/) },
      { path: 'servers.web.trusted_proxies[1]', message: expect.stringMatching(/not an IP address/) },
    ]);
  });
});

describe("a server's timeouts: Monolake's `timeout` (seconds) or Loch's `timeouts` (durations)", () => {
  it('reads either form, seconds as milliseconds', () => {
    const c = parseConfig(
      config(
        '',
        'timeout = { server_keepalive_timeout_sec = 7, upstream_read_timeout_sec = 1.5 }',
        'timeout = { server_message_timeout_sec = 2 }',
      ),
      '/etc/loch/loch.toml',
    );
    expect(c.servers[0]!.timeouts.serverKeepalive).toBe(7000);
    expect(c.servers[0]!.timeouts.upstreamRead).toBe(1500);
    expect(c.thriftServers[0]!.timeouts.serverMessage).toBe(2000);
    const d = parseConfig(
      config('', 'timeouts = { server_keepalive = "9s" }', 'timeouts = { upstream_call = "250ms" }'),
      '/etc/loch/loch.toml',
    );
    expect(d.servers[0]!.timeouts.serverKeepalive).toBe(9000);
    expect(d.thriftServers[0]!.timeouts.upstreamCall).toBe(250);
  });

  it('refuses both forms on one server, HTTP or Thrift, naming the server', () => {
    const both = (secKey: string, durKey: string) =>
      `timeout = { ${secKey} = 5 }\ntimeouts = { ${durKey} = "5s" }`;
    expect(
      issuesOf(
        config(
          '',
          both('server_keepalive_timeout_sec', 'server_keepalive'),
          both('server_message_timeout_sec', 'server_message'),
        ),
      ),
    ).toEqual([
      { path: 'servers.web.timeout', message: 'give either "timeout" or "timeouts", not both' },
      { path: 'servers.rpc.timeout', message: 'give either "timeout" or "timeouts", not both' },
    ]);
  });
});
