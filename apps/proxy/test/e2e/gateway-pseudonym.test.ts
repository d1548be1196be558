/**
 * `loch run` as an HTTP/JSON -> Thrift gateway with `pseudonymize` (issue 19), end to end on
 * every available driver, in front of the npm thrift UserService peer (framed binary, and
 * framed compact): with `direction = "upstream"` the upstream receives a token for the chosen
 * request field (its echo shows it) and the client gets its value back where the reply field is
 * chosen too; with `direction = "downstream"` the client gets tokens, sends them back (the
 * upstream gets the value), and a value that is not a token, a rotated-away key id or a token
 * of another field is a 400 naming the JSON path, never forwarded. Refusals (those, an unknown
 * field, bad JSON) are counted in loch_gateway_refusals_total by reason and the pseudonym ones
 * logged (warn) with route, path and code, never the value.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pseudonymizer, PseudonymKeyring } from '@loch/gateway';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNpmUserServer } from '../../../../packages/gateway/test/peers/npm-user-server.js';
import { gatewayDir } from './gateway-site.js';
import { availableDrivers, freePort, type Loch, startLoch, waitConnectable } from './harness.js';

const drivers = availableDrivers();
const key = Buffer.alloc(64, 0x5a);
const NAME_UP = 'UserService.createUser.args.user.name';
const ours = new Pseudonymizer(new PseudonymKeyring([{ id: 'gw1', key }]));
const stranger = new Pseudonymizer(new PseudonymKeyring([{ id: 'gw0', key: Buffer.alloc(64, 1) }]));

describe.each(drivers)('loch gateway pseudonymization (driver %s)', (driver) => {
  let binary: Awaited<ReturnType<typeof startNpmUserServer>>;
  let compact: Awaited<ReturnType<typeof startNpmUserServer>>;
  let loch: Loch;
  let base: string;
  let adminPort: number;

  beforeAll(async () => {
    binary = await startNpmUserServer('framed-binary');
    compact = await startNpmUserServer('framed-compact');
    const port = await freePort();
    adminPort = await freePort();
    const dir = gatewayDir('loch-gateway-pseudonym-');
    writeFileSync(join(dir, 'gw1.key'), key.toString('base64'));
    const keys = 'keys = [{ id = "gw1", file = "gw1.key" }]';
    const up = (p: number, protocol: string) => `upstream = "127.0.0.1:${p}", protocol = "${protocol}"`;
    const routes = (prefix: string, p: number, protocol: string) => `
[[servers.gw.routes]]
path = "${prefix}/up/users"
method = "POST"
thrift = { idl = "user.thrift", service = "UserService", method = "createUser", ${up(p, protocol)}, pseudonymize = { direction = "upstream", ${keys}, fields = ["${NAME_UP}"] } }

[[servers.gw.routes]]
path = "${prefix}/roundtrip/users"
method = "POST"
thrift = { idl = "user.thrift", service = "UserService", method = "createUser", ${up(p, protocol)}, pseudonymize = { direction = "upstream", ${keys}, fields = [{ path = "${NAME_UP}", domain = "names" }, { path = "UserService.createUser.result.success.name", domain = "names" }] } }

[[servers.gw.routes]]
path = "${prefix}/down/users/{id}"
method = "GET"
thrift = { idl = "user.thrift", service = "UserService", method = "getUser", ${up(p, protocol)}, pseudonymize = { direction = "downstream", ${keys}, fields = [{ path = "UserService.getUser.result.success.name", domain = "user-name" }] } }

[[servers.gw.routes]]
path = "${prefix}/down/users"
method = "POST"
thrift = { idl = "user.thrift", service = "UserService", method = "createUser", ${up(p, protocol)}, pseudonymize = { direction = "downstream", ${keys}, fields = [{ path = "${NAME_UP}", domain = "user-name" }] } }
`;
    loch = await startLoch(
      dir,
      `
[runtime]
workers = 1

[admin]
listener = { type = "socket", value = "127.0.0.1:${adminPort}" }

[servers.gw]
listener = { type = "socket", value = "127.0.0.1:${port}" }
${routes('', binary.port, 'binary')}
${routes('/compact', compact.port, 'compact')}
`,
      { LOCH_DRIVER: driver },
    );
    await waitConnectable({ port });
    base = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await loch?.stop();
    await Promise.all([binary?.close(), compact?.close()]);
  });

  const post = (path: string, body: unknown) =>
    fetch(`${base}${path}`, { method: 'POST', body: JSON.stringify(body) });

  for (const prefix of ['', '/compact']) {
    it(`direction upstream${prefix}: the upstream gets a token; a chosen reply field comes back opened`, async () => {
      const user = { id: '1', name: 'Alice Example' };
      const echoed = (await (await post(`${prefix}/up/users`, { user })).json()) as { name: string };
      expect(echoed.name).toMatch(/^pn1\.gw1\./);
      expect(ours.reveal(NAME_UP, echoed.name)).toBe('Alice Example');
      // The reply field shares the request field's domain, so the upstream's echo opens.
      const back = await post(`${prefix}/roundtrip/users`, { user });
      expect(back.status).toBe(200);
      expect(await back.json()).toMatchObject(user);
    });

    it(`direction downstream${prefix}: tokens out, tokens back in, bad ones are 400s with the path`, async () => {
      const got = await fetch(`${base}${prefix}/down/users/42`);
      const name = ((await got.json()) as { name: string }).name;
      expect(ours.reveal('user-name', name)).toBe('user42');
      // The same domain on the request field: the client hands the token back, the upstream gets the value.
      const echo = await post(`${prefix}/down/users`, { user: { id: '42', name } });
      expect(echo.status).toBe(200);
      // The upstream's echo (this route chooses no reply field) shows it got the value.
      expect(((await echo.json()) as { name: string }).name).toBe('user42');
      for (const [bad, code] of [
        ['user42', 'ERR_PSEUDONYM_TOKEN'],
        [stranger.pseudonymize('user-name', 'user42'), 'ERR_PSEUDONYM_UNKNOWN_KEY'],
        [ours.pseudonymize(NAME_UP, 'user42'), 'ERR_PSEUDONYM_INVALID'],
      ] as const) {
        const res = await post(`${prefix}/down/users`, { user: { id: '1', name: bad } });
        expect(res.status).toBe(400);
        const body = (await res.json()) as { error: string; path: string; message: string };
        expect(body).toMatchObject({ error: 'ERR_GATEWAY_PSEUDONYM', path: 'user.name' });
        expect(body.message).toContain(code);
        expect(body.message).not.toContain(bad);
      }
    });
  }

  it('counts refusals by reason and logs the pseudonym ones without their values', async () => {
    expect((await post('/down/users', { user: { id: '1', emial: 'x' } })).status).toBe(400);
    const bad = await fetch(`${base}/down/users`, { method: 'POST', body: '{"user":' });
    expect(bad.status).toBe(400);
    const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    const refusals = (reason: string) =>
      Number(
        text
          .split('\n')
          .find((l) => l.startsWith(`loch_gateway_refusals_total{server="gw",reason="${reason}"}`))
          ?.split(' ')
          .pop(),
      );
    // Three bad tokens per protocol (the tests above), one unknown field, one bad JSON.
    expect(refusals('pseudonym_request')).toBe(6);
    expect(refusals('unknown_field')).toBe(1);
    expect(refusals('bad_json')).toBe(1);
    expect(refusals('pseudonym_reply')).toBe(0);
    // The answers count on their route's series, not as unrouted requests.
    const requests = (route: string, code: string) =>
      Number(
        text
          .split('\n')
          .find((l) => l.startsWith(`loch_http_requests_total{server="gw",route="${route}",code="${code}"}`))
          ?.split(' ')
          .pop(),
      );
    expect(requests('/down/users', '4xx')).toBe(5); // three bad tokens, the unknown field, the bad JSON
    expect(requests('', '4xx')).toBe(0);
    const log = loch.stderr() + loch.stdout();
    expect(log).toContain(
      'gw: UserService.createUser: refused the request at user.name: pseudonym_request (ERR_PSEUDONYM_UNKNOWN_KEY)',
    );
    expect(log).not.toContain(stranger.pseudonymize('user-name', 'user42'));
  });
});
