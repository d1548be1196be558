/**
 * HTTP/1.1 request-target and method handling of `loch run` on the wire (RFC 9110 §9.1, RFC 9112
 * §3.2, RFC 3986 §6.2.2), on every available driver: raw request bytes in, the proxy's bytes
 * out, and what the upstream received (nginx echoes its request URI and Host; a raw upstream
 * echoes the forwarded head byte for byte). Extension methods are forwarded and CONNECT is a
 * 405; an absolute-form target's authority is routed on and becomes the forwarded Host; paths
 * are normalized before routing and forwarded normalized; Host must be there, once, not empty.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  availableDrivers,
  freePort,
  headEchoUpstream,
  type Loch,
  type Nginx,
  rawExchange,
  startLoch,
  startNginx,
  tempDir,
} from './harness.js';

const drivers = availableDrivers();

/** An answer taken apart: status line, fields (lowercase names; repeated ones joined), body. */
interface Answer {
  readonly raw: string;
  readonly status: string;
  readonly fields: Record<string, string>;
  readonly body: string;
  /** Bytes after the first answer (a second response would be a smuggling symptom). */
  readonly rest: string;
}

function parseAnswer(raw: string): Answer {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return { raw, status: raw, fields: {}, body: '', rest: '' };
  const [status, ...lines] = raw.slice(0, end).split('\r\n');
  const fields: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    fields[name] = fields[name] === undefined ? value : `${fields[name]}, ${value}`;
  }
  const length = Number(fields['content-length'] ?? '0');
  const body = raw.slice(end + 4, end + 4 + length);
  return { raw, status: status!, fields, body, rest: raw.slice(end + 4 + length) };
}

describe.each(drivers)('RFC 9112 request targets (driver %s)', (driver) => {
  let nginx: Nginx;
  let heads: Awaited<ReturnType<typeof headEchoUpstream>>;
  let loch: Loch;
  let port: number;
  let slashesPort: number;
  let dir: string;

  /** Sends one request (its head lines without the final CRLF CRLF; `Connection: close` is added). */
  async function ask(head: string, to = port): Promise<Answer> {
    return parseAnswer(await rawExchange(to, `${head}\r\nConnection: close\r\n\r\n`));
  }

  /** Expects one small error answer from the proxy itself, and nothing after it. */
  function expectRefused(a: Answer, status: number, code: string): void {
    expect(a.status).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
    expect(a.fields['content-type']).toBe('text/plain; charset=utf-8');
    expect(a.body).toBe(`${status} ${code}\n`);
    expect(a.fields.via).toBeUndefined();
    expect(a.rest).toBe('');
  }

  beforeAll(async () => {
    dir = tempDir('loch-proxy-rfc9112-');
    nginx = await startNginx(['A', 'B']);
    heads = await headEchoUpstream();
    port = await freePort();
    slashesPort = await freePort();
    const [a, b] = nginx.ports;
    loch = await startLoch(
      dir,
      `
[runtime]
workers = 1

[log]
level = "info"

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }

[[servers.web.routes]]
path = "/api/"
upstreams = [{ endpoint = "http://127.0.0.1:${a}" }]

[[servers.web.routes]]
path = "/admin/"
upstreams = [{ endpoint = "http://127.0.0.1:${b}" }]

[[servers.web.routes]]
path = "/"
host = "b.example"
upstreams = [{ endpoint = "http://127.0.0.1:${b}" }]

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${heads.port}" }]

[servers.slashes]
listener = { type = "socket", value = "127.0.0.1:${slashesPort}" }
allow_encoded_slashes = true

[[servers.slashes.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${a}" }]
`,
      { LOCH_DRIVER: driver },
    );
    expect(loch.stderr()).toContain(`driver ${driver}`);
  }, 60_000);

  afterAll(async () => {
    let code: number | null | undefined;
    try {
      code = await loch?.stop();
    } finally {
      await Promise.all([nginx?.stop(), heads?.close()]);
      rmSync(dir, { recursive: true, force: true });
    }
    expect(code).toBe(0);
  }, 30_000);

  it('forwards extension methods (any token) with their request line intact', async () => {
    for (const method of ['FOO', 'MKCOLA', 'PURGE', 'X-Custom.1~']) {
      const a = await ask(`${method} /m/x?y=1 HTTP/1.1\r\nHost: h`);
      expect(a.status).toBe('HTTP/1.1 200 OK');
      expect(a.fields.via).toBe('1.1 loch');
      expect(a.body).toMatch(new RegExp(`^${method.replace('.', '\\.')} /m/x\\?y=1 HTTP/1\\.1\\n`));
      expect(a.body).toMatch(/\nhost: h\n/i);
    }
    // with a body
    const post = parseAnswer(
      await rawExchange(
        port,
        'BREW /pot HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc',
      ),
    );
    expect(post.status).toBe('HTTP/1.1 200 OK');
    expect(post.body).toMatch(/^BREW \/pot HTTP\/1\.1\n(.*\n)*content-length: 3\n/i);
  });

  it('answers CONNECT with 405 and Allow, and closes', async () => {
    const raw = await rawExchange(port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    const a = parseAnswer(raw);
    expectRefused(a, 405, 'ERR_LOCH_METHOD_NOT_ALLOWED');
    expect(a.fields.allow).toBe('GET, HEAD, POST, PUT, DELETE, OPTIONS, TRACE, PATCH');
    expect(a.fields.connection).toBe('close');
  });

  it('routes an absolute-form target on its authority and forwards that authority as Host', async () => {
    // the received Host is ignored (RFC 9112 §3.2.2); host routing picks b.example's route
    const b = await ask('GET http://b.example:8080/x?q=1 HTTP/1.1\r\nHost: a.example');
    expect(b.status).toBe('HTTP/1.1 200 OK');
    expect(b.body).toMatch(/^B \/x\?q=1 host=b\.example:8080 .*xfh=b\.example:8080 /);
    // the scheme is case-insensitive; https targets too; no path is "/"
    const upper = await ask(`GET HTTP://127.0.0.1:${port}/api/y HTTP/1.1\r\nHost: elsewhere`);
    expect(upper.body).toMatch(new RegExp(`^A /api/y host=127\\.0\\.0\\.1:${port} `));
    const https = await ask('GET https://b.example HTTP/1.1\r\nHost: b.example');
    expect(https.body).toMatch(/^B \/ host=b\.example /);
    // HTTP/1.0 without Host: the authority is forwarded as Host
    const old = await ask('GET http://b.example/old HTTP/1.0');
    expect(old.body).toMatch(/^B \/old host=b\.example /);
    // the forwarded request line is in origin form, the Host field is the authority, once
    const raw = await ask('GET http://raw.example:81/r?s=%2F HTTP/1.1\r\nHost: wrong.example');
    expect(raw.body).toMatch(/^GET \/r\?s=%2F HTTP\/1\.1\n/);
    expect(raw.body.match(/\nhost: /gi)).toHaveLength(1);
    expect(raw.body).toMatch(/\nhost: raw\.example:81\n/i);
    expect(raw.body).not.toContain('wrong.example');
  });

  it('answers 400 for an absolute-form target with an empty Host, userinfo, another scheme or no host', async () => {
    expectRefused(await ask('GET http://localhost/x HTTP/1.1\r\nHost: '), 400, 'ERR_LOCH_BAD_HOST');
    expectRefused(
      await ask('GET http://a:b@localhost/x HTTP/1.1\r\nHost: localhost'),
      400,
      'ERR_LOCH_BAD_HOST',
    );
    expectRefused(await ask('GET http://:80/x HTTP/1.1\r\nHost: localhost'), 400, 'ERR_LOCH_BAD_HOST');
    expectRefused(await ask('GET ftp://localhost/x HTTP/1.1\r\nHost: localhost'), 400, 'ERR_LOCH_BAD_TARGET');
    expectRefused(await ask('GET ws://localhost/x HTTP/1.1\r\nHost: localhost'), 400, 'ERR_LOCH_BAD_TARGET');
  });

  it('routes and forwards the normalized path: encoded dot segments cannot bypass a route', async () => {
    // "/api/%2e%2e/admin/x" is "/admin/x": the /admin/ route (B), not /api/ (A)
    for (const dots of ['%2e%2e', '%2E%2E', '.%2e', '%2e.']) {
      const a = await ask(`GET /api/${dots}/admin/x HTTP/1.1\r\nHost: h`);
      expect(a.status).toBe('HTTP/1.1 200 OK');
      expect(a.body).toMatch(/^B \/admin\/x host=h /);
    }
    // unreserved escapes decoded, the others uppercased, the query untouched
    const a = await ask('GET /api/%7euser/caf%c3%a9/%41%2d%5F/%3a?q=%2e%2e/%7e HTTP/1.1\r\nHost: h');
    expect(a.body).toMatch(/^A \/api\/~user\/caf%C3%A9\/A-_\/%3A\?q=%2e%2e\/%7e host=h /);
    // exactly those bytes go upstream
    const raw = await ask('GET /x/%2e/%7E%25 HTTP/1.1\r\nHost: h');
    expect(raw.body).toMatch(/^GET \/x\/~%25 HTTP\/1\.1\n/);
  });

  it('answers 400 for an encoded slash or NUL, a malformed escape, a path above the root and a fragment', async () => {
    expectRefused(await ask('GET /api/a%2fb HTTP/1.1\r\nHost: h'), 400, 'ERR_LOCH_ENCODED_SLASH');
    expectRefused(await ask('GET /api/..%2F..%2Fadmin HTTP/1.1\r\nHost: h'), 400, 'ERR_LOCH_ENCODED_SLASH');
    expectRefused(await ask('GET /api/a%00 HTTP/1.1\r\nHost: h'), 400, 'ERR_LOCH_BAD_PATH');
    expectRefused(await ask('GET /api/a%zz HTTP/1.1\r\nHost: h'), 400, 'ERR_LOCH_BAD_PATH');
    expectRefused(await ask('GET /api/a%4 HTTP/1.1\r\nHost: h'), 400, 'ERR_LOCH_BAD_PATH');
    expectRefused(await ask('GET /%2e%2e/etc/passwd HTTP/1.1\r\nHost: h'), 400, 'ERR_LOCH_BAD_PATH');
    expectRefused(await ask('GET /api/../../x HTTP/1.1\r\nHost: h'), 400, 'ERR_LOCH_BAD_PATH');
    expectRefused(await ask('GET /api/x#frag HTTP/1.1\r\nHost: h'), 400, 'ERR_LOCH_BAD_TARGET');
    expectRefused(await ask('OPTIONS * HTTP/1.1\r\nHost: h'), 400, 'ERR_LOCH_BAD_TARGET');
  });

  it('keeps encoded slashes (encoded, uppercased) where allow_encoded_slashes is set', async () => {
    const a = await ask('GET /a%2fb/..%2f/%2e%2e/c HTTP/1.1\r\nHost: h', slashesPort);
    expect(a.status).toBe('HTTP/1.1 200 OK');
    expect(a.body).toMatch(/^A \/a%2Fb\/c host=h /);
    expectRefused(await ask('GET /a%00 HTTP/1.1\r\nHost: h', slashesPort), 400, 'ERR_LOCH_BAD_PATH');
  });

  it('never forwards an HTTP/1.1 request without Host, with two, or with an empty one', async () => {
    const missing = await ask('GET /api/x HTTP/1.1');
    expect(missing.status).toMatch(/^HTTP\/1\.1 400 /);
    expect(missing.body).toContain('ERR_HTTP_MISSING_HOST');
    const twice = await ask('GET /api/x HTTP/1.1\r\nHost: a\r\nHost: a');
    expect(twice.status).toMatch(/^HTTP\/1\.1 400 /);
    expect(twice.body).toContain('ERR_HTTP_DUPLICATE_HOST');
    expectRefused(await ask('GET /api/x HTTP/1.1\r\nHost: '), 400, 'ERR_LOCH_BAD_HOST');
    // HTTP/1.0 needs none; the upstream hop is HTTP/1.1, so it gets the upstream's authority
    const old = await ask('GET /api/x HTTP/1.0');
    expect(old.status).toBe('HTTP/1.1 200 OK');
    expect(old.body).toMatch(new RegExp(`^A /api/x host=127\\.0\\.0\\.1:${nginx.ports[0]} `));
    // none of these reached an upstream: the next request on the server is answered normally
    expect((await ask('GET /api/after HTTP/1.1\r\nHost: h')).body).toMatch(/^A \/api\/after /);
  });
});
