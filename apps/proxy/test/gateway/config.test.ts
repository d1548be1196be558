/**
 * `thrift = { ... }` routes of an HTTP server (the HTTP/JSON -> Thrift gateway, issue 19) in
 * the config: the issue's spelling, upstreams and balancer as in the Thrift proxy, routes of
 * one path merged by method, and each mistake a ConfigError naming its key (a bad IDL names
 * its file and line).
 */
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfigFile, parseConfig } from '../../src/config/load.js';
import { gatewayFiles } from '../../src/gateway/config.js';
import { configIssues } from '../config-issues.js';

const dir = mkdtempSync(join(tmpdir(), 'loch-gw-config-'));
writeFileSync(
  join(dir, 'user.thrift'),
  `struct User {
  1: required i64 id
  2: string name
}
exception NotFound { 1: string what }
service UserService {
  User getUser(1: i64 id) throws (1: NotFound nf)
  void deleteUser(1: i64 id)
}
`,
);
writeFileSync(join(dir, 'bad.thrift'), 'struct A {\n  1: i32 a\n  2: Nope b\n}\n');
const configFile = join(dir, 'loch.toml');

function config(routes: string): string {
  return `
[servers.gw]
listener = { type = "socket", value = "127.0.0.1:8080" }
${routes}
`;
}

const issuesOf = (text: string) => configIssues(text, configFile);

describe('gateway routes in the config', () => {
  it("takes the issue's spelling, with an optional method", () => {
    const c = parseConfig(
      config(`
[[servers.gw.routes]]
path = "/users/{id}"
thrift = { idl = "user.thrift", service = "UserService", method = "getUser", upstream = { type = "socket", value = "127.0.0.1:9090" } }

[[servers.gw.routes]]
path = "/users/{id}"
method = "delete"
thrift = { idl = "user.thrift", service = "UserService", method = "deleteUser", upstreams = [{ endpoint = "127.0.0.1:9091", weight = 2 }, { endpoint = { type = "unix", value = "/run/u.sock" } }], load_balancer = "weighted_random", framing = "ttheader", protocol = "compact", headers = ["X-Request-Id"], exception_status = 409, i64_as_number = true, timeout = "2s" }
`),
      configFile,
    );
    const routes = c.servers[0]?.routes ?? [];
    expect(routes).toHaveLength(1); // one router entry for both methods
    const [get, del] = routes[0]?.gateway ?? [];
    expect(routes[0]?.upstreams).toEqual([]);
    expect(get).toMatchObject({
      path: '/users/{id}',
      httpMethod: undefined,
      service: 'UserService',
      function: 'getUser',
      upstreams: [
        {
          address: { kind: 'tcp', host: '127.0.0.1', port: 9090 },
          weight: 1,
          label: '127.0.0.1:9090',
          multiplex: 0,
        },
      ],
      loadBalancer: 'first',
      framing: 'framed',
      protocol: 'binary',
      exceptionStatus: 422,
      i64AsNumber: false,
      connectTimeout: 5_000,
    });
    expect(get?.idl.file).toBe(join(dir, 'user.thrift'));
    expect(get?.idl.services.get('UserService')?.functions.has('getUser')).toBe(true);
    expect(del).toMatchObject({
      httpMethod: 'DELETE',
      loadBalancer: 'weighted_random',
      framing: 'ttheader',
      protocol: 'compact',
      forwardHeaders: ['x-request-id'],
      exceptionStatus: 409,
      i64AsNumber: true,
      callTimeout: 2_000,
    });
    expect(del?.upstreams.map((u) => u.label)).toEqual(['127.0.0.1:9091', 'unix:/run/u.sock']);
  });

  it('a bad IDL is an issue naming its file and line', () => {
    const issues = issuesOf(
      config(`
[[servers.gw.routes]]
path = "/a"
thrift = { idl = "bad.thrift", service = "S", method = "m", upstream = "127.0.0.1:9090" }
`),
    );
    expect(issues).toEqual([
      { path: 'servers.gw.routes[0].thrift.idl', message: `${join(dir, 'bad.thrift')}:3: unknown type Nope` },
    ]);
  });

  it('a missing IDL, service, function or path argument is an issue', () => {
    const route = (thrift: string, path = '/users/{id}') =>
      issuesOf(config(`[[servers.gw.routes]]\npath = "${path}"\nthrift = { ${thrift} }`));
    const base = 'upstream = "127.0.0.1:9090"';
    expect(route(`idl = "none.thrift", service = "S", method = "m", ${base}`)[0]?.message).toMatch(
      /cannot read/,
    );
    expect(route(`idl = "user.thrift", service = "Nope", method = "getUser", ${base}`)[0]?.message).toMatch(
      /has no service Nope/,
    );
    expect(
      route(`idl = "user.thrift", service = "UserService", method = "nope", ${base}`)[0]?.message,
    ).toMatch(/has no function nope/);
    expect(
      route(`idl = "user.thrift", service = "UserService", method = "getUser", ${base}`, '/users/{uid}'),
    ).toEqual([
      {
        path: 'servers.gw.routes[0].thrift',
        message: 'path parameter {uid} is not an argument of UserService.getUser',
      },
    ]);
  });

  it('a prefix route serves every function of its service; an exact one needs its function', () => {
    writeFileSync(
      join(dir, 'api.thrift'),
      `struct User { 1: i64 id }
service Api {
  User getUser(1: i64 id) (api.get = "/v2/users/:id")
  void deleteUser(1: i64 id)
  User find(1: string q) (api.get = "v2/find")
}
service Clash {
  void a(1: i64 id) (api.get = "/x/:id")
  void b(1: i64 key) (api.get = "/x/{key}")
}
`,
    );
    for (const path of ['/api/', '/api/{*rest}']) {
      const c = parseConfig(
        config(`[[servers.gw.routes]]
path = "${path}"
thrift = { idl = "api.thrift", service = "Api", upstream = "127.0.0.1:9090" }`),
        configFile,
      );
      const gateway = c.servers[0]?.routes[0]?.gateway ?? [];
      expect(gateway.map((g) => [g.function, g.httpMethod, g.path])).toEqual([
        ['getUser', 'GET', '/api/v2/users/:id'],
        ['deleteUser', 'POST', '/api/deleteUser'],
        ['find', 'GET', '/api/v2/find'],
      ]);
    }
    const route = (path: string, thrift: string, extra = '') =>
      issuesOf(
        config(
          `[[servers.gw.routes]]
path = "${path}"
${extra}thrift = { idl = "api.thrift", upstream = "127.0.0.1:9090", ${thrift} }`,
        ),
      );
    expect(route('/api/', 'service = "Api", method = "getUser"')).toEqual([
      {
        path: 'servers.gw.routes[0].thrift.method',
        message:
          'a prefix route (/api/) serves every function of Api: leave out method, or give the route an exact path',
      },
    ]);
    expect(route('/api/', 'service = "Api"', 'method = "GET"\n')[0]?.path).toBe(
      'servers.gw.routes[0].method',
    );
    expect(route('/users/{id}', 'service = "Api"')[0]).toMatchObject({
      path: 'servers.gw.routes[0].thrift.method',
      message: expect.stringMatching(/^name the function to call/),
    });
    expect(route('/api/', 'service = "Clash"')).toEqual([
      { path: 'servers.gw.routes[0].thrift', message: 'a and b both answer GET /api/x/{key}' },
    ]);
  });

  it('gRPC pseudonymize on a proxied route: proto files, paths and keys checked by name', () => {
    writeFileSync(
      join(dir, 'echo.proto'),
      'syntax = "proto3";\npackage t;\nmessage M { string text = 1; }\nservice E { rpc Say (M) returns (M); }\n',
    );
    writeFileSync(join(dir, 'k.key'), 'ab'.repeat(64));
    const route = (table: string) =>
      `[[servers.gw.routes]]\npath = "/"\nupstreams = [{ endpoint = "http://127.0.0.1:9" }]\npseudonymize = { direction = "upstream", keys = [{ id = "k", file = "k.key" }], ${table} }`;
    const c = parseConfig(
      config(route('proto = ["echo.proto"], fields = ["t.E.Say.request.text"]')),
      configFile,
    );
    expect(c.servers[0]?.routes[0]?.grpcPseudonymize).toMatchObject({
      proto: [join(dir, 'echo.proto')],
      direction: 'upstream',
      methods: ['/t.E/Say'],
      keys: [{ id: 'k', file: join(dir, 'k.key') }],
    });
    expect(issuesOf(config(route('fields = ["t.E.Say.request.text"]')))[0]).toMatchObject({
      path: 'servers.gw.routes[0].pseudonymize.proto',
    });
    expect(issuesOf(config(route('proto = ["echo.proto"], fields = ["t.E.Say.request.txt"]')))[0]).toEqual({
      path: 'servers.gw.routes[0].pseudonymize.fields',
      message: 'pseudonymize field "t.E.Say.request.txt": "txt" is not a field of M',
    });
    expect(
      issuesOf(config(route('proto = ["none.proto"], fields = ["t.E.Say.request.text"]')))[0]?.path,
    ).toBe('servers.gw.routes[0].pseudonymize.fields');
  });

  it('gRPC pseudonymize from a binary descriptor set; imports of .proto files are watched', () => {
    const grpcFixtures = fileURLToPath(new URL('../fixtures/grpc/', import.meta.url));
    for (const f of ['echo.proto', 'options.proto', 'echo.binpb'])
      copyFileSync(join(grpcFixtures, f), join(dir, f));
    writeFileSync(join(dir, 'k.key'), 'ab'.repeat(64));
    const route = (table: string) =>
      `[[servers.gw.routes]]\npath = "/"\nupstreams = [{ endpoint = "http://127.0.0.1:9" }]\npseudonymize = { direction = "upstream", keys = [{ id = "k", file = "k.key" }], ${table} }`;
    const set = parseConfig(
      config(route('descriptor_set = ["echo.binpb"], fields = ["loch.test.Echo.Say.request.text"]')),
      configFile,
    );
    expect(set.servers[0]?.routes[0]?.grpcPseudonymize).toMatchObject({
      proto: [join(dir, 'echo.binpb')],
      schema: 'descriptor_set',
      methods: ['/loch.test.Echo/Say'],
    });
    const files = parseConfig(
      config(route('proto = ["echo.proto"], fields = ["loch.test.Echo.Say.request.text"]')),
      configFile,
    );
    expect(gatewayFiles(files)).toEqual(
      expect.arrayContaining([join(dir, 'echo.proto'), join(dir, 'options.proto'), join(dir, 'k.key')]),
    );
    expect(gatewayFiles(set)).toEqual(expect.arrayContaining([join(dir, 'echo.binpb')]));
    expect(
      issuesOf(
        config(
          route(
            'proto = ["echo.proto"], descriptor_set = ["echo.binpb"], fields = ["loch.test.Echo.Say.request.text"]',
          ),
        ),
      )[0],
    ).toEqual({
      path: 'servers.gw.routes[0].pseudonymize.proto',
      message: 'give proto or descriptor_set, not both',
    });
    expect(
      issuesOf(
        config(route('descriptor_set = ["echo.proto"], fields = ["loch.test.Echo.Say.request.text"]')),
      )[0],
    ).toMatchObject({
      path: 'servers.gw.routes[0].pseudonymize.fields',
      message: expect.stringContaining('echo.proto: not a complete FileDescriptorSet'),
    });
  });

  it('a thrift route pseudonymizes by its IDL: proto or descriptor_set there is an issue', () => {
    writeFileSync(join(dir, 'k.key'), 'ab'.repeat(64));
    const i = issuesOf(
      config(`
[[servers.gw.routes]]
path = "/users/{id}"
thrift = { idl = "user.thrift", service = "UserService", method = "getUser", upstream = "127.0.0.1:9090", pseudonymize = { descriptor_set = ["x.binpb"], direction = "upstream", keys = [{ id = "k", file = "k.key" }], fields = ["UserService.getUser.result.success.name"] } }
`),
    );
    expect(i).toEqual([
      {
        path: 'servers.gw.routes[0].thrift.pseudonymize.descriptor_set',
        message: 'a thrift call is described by its IDL, not descriptor_set',
      },
    ]);
  });

  it('upstream and upstreams: exactly one; endpoints checked as the Thrift proxy checks them', () => {
    const i = issuesOf(
      config(`
[[servers.gw.routes]]
path = "/a/{id}"
thrift = { idl = "user.thrift", service = "UserService", method = "getUser" }

[[servers.gw.routes]]
path = "/b/{id}"
thrift = { idl = "user.thrift", service = "UserService", method = "getUser", upstream = "nowhere" }
`),
    );
    expect(i.map((x) => x.path)).toEqual([
      'servers.gw.routes[0].thrift',
      'servers.gw.routes[1].thrift.upstream',
    ]);
  });

  it('keys that mean nothing for a thrift route are issues; a plain route still needs upstreams', () => {
    const i = issuesOf(
      config(`
[[servers.gw.routes]]
path = "/users/{id}"
upstreams = [{ endpoint = "http://127.0.0.1:1" }]
strip_prefix = "/users"
thrift = { idl = "user.thrift", service = "UserService", method = "getUser", upstream = "127.0.0.1:9090", colour = "red" }

[[servers.gw.routes]]
path = "/plain"
method = "GET"
`),
    );
    expect(i).toEqual([
      { path: 'servers.gw.routes[0].thrift', message: 'unknown key "colour"' },
      {
        path: 'servers.gw.routes[0].upstreams',
        message: 'a thrift route names its upstreams inside thrift = { ... }',
      },
      {
        path: 'servers.gw.routes[0].strip_prefix',
        message: 'a thrift route forwards no path: strip_prefix means nothing',
      },
      { path: 'servers.gw.routes[1].upstreams', message: 'a route needs at least one upstream' },
      { path: 'servers.gw.routes[1].method', message: 'method narrows thrift routes only' },
    ]);
  });

  it('the shipped example config/gateway.toml loads', async () => {
    const c = await loadConfigFile(new URL('../../config/gateway.toml', import.meta.url).pathname);
    expect(c.servers[0]?.routes.map((r) => r.gateway?.map((g) => `${g.httpMethod} ${g.function}`))).toEqual([
      ['GET getUser', 'DELETE deleteUser'],
      ['POST createUser'],
    ]);
  });
});
