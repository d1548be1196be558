import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from './load.js';

const config = (web: string, rpc: string) => `
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8080" }
${web}
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:9000" }]

[servers.rpc]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:9090" }
route = { upstreams = [{ endpoint = "127.0.0.1:9091" }] }
${rpc}
`;

function issuesOf(text: string): readonly { path: string; message: string }[] {
  try {
    parseConfig(text, '/etc/loch/loch.toml');
  } catch (error) {
    if (error instanceof ConfigError) return error.issues;
    throw error;
  }
  return [];
}

describe("a server's timeouts: Monolake's `timeout` (seconds) or Loch's `timeouts` (durations)", () => {
  it('reads either form, seconds as milliseconds', () => {
    const c = parseConfig(
      config(
        'timeout = { server_keepalive_timeout_sec = 7, upstream_read_timeout_sec = 1.5 }',
        'timeout = { server_message_timeout_sec = 2 }',
      ),
      '/etc/loch/loch.toml',
    );
    expect(c.servers[0]!.timeouts.serverKeepalive).toBe(7000);
    expect(c.servers[0]!.timeouts.upstreamRead).toBe(1500);
    expect(c.thriftServers[0]!.timeouts.serverMessage).toBe(2000);
    const d = parseConfig(
      config('timeouts = { server_keepalive = "9s" }', 'timeouts = { upstream_call = "250ms" }'),
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
