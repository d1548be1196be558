/**
 * `proxy_type = "thrift"` servers in the config: Monolake's current shape (`route` + `timeout`
 * with `server_keepalive_timeout_sec`/`server_message_timeout_sec`), its routes form (`path =
 * "/"`, socket and unix endpoints), Loch's routes by method and service, and the errors a bad
 * block gets, each naming its key.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { configIssues } from '../config-issues.js';

const issuesOf = (text: string) => configIssues(text, 'test.toml');

const monolakeCurrent = `
[runtime]
worker_threads = 1

[servers.demo_thrift]
name = "thrift proxy"
proxy_type = "thrift"
listener = { type = "socket", value = "0.0.0.0:8081" }
timeout = { server_keepalive_timeout_sec = 30, server_message_timeout_sec = 3 }
route = { load_balancer = "random", upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9090" }, weight = 2 }, { endpoint = { type = "unix", value = "/run/rpc.sock" } }] }
`;

const monolakeRoutes = `
[servers.rpc]
proxy_type = "thrift"
listener = { type = "unix", value = "/tmp/loch-thrift.sock" }

[[servers.rpc.routes]]
path = "/"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9090" } }]
`;

describe('thrift server config', () => {
  it("loads Monolake's current shape: route and timeout", () => {
    const config = parseConfig(monolakeCurrent);
    expect(config.servers).toEqual([]);
    expect(config.thriftServers).toEqual([
      {
        key: 'demo_thrift',
        name: 'thrift proxy',
        proxyType: 'thrift',
        listen: { kind: 'tcp', host: '0.0.0.0', port: 8081 },
        timeouts: {
          serverKeepalive: 30_000,
          serverMessage: 3_000,
          upstreamConnect: 5_000,
          upstreamCall: 30_000,
          shutdownGrace: 30_000,
        },
        routes: [
          {
            methods: undefined,
            service: undefined,
            loadBalancer: 'random',
            upstreams: [
              {
                address: { kind: 'tcp', host: '127.0.0.1', port: 9090 },
                weight: 2,
                label: '127.0.0.1:9090',
                multiplex: 0,
              },
              {
                address: { kind: 'unix', path: '/run/rpc.sock' },
                weight: 1,
                label: 'unix:/run/rpc.sock',
                multiplex: 0,
              },
            ],
          },
        ],
        maxFrameSize: 16 * 1024 * 1024,
        accessLog: true,
        maxPipelinedCalls: 1,
        acceptUnframed: false,
      },
    ]);
  });

  it('loads the routes form with path = "/" as the default route, beside http servers', () => {
    const config = parseConfig(
      `${monolakeRoutes}
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8080" }
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:9000" }]
`,
    );
    expect(config.servers.map((s) => s.key)).toEqual(['web']);
    const rpc = config.thriftServers[0]!;
    expect(rpc.listen).toEqual({ kind: 'unix', path: '/tmp/loch-thrift.sock' });
    expect(rpc.routes).toEqual([
      {
        methods: undefined,
        service: undefined,
        loadBalancer: 'first',
        upstreams: [
          {
            address: { kind: 'tcp', host: '127.0.0.1', port: 9090 },
            weight: 1,
            label: '127.0.0.1:9090',
            multiplex: 0,
          },
        ],
      },
    ]);
  });

  it("loads Loch's routes by method and service (default route last) and timeouts", () => {
    const config = parseConfig(`
[servers.rpc]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:9000" }
timeouts = { server_keepalive = "10s", server_message = "2s", upstream_connect = "500ms", upstream_call = "3s", shutdown_grace = "1s" }
max_frame_size = 1048576
access_log = false
route = { upstreams = [{ endpoint = "127.0.0.1:9100" }, { endpoint = "127.0.0.1:9101" }] }

[[servers.rpc.routes]]
method = ["getUser", "UserService:putUser"]
upstreams = [{ endpoint = "127.0.0.1:9200" }]

[[servers.rpc.routes]]
service = "Billing"
load_balancer = "weighted_random"
upstreams = [{ endpoint = "127.0.0.1:9300", weight = 0 }, { endpoint = "127.0.0.1:9301", weight = 5 }]
`);
    const rpc = config.thriftServers[0]!;
    expect(rpc.timeouts).toEqual({
      serverKeepalive: 10_000,
      serverMessage: 2_000,
      upstreamConnect: 500,
      upstreamCall: 3_000,
      shutdownGrace: 1_000,
    });
    expect(rpc.maxFrameSize).toBe(1_048_576);
    expect(rpc.accessLog).toBe(false);
    expect(rpc.routes.map((r) => [r.methods, r.service, r.loadBalancer, r.upstreams.length])).toEqual([
      [['getUser', 'UserService:putUser'], undefined, 'first', 1],
      [undefined, 'Billing', 'weighted_random', 2],
      [undefined, undefined, 'round_robin', 2],
    ]);
  });

  it('loads multiplex per upstream (true: 128 calls, or max_calls) and max_pipelined_calls', () => {
    const rpc = parseConfig(`
[servers.rpc]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:9000" }
max_pipelined_calls = 32
route = { upstreams = [{ endpoint = "127.0.0.1:9100", multiplex = true }, { endpoint = "127.0.0.1:9101", multiplex = { max_calls = 16 } }, { endpoint = "127.0.0.1:9102", multiplex = false }] }
`).thriftServers[0]!;
    expect(rpc.maxPipelinedCalls).toBe(32);
    expect(rpc.routes[0]!.upstreams.map((u) => u.multiplex)).toEqual([128, 16, 0]);
    expect(
      issuesOf(`
[servers.rpc]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:9000" }
max_pipelined_calls = 0
route = { upstreams = [{ endpoint = "127.0.0.1:9100", multiplex = { max_calls = 0 } }] }
`)
        .map((i) => i.path)
        .sort(),
    ).toEqual(['servers.rpc.max_pipelined_calls', 'servers.rpc.route.upstreams[0].multiplex.max_calls']);
  });

  it("loads a route's rewrite keys: headers, rename_method, upstream_framing and upstream_protocol", () => {
    const route = parseConfig(`
[servers.rpc]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:9000" }
route = { upstreams = [{ endpoint = "127.0.0.1:9100" }], headers = { add = { a = "1" }, set = { s = "2" }, remove = ["r"] }, rename_method = { "Calc:add" = "Calc:sum" }, upstream_framing = "ttheader", upstream_protocol = "compact" }
`).thriftServers[0]!.routes[0]!;
    expect(route.headerRewrite).toEqual({
      add: new Map([['a', '1']]),
      set: new Map([['s', '2']]),
      remove: ['r'],
    });
    expect(route.renames).toEqual(new Map([['Calc:add', 'Calc:sum']]));
    expect([route.upstreamFraming, route.upstreamProtocol]).toEqual(['ttheader', 'compact']);
    expect(
      parseConfig(`
[servers.rpc]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:9000" }
route = { upstreams = [{ endpoint = "127.0.0.1:9100" }], timeouts = { upstream_call = "250ms" } }
`).thriftServers[0]!.routes[0]!.timeouts,
    ).toEqual({ upstreamCall: 250 });
    expect(
      issuesOf(`
[servers.rpc]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:9000" }
route = { upstreams = [{ endpoint = "127.0.0.1:9100" }], headers = { set = { s = "2" } }, upstream_framing = "framed" }
`),
    ).toEqual([
      { path: 'servers.rpc.route.headers', message: expect.stringContaining('carries no headers') },
    ]);
  });

  it('loads match_headers on a route, which makes it no default route', () => {
    const rpc = parseConfig(`
[servers.rpc]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:9000" }
route = { upstreams = [{ endpoint = "127.0.0.1:9100" }] }

[[servers.rpc.routes]]
match_headers = { tenant = "gold" }
upstreams = [{ endpoint = "127.0.0.1:9200" }]
`).thriftServers[0]!;
    expect(rpc.routes.map((r) => r.matchHeaders)).toEqual([new Map([['tenant', 'gold']]), undefined]);
  });

  it('loads TTHeader integer keys by Kitex name (any case) or number in match_int_headers and int_headers', () => {
    const rpc = parseConfig(`
[servers.rpc]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:9000" }
route = { upstreams = [{ endpoint = "127.0.0.1:9100" }] }

[[servers.rpc.routes]]
match_int_headers = { to_service = "payments", TO_METHOD = "Charge", 300 = "x" }
int_headers = { add = { from_service = "loch" }, set = { stress_tag = "0" }, remove = ["log_id", 18] }
upstream_framing = "ttheader"
upstreams = [{ endpoint = "127.0.0.1:9200" }]
`).thriftServers[0]!;
    expect(rpc.routes.map((r) => r.matchIntHeaders)).toEqual([
      new Map([
        [6, 'payments'],
        [9, 'Charge'],
        [300, 'x'],
      ]),
      undefined,
    ]);
    expect(rpc.routes[0]!.intHeaderRewrite).toEqual({
      add: new Map([[3, 'loch']]),
      set: new Map([[21, '0']]),
      remove: [2, 18],
    });
  });

  it('refuses an integer key that names none, one given twice, and int_headers upstream of another framing', () => {
    const issues = issuesOf(`
[servers.rpc]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:9000" }
route = { upstreams = [{ endpoint = "127.0.0.1:9100" }], int_headers = { set = { to_servic = "a" }, remove = [70000] }, upstream_framing = "theader" }

[[servers.rpc.routes]]
match_int_headers = { to_service = "a", 6 = "b" }
upstreams = [{ endpoint = "127.0.0.1:9200" }]
`);
    expect(issues).toEqual([
      {
        path: 'servers.rpc.route.int_headers',
        message: 'upstream_framing = "theader" carries no integer headers: use "ttheader"',
      },
      {
        path: 'servers.rpc.route.int_headers.remove[0]',
        message: expect.stringContaining('"70000" is not a TTHeader integer key'),
      },
      {
        path: 'servers.rpc.route.int_headers.set.to_servic',
        message: expect.stringContaining('one of mesh_version, transport_type'),
      },
      { path: 'servers.rpc.routes[0].match_int_headers.to_service', message: 'key 6 is given twice' },
    ]);
  });

  it('names every problem of a bad thrift block', () => {
    const issues = issuesOf(`
[servers.rpc]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:9000" }
timeout = { server_keepalive_timeout_sec = 1 }
timeouts = { server_message = "1s" }
tls = { chain = "a.pem", key = "a.key" }
route = { upstreams = [{ endpoint = "http://127.0.0.1:9100" }] }

[[servers.rpc.routes]]
path = "/api"
upstreams = [{ endpoint = { type = "unix", value = "relative.sock" } }]

[[servers.rpc.routes]]
upstreams = [{ endpoint = "127.0.0.1:0" }]
`);
    expect(issues).toEqual([
      { path: 'servers.rpc.tls', message: expect.stringMatching(/not supported yet/) },
      { path: 'servers.rpc.timeout', message: 'give either "timeout" or "timeouts", not both' },
      {
        path: 'servers.rpc.route.upstreams[0].endpoint',
        message: expect.stringContaining('"http://127.0.0.1:9100"'),
      },
      { path: 'servers.rpc.routes[0].path', message: expect.stringMatching(/only path = "\/"/) },
      {
        path: 'servers.rpc.routes[0].upstreams[0].endpoint',
        message: 'a unix upstream path must be absolute',
      },
      {
        path: 'servers.rpc.routes[0]',
        message: expect.stringMatching(/second default route .*servers\.rpc\.route/),
      },
      {
        path: 'servers.rpc.routes[1].upstreams[0].endpoint',
        message: expect.stringContaining('"127.0.0.1:0"'),
      },
      { path: 'servers.rpc.routes[1]', message: expect.stringMatching(/second default route/) },
    ]);
  });

  it('refuses unknown keys, http-only keys and a server without routes', () => {
    expect(
      issuesOf(`
[servers.rpc]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:9000" }
upstream_http_version = "http11"
timeout = { upstream_read_timeout_sec = 1 }
`),
    ).toEqual([
      { path: 'servers.rpc.timeout', message: 'unknown key "upstream_read_timeout_sec"' },
      { path: 'servers.rpc', message: 'unknown key "upstream_http_version"' },
      { path: 'servers.rpc.route', message: expect.stringMatching(/needs a route/) },
    ]);
  });

  it('refuses a thrift and an http server on one address', () => {
    const issues = issuesOf(`
[servers.web]
listener = { type = "socket", value = "127.0.0.1:9000" }
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:9100" }]

[servers.rpc]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:9000" }
route = { upstreams = [{ endpoint = "127.0.0.1:9100" }] }
`);
    expect(issues).toEqual([
      { path: 'servers.rpc.listener', message: 'listens on 127.0.0.1:9000 like servers.web' },
    ]);
  });
});
