/**
 * `loch run`'s gateway (issue 19) with a prefix route and IDL file watching, end to end on
 * every available driver, in front of the npm thrift UserService peer: `path = "/api/"` with no
 * `thrift.method` serves every function of the service (annotated ones at their `api.<method>`
 * path under the prefix, the others at `POST /api/<function>`), 404 and 405 inside the prefix;
 * a changed IDL file (nothing else changed) reloads the route, and an IDL that no longer parses
 * keeps the running one and logs its file and line; a changed include (shared.thrift) reloads
 * too.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNpmUserServer } from '../../../../packages/gateway/test/peers/npm-user-server.js';
import { gatewayFixtures as fixtures, type Gateway, startGateway } from './gateway-site.js';
import { availableDrivers } from './harness.js';

const drivers = availableDrivers();

describe.each(drivers)('loch gateway prefix routes and IDL watching (driver %s)', (driver) => {
  let npm: Awaited<ReturnType<typeof startNpmUserServer>>;
  let loch: Gateway['loch'];
  let base: string;
  let dir: string;
  let idl: string;

  beforeAll(async () => {
    npm = await startNpmUserServer('framed-binary');
    idl = readFileSync(join(fixtures, 'idl/user.thrift'), 'utf8');
    ({ loch, base, dir } = await startGateway(
      driver,
      'loch-gateway-prefix-',
      `
[[servers.gw.routes]]
path = "/api/"
thrift = { idl = "user.thrift", service = "UserService", upstream = "127.0.0.1:${npm.port}" }
`,
    ));
  });

  afterAll(async () => {
    await loch?.stop();
    await npm?.close();
  });

  const post = (path: string, body: unknown) =>
    fetch(`${base}${path}`, { method: 'POST', body: JSON.stringify(body) });

  it('a prefix route serves every function of the service', async () => {
    const get = await post('/api/getUser', { id: '42' });
    expect(get.status).toBe(200);
    expect(await get.json()).toEqual({ id: '42', name: 'user42', status: 'ACTIVE' });
    // Inherited from shared.Base.
    expect(await (await post('/api/ping', { text: 'a' })).json()).toMatch(/^pong:a:/);
    // Annotated: api.get = "/v2/users/:id", under the prefix.
    const hz = await fetch(`${base}/api/v2/users/5?fields=n`, { headers: { 'x-trace': 't' } });
    expect(hz.status).toBe(200);
    expect(await hz.json()).toEqual({ id: '5', name: 'n|t', status: 'ACTIVE' });
    // Inside the prefix but no function: 404; the wrong method: 405 with Allow.
    const none = await post('/api/nope', {});
    expect(none.status).toBe(404);
    expect(await none.json()).toMatchObject({ error: 'ERR_GATEWAY_NO_ROUTE' });
    const wrong = await fetch(`${base}/api/getUser`);
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('POST');
    expect((await fetch(`${base}/other`)).status).toBe(404);
  });

  it('a changed IDL reloads the route; a broken one keeps it and names file and line', async () => {
    const before = (await (await post('/api/createUser', { user: { id: '1' } })).json()) as { age: number };
    expect(before.age).toBe(18); // DEFAULT_AGE
    let mark = loch.stderr().length;
    writeFileSync(
      join(dir, 'user.thrift'),
      idl.replace('const i32 DEFAULT_AGE = 18', 'const i32 DEFAULT_AGE = 21'),
    );
    await loch.waitFor(/reloaded/, mark);
    const after = (await (await post('/api/createUser', { user: { id: '1' } })).json()) as { age: number };
    expect(after.age).toBe(21);

    mark = loch.stderr().length;
    const broken = `${idl.replace('const i32 DEFAULT_AGE = 18', 'const i32 DEFAULT_AGE = 21')}\nstruct Broken {\n  1: Nope x\n}\n`;
    const line = broken.split('\n').findIndex((l) => l.includes('1: Nope x')) + 1;
    writeFileSync(join(dir, 'user.thrift'), broken);
    await loch.waitFor(/failed, keeping the running config/, mark);
    expect(loch.stderr().slice(mark)).toContain(`${join(dir, 'user.thrift')}:${line}: unknown type Nope`);
    const still = await post('/api/createUser', { user: { id: '1' } });
    expect(still.status).toBe(200);
    expect(((await still.json()) as { age: number }).age).toBe(21);
  });

  it('a changed include reloads the route: a function added to the included base service is served', async () => {
    // The test above left user.thrift broken: mend it first.
    let mark = loch.stderr().length;
    writeFileSync(join(dir, 'user.thrift'), idl);
    await loch.waitFor(/reloaded/, mark);
    expect((await post('/api/pong', { text: 'a' })).status).toBe(404);
    mark = loch.stderr().length;
    const shared = readFileSync(join(fixtures, 'idl/shared.thrift'), 'utf8');
    writeFileSync(
      join(dir, 'shared.thrift'),
      shared.replace(
        'string ping(1: string text)',
        'string ping(1: string text)\n  string pong(1: string text)',
      ),
    );
    await loch.waitFor(/reloaded/, mark);
    // Routed now; the npm peer has no pong, so its TApplicationException comes back as a 502.
    const pong = await post('/api/pong', { text: 'a' });
    expect(pong.status).toBe(502);
    expect(await pong.json()).toMatchObject({ error: 'ERR_GATEWAY_UPSTREAM_APPLICATION' });
  });
});
