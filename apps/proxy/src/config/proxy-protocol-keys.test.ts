import { describe, expect, it } from 'vitest';
import { configIssues } from '../../test/config-issues.js';
import { parseConfig } from './load.js';

const config = (server: string, upstream: string) => `
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8080" }
${server}
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:9000"${upstream} }]
`;

const issuesOf = (text: string) => configIssues(text, 'loch.toml');

describe('PROXY protocol keys', () => {
  it('are off unless set', () => {
    const server = parseConfig(config('', ''), 'loch.toml').servers[0]!;
    expect(server.proxyProtocol).toBeUndefined();
    expect(server.routes[0]!.upstreams[0]!.sendProxyProtocol).toBeUndefined();
  });

  it('reads proxy_protocol (default deadline 5s), proxy_protocol_timeout and send_proxy_protocol', () => {
    const on = parseConfig(config('proxy_protocol = true', ', send_proxy_protocol = "v2"'), 'loch.toml')
      .servers[0]!;
    expect(on.proxyProtocol).toEqual({ timeout: 5_000, from: undefined });
    expect(on.routes[0]!.upstreams[0]!.sendProxyProtocol).toBe('v2');
    const timed = parseConfig(
      config('proxy_protocol = true\nproxy_protocol_timeout = "250ms"', ''),
      'loch.toml',
    );
    expect(timed.servers[0]!.proxyProtocol).toEqual({ timeout: 250, from: undefined });
    expect(
      parseConfig(config('proxy_protocol = false', ''), 'loch.toml').servers[0]!.proxyProtocol,
    ).toBeUndefined();
  });

  it('reads proxy_protocol_from and names bad entries', () => {
    const from = parseConfig(
      config('proxy_protocol = true\nproxy_protocol_from = ["10.0.0.0/8", "::1"]', ''),
    );
    expect(from.servers[0]!.proxyProtocol).toEqual({ timeout: 5_000, from: ['10.0.0.0/8', '::1'] });
    expect(issuesOf(config('proxy_protocol = true\nproxy_protocol_from = ["10.0.0.0/8", "lb"]', ''))).toEqual(
      [
        {
          path: 'servers.web.proxy_protocol_from[1]',
          message: '"lb" is not an IP address or a range like "10.0.0.0/8"',
        },
      ],
    );
  });

  it('names bad values', () => {
    expect(issuesOf(config('proxy_protocol = "v2"', '')).map((i) => i.path)).toEqual([
      'servers.web.proxy_protocol',
    ]);
    expect(issuesOf(config('', ', send_proxy_protocol = "v3"')).map((i) => i.path)).toEqual([
      'servers.web.routes[0].upstreams[0].send_proxy_protocol',
    ]);
  });
});
