import { describe, expect, it } from 'vitest';
import { configIssues } from '../../test/config-issues.js';
import { parseConfig } from './load.js';

const server = (extra: string, route = '') => `
[runtime]
workers = 1
${extra.startsWith('max_connections') ? extra : ''}
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8080" }
${extra.startsWith('max_connections') ? '' : extra}
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:9000" }]
${route}
[[servers.web.routes]]
path = "/other/"
upstreams = [{ endpoint = "http://127.0.0.1:9000" }]
`;

describe('limit keys', () => {
  it('defaults: 10,000 connections per worker, no body limit, 16 KiB / 100 header fields', () => {
    const c = parseConfig(server(''));
    expect(c.runtime.maxConnectionsPerWorker).toBe(10_000);
    expect(c.servers[0]!.routes.map((r) => r.maxBodySize)).toEqual([0, 0]);
    expect(c.servers[0]!.maxHeaderSize).toBe(16 * 1024);
    expect(c.servers[0]!.maxHeaderCount).toBe(100);
  });

  it('sizes in nginx spelling; a route max_body_size overrides the server one', () => {
    const c = parseConfig(
      server('max_body_size = "1m"\nmax_header_size = "8K"\nmax_header_count = 50', 'max_body_size = 512'),
    );
    expect(c.servers[0]!.routes.map((r) => r.maxBodySize)).toEqual([512, 1024 * 1024]);
    expect(c.servers[0]!.maxHeaderSize).toBe(8 * 1024);
    expect(c.servers[0]!.maxHeaderCount).toBe(50);
    expect(parseConfig(server('max_body_size = "2g"')).servers[0]!.routes[0]!.maxBodySize).toBe(
      2 * 1024 ** 3,
    );
    expect(parseConfig(server('max_connections_per_worker = 64')).runtime.maxConnectionsPerWorker).toBe(64);
  });

  it('bad values name their key', () => {
    expect(configIssues(server('max_body_size = "1 MB"'))[0]!.path).toBe('servers.web.max_body_size');
    expect(configIssues(server('max_header_size = "100"'))[0]!.path).toBe('servers.web.max_header_size');
    expect(configIssues(server('max_header_count = 0'))[0]!.path).toBe('servers.web.max_header_count');
    expect(configIssues(server('max_connections_per_worker = 0'))[0]!.path).toBe(
      'runtime.max_connections_per_worker',
    );
    expect(configIssues(server('', 'max_body_size = -1'))[0]!.path).toBe(
      'servers.web.routes[0].max_body_size',
    );
  });
});
