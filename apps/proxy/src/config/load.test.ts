import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configIssues } from '../../test/config-issues.js';
import { parseConfig } from './load.js';

const monolake = readFileSync(new URL('../../test/monolake.toml', import.meta.url), 'utf8');

const issuesOf = (text: string, source = 'test.toml') => configIssues(text, source);

const minimal = `
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8080" }
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:9000" }]
`;

describe('config loading', () => {
  it('loads the Monolake reference config unchanged', () => {
    const config = parseConfig(monolake, 'monolake.toml');
    expect(config.runtime).toEqual({
      workers: 2,
      driver: 'uring',
      entries: 8192,
      cpuAffinity: false,
      idleMemoryTrimMs: 1000,
      maxConnectionsPerWorker: 10_000,
      streamBufferBytes: 1024 * 1024,
      workerBufferBytes: 12 * 1024 * 1024,
      workerYoungGenerationBytes: 24 * 1024 * 1024,
      waveCollectOpen: false,
    });
    expect(config.servers.map((s) => s.key)).toEqual(['demo_http', 'demo_uds']);
    const http = config.servers[0]!;
    expect(http.listen).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 18080 });
    expect(http.timeouts.serverKeepalive).toBe(60_000);
    expect(http.timeouts.serverReadHeader).toBe(2_000);
    expect(http.timeouts.upstreamConnect).toBe(2_000);
    expect(http.timeouts.upstreamRead).toBe(5_000);
    expect(http.routes[1]!.loadBalancer).toBe('weighted_random');
    expect(http.routes[1]!.upstreams.map((u) => u.weight)).toEqual([3, 1]);
    expect(config.servers[1]!.listen).toEqual({ kind: 'unix', path: '/tmp/loch-demo.sock' });
  });

  it('loads JSON the same as TOML', () => {
    const json = JSON.stringify({
      servers: {
        web: {
          listener: { type: 'socket', value: '127.0.0.1:8080' },
          routes: [{ path: '/', upstreams: [{ endpoint: 'http://127.0.0.1:9000' }] }],
        },
      },
    });
    expect(parseConfig(json, 'x.json')).toEqual(parseConfig(minimal, 'x.toml'));
  });

  it('reads allow_encoded_slashes per server (default off) and checks its type', () => {
    expect(parseConfig(minimal).servers[0]!.allowEncodedSlashes).toBe(false);
    const on = minimal.replace(
      '[[servers.web.routes]]',
      'allow_encoded_slashes = true\n[[servers.web.routes]]',
    );
    expect(parseConfig(on).servers[0]!.allowEncodedSlashes).toBe(true);
    const bad = minimal.replace(
      '[[servers.web.routes]]',
      'allow_encoded_slashes = "yes"\n[[servers.web.routes]]',
    );
    expect(issuesOf(bad).map((i) => i.path)).toEqual(['servers.web.allow_encoded_slashes']);
  });

  it('names unknown keys wherever they are', () => {
    const issues = issuesOf(`${minimal}\n[runtime]\nworkerz = 2\n`);
    expect(issues).toContainEqual({ path: 'runtime', message: 'unknown key "workerz"' });
    const nested = issuesOf(
      minimal.replace('upstreams = [{ endpoint', 'upstreams = [{ wieght = 2, endpoint'),
    );
    expect(nested).toContainEqual({
      path: 'servers.web.routes[0].upstreams[0]',
      message: 'unknown key "wieght"',
    });
  });

  it('reports unknown keys and value errors of the rest of the file together', () => {
    const issues = issuesOf(
      '[servers.web]\nlistener = { type = "socket", value = "nope" }\nbogus = 1\n[[servers.web.routes]]\npath = "/"\nupstreams = [{ endpoint = "ftp://x" }]\n',
    );
    expect(issues.map((i) => i.path)).toEqual([
      'servers.web',
      'servers.web.listener.value',
      'servers.web.routes[0].upstreams[0].endpoint',
    ]);
    expect(issues[0]!.message).toBe('unknown key "bogus"');
  });

  it('reports every error at once, with its location', () => {
    const issues = issuesOf(`
[runtime]
workers = 0
[servers.a]
listener = { type = "socket", value = "nowhere" }
[[servers.a.routes]]
path = "/"
load_balancer = "fastest"
upstreams = [{ endpoint = "http://127.0.0.1:9000" }]
`);
    const paths = issues.map((i) => i.path);
    expect(paths).toContain('runtime.workers');
    expect(paths).toContain('servers.a.routes[0].load_balancer');
    const second = issuesOf(minimal.replace('127.0.0.1:8080', 'nowhere'));
    expect(second).toEqual([
      { path: 'servers.web.listener.value', message: expect.stringContaining('"nowhere"') },
    ]);
  });

  it('refuses by name what it cannot honour yet', () => {
    const withTls = minimal.replace(
      '[[servers.web.routes]]',
      'tls = { chain = "a.pem", key = "a.key" }\n[[servers.web.routes]]',
    );
    // TLS loads now (test/e2e/https.test.ts); certificate files that cannot be read are named.
    expect(issuesOf(withTls).map((i) => i.path)).toEqual(['servers.web.tls.chain', 'servers.web.tls.key']);
    const thrift = minimal.replace('[[servers.web.routes]]', 'proxy_type = "thrift"\n[[servers.web.routes]]');
    // A thrift server loads (test/thrift/config.test.ts); an HTTP URI is no thrift endpoint.
    expect(issuesOf(thrift)[0]).toMatchObject({ path: 'servers.web.routes[0].upstreams[0].endpoint' });
    const grpc = minimal.replace('[[servers.web.routes]]', 'proxy_type = "grpc"\n[[servers.web.routes]]');
    expect(issuesOf(grpc)).toEqual([
      { path: 'servers.web.proxy_type', message: 'expected proxy_type "http" or "thrift"' },
    ]);
    const h2 = minimal.replace(
      '[[servers.web.routes]]',
      'upstream_http_version = "http2"\n[[servers.web.routes]]',
    );
    // HTTP/2 upstreams load (test/e2e/h2-upstream.test.ts), "auto" too; other values are refused.
    expect(parseConfig(h2).servers[0]!.routes[0]!.upstreamHttpVersion).toBe('http2');
    const auto = minimal.replace(
      '[[servers.web.routes]]',
      'upstream_http_version = "auto"\n[[servers.web.routes]]',
    );
    expect(parseConfig(auto).servers[0]!.routes[0]!.upstreamHttpVersion).toBe('auto');
    const h3 = minimal.replace(
      '[[servers.web.routes]]',
      'upstream_http_version = "http3"\n[[servers.web.routes]]',
    );
    expect(issuesOf(h3)[0]).toMatchObject({ path: 'servers.web.upstream_http_version' });
    // https upstreams load (test/e2e/https.test.ts); other schemes are refused.
    expect(() => parseConfig(minimal.replace('http://127.0.0.1:9000', 'https://example.com'))).not.toThrow();
    const ftp = minimal.replace('http://127.0.0.1:9000', 'ftp://example.com');
    expect(issuesOf(ftp)[0]).toMatchObject({ path: 'servers.web.routes[0].upstreams[0].endpoint' });
  });

  it('rejects an upstream URI path instead of silently replacing the request path', () => {
    const issues = issuesOf(minimal.replace('http://127.0.0.1:9000', 'http://127.0.0.1:9000/v2'));
    expect(issues[0]!.message).toMatch(/strip_prefix/);
  });

  it('rejects credentials in an upstream URI without echoing them (they would be its label in /config, metrics and logs)', () => {
    for (const endpoint of [
      'http://user:s3cret@127.0.0.1:9000',
      'https://s3cret@127.0.0.1:9000',
      'http://u:s3cret@[bad',
    ]) {
      const issues = issuesOf(minimal.replace('http://127.0.0.1:9000', endpoint));
      expect(issues, endpoint).toHaveLength(1);
      expect(issues[0]!.path).toBe('servers.web.routes[0].upstreams[0].endpoint');
      expect(issues[0]!.message).not.toContain('s3cret');
      expect(issues[0]!.message).toContain('***@');
    }
    expect(
      issuesOf(minimal.replace('http://127.0.0.1:9000', 'http://user:s3cret@127.0.0.1:9000'))[0]!.message,
    ).toMatch(/no user or password/);
  });

  it('reads durations and defaults', () => {
    const config = parseConfig(
      minimal.replace(
        '[[servers.web.routes]]',
        'timeouts = { upstream_read = "1.5s", server_keepalive = 250 }\n[[servers.web.routes]]',
      ),
    );
    expect(config.servers[0]!.timeouts.upstreamRead).toBe(1500);
    expect(config.servers[0]!.timeouts.serverKeepalive).toBe(250);
    expect(config.servers[0]!.timeouts.upstreamConnect).toBe(5000);
  });

  it('reads runtime.idle_memory_trim as a duration: default 1s, "0s" disables, bad values named', () => {
    expect(parseConfig(minimal).runtime.idleMemoryTrimMs).toBe(1000);
    expect(parseConfig(`[runtime]\nidle_memory_trim = "0s"\n${minimal}`).runtime.idleMemoryTrimMs).toBe(0);
    expect(parseConfig(`[runtime]\nidle_memory_trim = "2.5s"\n${minimal}`).runtime.idleMemoryTrimMs).toBe(
      2500,
    );
    expect(parseConfig(`[runtime]\nidle_memory_trim = 300\n${minimal}`).runtime.idleMemoryTrimMs).toBe(300);
    const issues = issuesOf(`[runtime]\nidle_memory_trim = "soon"\n${minimal}`);
    expect(issues.map((i) => i.path)).toContain('runtime.idle_memory_trim');
  });

  it('points at the line of a TOML syntax error', () => {
    const issues = issuesOf('[servers.web\nlistener = 1');
    expect(issues[0]!.path).toMatch(/^line 1/);
  });

  it('refuses two servers on one address and Monolake/Loch spellings of one setting together', () => {
    const twice = `${minimal}\n[servers.other]\nlistener = { type = "socket", value = "127.0.0.1:8080" }\n[[servers.other.routes]]\npath = "/"\nupstreams = [{ endpoint = "http://127.0.0.1:9000" }]\n`;
    expect(issuesOf(twice)).toContainEqual({
      path: 'servers.other.listener',
      message: expect.stringContaining('servers.web'),
    });
    expect(issuesOf(`[runtime]\nworkers = 1\nworker_threads = 2\n${minimal}`)[0]).toMatchObject({
      path: 'runtime.worker_threads',
    });
  });
});
