/**
 * The gateway in front of real Thrift servers over loopback: Debian's python3-thrift and npm
 * thrift 0.22 (framed binary, framed compact, THeader), each serving test/idl/user.thrift
 * without generated code. Every route kind (path, query, JSON body, Hertz annotations,
 * inherited, void, oneway, containers, i64), declared exceptions, TApplicationException,
 * header forwarding; then the failure paths (refused, slow, bad input) and one run over real
 * HTTP sockets with @loch/http's server and Node's fetch.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createRequest, fixedBody, type HttpResponse, HttpServer, readText } from '@loch/http';
import { createWriter, type FramingName, MessageType, type ProtocolName, TType } from '@loch/thrift';
import { createRuntime, type Runtime, TcpListener, TcpStream } from '@loch/uring-runtime';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../http/test/free-port.js';
import {
  ClientExchange,
  type GatewayRouteOptions,
  loadIdl,
  type ThriftExchange,
  ThriftGateway,
} from '../src/index.js';
import { startNpmUserServer } from './peers/npm-user-server.js';

const idl = loadIdl(fileURLToPath(new URL('./idl/user.thrift', import.meta.url)));
const python = '/usr/bin/python3';
const hasPython = existsSync(python);

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ driver: 'legacy', log: () => undefined });
});
afterAll(async () => {
  await runtime?.close?.();
});

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function exchangeTo(
  port: number,
  framing: FramingName,
  protocol: ProtocolName,
  timeout = 10_000,
): ClientExchange {
  const ex = new ClientExchange(() => TcpStream.connect({ host: '127.0.0.1', port, runtime }), {
    framing,
    protocol,
    timeout,
    connections: 1, // the python peer serves one connection at a time
  });
  cleanups.push(() => ex.close());
  return ex;
}

function routes(
  upstream: ThriftExchange,
  protocol: ProtocolName,
  extra: Partial<GatewayRouteOptions> = {},
): GatewayRouteOptions[] {
  const base = {
    idl,
    service: 'UserService',
    upstream,
    protocol,
    forwardHeaders: ['x-request-id'],
    ...extra,
  };
  return [
    { ...base, function: 'getUser', path: '/users/{id}', httpMethod: 'GET' },
    { ...base, function: 'deleteUser', path: '/users/{id}', httpMethod: 'DELETE' },
    { ...base, function: 'createUser', path: '/users', httpMethod: 'POST' },
    { ...base, function: 'touch', path: '/users/{id}/touch', httpMethod: 'POST' },
    { ...base, function: 'ping', path: '/ping' },
    { ...base, function: 'search', path: '/search', httpMethod: 'GET' },
    { ...base, function: 'statuses', path: '/statuses', httpMethod: 'POST' },
    { ...base, function: 'getUserHz' }, // path and method from api.get
    { ...base, function: 'echoI64', path: '/echo/{v}' },
    { ...base, function: 'missing', path: '/missing' },
    { ...base, function: 'getUserResp' }, // GET /v3/users/:id from api.get
  ];
}

interface Answer {
  status: number;
  json: unknown;
  headers: HttpResponse['headers'];
}

async function send(
  gateway: ThriftGateway,
  method: string,
  target: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const init =
    body === undefined
      ? { headers }
      : {
          headers: { 'content-type': 'application/json', ...headers },
          body: fixedBody(typeof body === 'string' ? body : JSON.stringify(body)),
        };
  const res = await gateway.call(createRequest(method, target, init));
  const text = await readText(res.body);
  return { status: res.status, json: text === '' ? undefined : JSON.parse(text), headers: res.headers };
}

const fullUser = {
  id: '9007199254740993',
  name: 'Ada ✓',
  age: 36,
  status: 'DELETED',
  addresses: [{ city: 'Paris', zip: '75001' }],
  tags: ['a'],
  notes: { '3': 'three' },
  avatar: Buffer.from('png').toString('base64'),
  score: -0.5,
  admin: false,
  level: 7,
  rank: -3,
  contact: { email: 'ada@example.com' },
  groups: { ops: ['1', '-9223372036854775808'] },
  manager: { id: '2', age: 50, status: 'ACTIVE' },
};

interface Peer {
  name: string;
  framing: FramingName;
  protocol: ProtocolName;
  headers: boolean;
  start(): Promise<number>;
}

function pythonPeer(transport: 'framed' | 'header', protocol: ProtocolName): () => Promise<number> {
  return async () => {
    const child: ChildProcess = spawn(python, ['user_server.py', transport, protocol], {
      cwd: fileURLToPath(new URL('./python/', import.meta.url)),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    cleanups.push(() => child.kill());
    return new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.stdout?.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    });
  };
}

function npmPeer(kind: 'framed-binary' | 'framed-compact' | 'header'): () => Promise<number> {
  return async () => {
    const s = await startNpmUserServer(kind);
    cleanups.push(() => s.close());
    return s.port;
  };
}

const peers: Peer[] = [
  {
    name: 'npm framed binary',
    framing: 'framed',
    protocol: 'binary',
    headers: false,
    start: npmPeer('framed-binary'),
  },
  {
    name: 'npm framed compact',
    framing: 'framed',
    protocol: 'compact',
    headers: false,
    start: npmPeer('framed-compact'),
  },
  {
    name: 'npm THeader binary',
    framing: 'theader',
    protocol: 'binary',
    headers: true,
    start: npmPeer('header'),
  },
];
if (hasPython) {
  peers.push(
    {
      name: 'python framed binary',
      framing: 'framed',
      protocol: 'binary',
      headers: false,
      start: pythonPeer('framed', 'binary'),
    },
    {
      name: 'python framed compact',
      framing: 'framed',
      protocol: 'compact',
      headers: false,
      start: pythonPeer('framed', 'compact'),
    },
    {
      name: 'python THeader compact',
      framing: 'theader',
      protocol: 'compact',
      headers: true,
      start: pythonPeer('header', 'compact'),
    },
  );
} else {
  console.warn('gateway suite: /usr/bin/python3 is missing; the python3-thrift peers are skipped');
}

describe.each(peers)('behind the gateway: $name', (peer) => {
  async function gateway(extra: Partial<GatewayRouteOptions> = {}): Promise<ThriftGateway> {
    const port = await peer.start();
    return new ThriftGateway(routes(exchangeTo(port, peer.framing, peer.protocol), peer.protocol, extra));
  }

  it('GET with a path parameter; a declared exception as 422', async () => {
    const gw = await gateway();
    expect(await send(gw, 'GET', '/users/42')).toMatchObject({
      status: 200,
      json: { id: '42', name: 'user42', status: 'ACTIVE' },
    });
    expect(await send(gw, 'GET', '/users/404')).toMatchObject({
      status: 422,
      json: { exception: 'NotFound', what: 'user', id: '404' },
    });
  });

  it('a JSON body with every IDL type goes there and back', async () => {
    const gw = await gateway();
    const a = await send(gw, 'POST', '/users', { user: fullUser });
    expect(a.status).toBe(200);
    expect(a.json).toEqual(fullUser);
    expect(await send(gw, 'POST', '/users', { user: { id: 1, name: 'invalid' } })).toMatchObject({
      status: 422,
      json: { exception: 'Invalid', reason: 'bad name', fields: ['name'] },
    });
  });

  it('void, oneway and an inherited function (query parameter)', async () => {
    const gw = await gateway();
    expect((await send(gw, 'DELETE', '/users/7?hard=true')).status).toBe(204);
    expect((await send(gw, 'DELETE', '/users/404?hard=false')).json).toEqual({
      exception: 'NotFound',
      what: 'user',
      id: '404',
    });
    expect((await send(gw, 'POST', '/users/9/touch')).status).toBe(204);
    // The same connection, in order: the server saw the oneway call before this one.
    expect(await send(gw, 'GET', '/ping?text=hi')).toMatchObject({ status: 200, json: 'pong:hi:9' });
  });

  it('containers from repeated query parameters and from a body; i64 map keys', async () => {
    const gw = await gateway();
    const s = await send(gw, 'GET', '/search?q=ann&limit=2&statuses=ACTIVE&statuses=10');
    expect(s.json).toEqual([
      { id: '1', name: 'ann', status: 'ACTIVE' },
      { id: '2', name: 'ann', status: 'ACTIVE' },
    ]);
    // The IDL default (limit = 10) when the client sends none.
    expect(((await send(gw, 'GET', '/search?q=x')).json as unknown[]).length).toBe(10);
    expect(
      (await send(gw, 'POST', '/statuses', { ids: ['5', 9223372036854775807n.toString()] })).json,
    ).toEqual({
      '5': 'SUSPENDED',
      '9223372036854775807': 'SUSPENDED',
    });
  });

  it('Hertz annotations: api.get route, api.path, api.query, api.header', async () => {
    const gw = await gateway();
    expect(
      await send(gw, 'GET', '/v2/users/5?fields=name,age', undefined, { 'x-trace': 't-1' }),
    ).toMatchObject({
      status: 200,
      json: { id: '5', name: 'name,age|t-1' },
    });
    expect((await send(gw, 'POST', '/v2/users/5')).status).toBe(405);
  });

  it('Hertz response annotations: api.http_code, api.header, api.body', async () => {
    const a = await send(await gateway(), 'GET', '/v3/users/8');
    expect(a.status).toBe(203);
    expect(a.json).toEqual({ id: '8', userName: 'u8' });
    expect(a.headers.get('etag')).toBe('etag-8');
    expect(a.headers.get('x-version')).toBe('9007199254740993');
  });

  it('i64 as strings, or as numbers by option', async () => {
    expect((await send(await gateway(), 'GET', '/echo/-9223372036854775808')).json).toBe(
      '-9223372036854775808',
    );
  });

  it('i64 as numbers by option', async () => {
    const gw = await gateway({ i64AsNumber: true });
    const res = await gw.call(createRequest('GET', '/echo/9223372036854775807'));
    expect(await readText(res.body)).toBe('9223372036854775807');
  });

  it('a TApplicationException is a 502 with a JSON error', async () => {
    expect(await send(await gateway(), 'GET', '/missing')).toMatchObject({
      status: 502,
      json: { error: 'ERR_GATEWAY_UPSTREAM_APPLICATION', message: 'unknown missing', type: 1 },
    });
  });

  it.runIf(peer.headers)('selected headers travel as THeader info keys and back', async () => {
    const a = await send(await gateway(), 'GET', '/users/3', undefined, {
      'x-request-id': 'r-77',
      'x-other': 'no',
    });
    expect(a.status).toBe(200);
    expect(a.headers.get('x-request-id')).toBe('r-77');
  });
});

describe('failure paths', () => {
  const dead: ThriftExchange = {
    send: () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })),
  };
  const gw = new ThriftGateway(routes(dead, 'binary'));

  it('bad input is a 400 naming the path, before any upstream is asked', async () => {
    expect(await send(gw, 'POST', '/users', { user: { id: 1, emial: 'x' } })).toEqual({
      status: 400,
      json: { error: 'ERR_GATEWAY_BAD_VALUE', message: 'user.emial: unknown field', path: 'user.emial' },
      headers: expect.anything(),
    });
    expect((await send(gw, 'GET', '/users/abc')).json).toMatchObject({ path: 'id' });
    expect((await send(gw, 'POST', '/users', '{"user":')).json).toMatchObject({
      error: 'ERR_GATEWAY_BAD_JSON',
    });
    expect((await send(gw, 'POST', '/users', '[1]')).status).toBe(400);
    expect((await send(gw, 'POST', '/users', { user: {} })).json).toMatchObject({
      message: 'user.id: required field missing',
    });
    expect((await send(gw, 'GET', '/v2/users/x')).json).toMatchObject({ path: 'id' });
  });

  it('tells onRefused of each refused request: reason, code and path, never the value', async () => {
    const refusals: unknown[] = [];
    const told = new ThriftGateway(
      routes(dead, 'binary', { maxBodySize: 64, onRefused: (r) => refusals.push(r) }),
    );
    await send(told, 'POST', '/users', { user: { id: 1, emial: 'secret@x.y' } });
    await send(told, 'POST', '/users', '{"user":');
    await send(told, 'GET', '/users/abc');
    await send(told, 'POST', '/users', { user: {} });
    await send(told, 'POST', '/users', { user: { id: 1, name: 'x'.repeat(80) } });
    expect(refusals).toEqual([
      { reason: 'unknown_field', code: 'ERR_GATEWAY_BAD_VALUE', path: 'user.emial' },
      { reason: 'bad_json', code: 'ERR_GATEWAY_BAD_JSON', path: '' },
      { reason: 'bad_value', code: 'ERR_GATEWAY_BAD_VALUE', path: 'id' },
      { reason: 'bad_value', code: 'ERR_GATEWAY_BAD_VALUE', path: 'user.id' },
      { reason: 'body_too_large', code: 'ERR_GATEWAY_BODY_TOO_LARGE', path: '' },
    ]);
    // Answers and upstream failures are not refusals; a listener that throws changes no answer.
    const quiet = new ThriftGateway(
      routes(dead, 'binary', {
        onRefused: () => {
          throw new Error('listener');
        },
      }),
    );
    expect((await send(quiet, 'GET', '/users/1')).status).toBe(502);
    expect((await send(quiet, 'GET', '/users/abc')).status).toBe(400);
  });

  it('size, method and path', async () => {
    const small = new ThriftGateway(routes(dead, 'binary', { maxBodySize: 10 }));
    expect((await send(small, 'POST', '/users', { user: { id: 1, name: 'long enough' } })).status).toBe(413);
    const m = await send(gw, 'PUT', '/users/1');
    expect(m.status).toBe(405);
    expect(m.headers.get('allow')).toBe('GET, DELETE');
    expect((await send(gw, 'GET', '/nowhere')).status).toBe(404);
  });

  it('a refused upstream is a 502', async () => {
    // Below the ephemeral range: a closed listen(0) port could be another test's next listen(0).
    const port = await freePort('packages/gateway');
    const g = new ThriftGateway(routes(exchangeTo(port, 'framed', 'binary'), 'binary'));
    expect(await send(g, 'GET', '/users/1')).toMatchObject({
      status: 502,
      json: { error: 'ERR_GATEWAY_UPSTREAM_UNAVAILABLE' },
    });
    expect((await send(gw, 'GET', '/users/1')).status).toBe(502);
  });

  it('an upstream that never answers is a 504', async () => {
    const sockets: Socket[] = [];
    const server: Server = createServer((s) => sockets.push(s)); // accepts, answers nothing
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(resolve));
    });
    const port = (server.address() as { port: number }).port;
    const g = new ThriftGateway(routes(exchangeTo(port, 'framed', 'binary', 100), 'binary'));
    expect(await send(g, 'GET', '/users/1')).toMatchObject({
      status: 504,
      json: { error: 'ERR_GATEWAY_UPSTREAM_TIMEOUT' },
    });
  });

  it('a reply info value that is no valid header value is not answered as a header', async () => {
    const w = createWriter('binary');
    w.writeMessageBegin('echoI64', MessageType.REPLY, 0);
    w.writeStructBegin();
    w.writeFieldBegin(TType.I64, 0);
    w.writeI64(5n);
    w.writeFieldStop();
    w.writeStructEnd();
    const payload = w.finishCopy();
    const sneaky: ThriftExchange = {
      send: async () =>
        ({
          framing: 'theader',
          protocol: 'binary',
          seqId: 0,
          flags: 0,
          headers: new Map([['x-request-id', 'a\r\nset-cookie: stolen=1']]),
          intHeaders: new Map(),
          persistentHeaders: new Map(),
          aclToken: undefined,
          transforms: [],
          payload,
          wireLength: payload.byteLength,
        }) as never,
    };
    const a = await send(new ThriftGateway(routes(sneaky, 'binary')), 'GET', '/echo/5');
    expect(a.status).toBe(200);
    expect(a.json).toBe('5');
    expect(a.headers.get('x-request-id')).toBeUndefined();
    expect(a.headers.get('set-cookie')).toBeUndefined();
  });

  it('a reply that is not Thrift is a 502, not a crash', async () => {
    const liar: ThriftExchange = {
      send: async () =>
        ({
          framing: 'framed',
          protocol: 'binary',
          seqId: 0,
          flags: 0,
          headers: new Map(),
          intHeaders: new Map(),
          persistentHeaders: new Map(),
          aclToken: undefined,
          transforms: [],
          payload: new Uint8Array([0x80, 0x01, 0x00, 0x02, 0, 0, 0, 7, 0x67]),
        }) as never,
    };
    const g = new ThriftGateway(routes(liar, 'binary'));
    expect(await send(g, 'GET', '/users/1')).toMatchObject({
      status: 502,
      json: { error: 'ERR_GATEWAY_UPSTREAM_PROTOCOL' },
    });
  });
});

describe('over real HTTP sockets', () => {
  it('@loch/http serves the gateway to fetch', async () => {
    const s = await startNpmUserServer('framed-binary');
    cleanups.push(() => s.close());
    const gateway = new ThriftGateway(routes(exchangeTo(s.port, 'framed', 'binary'), 'binary'));
    const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime });
    const server = new HttpServer(gateway);
    void server.serve(listener);
    cleanups.push(() => server.close());
    const base = `http://127.0.0.1:${(listener.localAddress as { port: number }).port}`;
    const a = await fetch(`${base}/users/12`);
    expect(a.status).toBe(200);
    expect(a.headers.get('content-type')).toBe('application/json');
    expect(await a.json()).toEqual({ id: '12', name: 'user12', status: 'ACTIVE' });
    const b = await fetch(`${base}/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: fullUser }),
    });
    expect(await b.json()).toEqual(fullUser);
    const head = await fetch(`${base}/users/12`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(
      String('{"id":"12","name":"user12","status":"ACTIVE"}'.length),
    );
    expect(await head.text()).toBe('');
    const c = await fetch(`${base}/users`, { method: 'POST', body: '{"user":{"id":1,"emial":"x"}}' });
    expect(c.status).toBe(400);
    expect(((await c.json()) as { message: string }).message).toBe('user.emial: unknown field');
  });
});
