/**
 * `loch run` as an HTTP/JSON -> Thrift gateway (issue 19), end to end on every available
 * driver: the issue's config spelling, in front of the npm thrift and python3-thrift
 * UserService peers of @loch/gateway's own suite (framed binary, THeader compact with a
 * forwarded header); GET/DELETE of one path to two functions, a JSON body, a declared
 * exception (422), bad input (400 naming the path), a refused upstream (502), a silent one
 * (504), a plain proxied route beside the gateway ones, the access log, and a reload that
 * loads a changed IDL and route.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// The UserService peers and IDL that @loch/gateway's tests run against.
import { startNpmUserServer } from '../../../../packages/gateway/test/peers/npm-user-server.js';
import { hasPython } from '../thrift/peers.js';
import {
  availableDrivers,
  freePort,
  type Loch,
  silentUpstream,
  startLoch,
  tempDir,
  waitConnectable,
} from './harness.js';

const fixtures = fileURLToPath(new URL('../../../../packages/gateway/test/', import.meta.url));
const drivers = availableDrivers();

async function pythonPeer(): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn('/usr/bin/python3', ['user_server.py', 'header', 'compact'], {
    cwd: join(fixtures, 'python'),
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.stdout?.setEncoding('utf8').once('data', (d: string) => resolve(Number.parseInt(d, 10)));
  });
  return { port, child };
}

describe.each(drivers)('loch as an HTTP/JSON -> Thrift gateway (driver %s)', (driver) => {
  let npm: Awaited<ReturnType<typeof startNpmUserServer>>;
  let py: { port: number; child: ChildProcess } | undefined;
  let silent: Awaited<ReturnType<typeof silentUpstream>>;
  let loch: Loch;
  let base: string;
  let dir: string;
  let config: (extra: string) => string;

  beforeAll(async () => {
    npm = await startNpmUserServer('framed-binary');
    if (hasPython) py = await pythonPeer();
    silent = await silentUpstream();
    const port = await freePort();
    const down = await freePort();
    dir = tempDir('loch-gateway-e2e-');
    copyFileSync(join(fixtures, 'idl/user.thrift'), join(dir, 'user.thrift'));
    copyFileSync(join(fixtures, 'idl/shared.thrift'), join(dir, 'shared.thrift'));
    const upstream = `upstream = { type = "socket", value = "127.0.0.1:${npm.port}" }`;
    config = (extra) => `
[runtime]
workers = 1

[servers.gw]
listener = { type = "socket", value = "127.0.0.1:${port}" }
access_log = true

[[servers.gw.routes]]
path = "/users/{id}"
method = "GET"
thrift = { idl = "user.thrift", service = "UserService", method = "getUser", ${upstream} }

[[servers.gw.routes]]
path = "/users/{id}"
method = "DELETE"
thrift = { idl = "user.thrift", service = "UserService", method = "deleteUser", ${upstream} }

[[servers.gw.routes]]
path = "/users"
method = "POST"
thrift = { idl = "user.thrift", service = "UserService", method = "createUser", ${upstream} }

[[servers.gw.routes]]
path = "/down/{id}"
thrift = { idl = "user.thrift", service = "UserService", method = "getUser", upstream = "127.0.0.1:${down}" }

[[servers.gw.routes]]
path = "/slow/{id}"
thrift = { idl = "user.thrift", service = "UserService", method = "getUser", upstream = "127.0.0.1:${silent.port}", timeout = "300ms" }
${
  py === undefined
    ? ''
    : `
[[servers.gw.routes]]
path = "/py/users/{id}"
thrift = { idl = "user.thrift", service = "UserService", method = "getUser", upstream = "127.0.0.1:${py.port}", framing = "theader", protocol = "compact", headers = ["x-request-id"] }
`
}
${extra}
`;
    loch = await startLoch(dir, config(''), { LOCH_DRIVER: driver });
    await waitConnectable({ port });
    base = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    // The python peer first: nothing below may keep it alive if a stop hangs.
    py?.child.kill();
    await loch?.stop();
    await Promise.all([npm?.close(), silent?.close()]);
  });

  it('maps method and path to service functions', async () => {
    const a = await fetch(`${base}/users/42`);
    expect(a.status).toBe(200);
    expect(await a.json()).toEqual({ id: '42', name: 'user42', status: 'ACTIVE' });
    expect((await fetch(`${base}/users/7?hard=true`, { method: 'DELETE' })).status).toBe(204);
    const nf = await fetch(`${base}/users/404`);
    expect(nf.status).toBe(422);
    expect(await nf.json()).toEqual({ exception: 'NotFound', what: 'user', id: '404' });
    const put = await fetch(`${base}/users/1`, { method: 'PUT' });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, DELETE');
  });

  it('takes a JSON body and rejects bad input with the path', async () => {
    const user = {
      id: '9007199254740993',
      name: 'Ada',
      tags: ['x'],
      notes: { '1': 'one' },
      contact: { email: 'a@b' },
    };
    const ok = await fetch(`${base}/users`, { method: 'POST', body: JSON.stringify({ user }) });
    expect(await ok.json()).toEqual({ ...user, age: 18, status: 'ACTIVE' });
    const bad = await fetch(`${base}/users`, {
      method: 'POST',
      body: JSON.stringify({ user: { id: 1, emial: 'x' } }),
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ message: 'user.emial: unknown field' });
  });

  it('a refused upstream is a 502, a silent one a 504, and the worker serves on', async () => {
    const down = await fetch(`${base}/down/1`);
    expect(down.status).toBe(502);
    expect(await down.json()).toMatchObject({ error: 'ERR_GATEWAY_UPSTREAM_UNAVAILABLE' });
    const slow = await fetch(`${base}/slow/1`);
    expect(slow.status).toBe(504);
    expect((await fetch(`${base}/users/1`)).status).toBe(200);
  });

  it.runIf(hasPython)(
    'speaks THeader compact to python3-thrift and forwards a header both ways',
    async () => {
      const a = await fetch(`${base}/py/users/5`, { headers: { 'x-request-id': 'req-9' } });
      expect(await a.json()).toEqual({ id: '5', name: 'user5', status: 'ACTIVE' });
      expect(a.headers.get('x-request-id')).toBe('req-9');
    },
  );

  it('writes access log lines for gateway requests', async () => {
    await fetch(`${base}/users/43`);
    await expect.poll(() => loch.stdout()).toMatch(/GET \/users\/43 .*200/);
  });

  it('a reload loads the changed IDL and routes', async () => {
    expect((await fetch(`${base}/ping?text=a`)).status).toBe(404);
    const mark = loch.stderr().length;
    writeFileSync(
      join(dir, 'user.thrift'),
      `${(await import('node:fs')).readFileSync(join(fixtures, 'idl/user.thrift'), 'utf8')}\nservice Extra extends UserService {}\n`,
    );
    writeFileSync(
      loch.configPath,
      config(`
[[servers.gw.routes]]
path = "/ping"
thrift = { idl = "user.thrift", service = "Extra", method = "ping", upstream = "127.0.0.1:${npm.port}" }
`),
    );
    await loch.waitFor(/reloaded/, mark);
    const p = await fetch(`${base}/ping?text=a`);
    expect(p.status).toBe(200);
    expect(await p.json()).toMatch(/^pong:a:/);
  });
});
