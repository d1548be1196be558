import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createHttp2Server } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeProxyHeader, V2_SIGNATURE } from '@loch/transports';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { selfSignedCertificate } from '../demo-certificate.js';
import { ActiveHealthChecker, activeHealthStats, checkOnce } from './active-checks.js';
import { normalizeHealthCheck } from './config.js';
import { HEALTH_SLOTS, SLOT_DOWN, SLOT_UP } from './health-flags.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

/** A node:http upstream whose /healthz answers `status.value`; counts checks and their fields. */
async function upstream(status: { value: number }) {
  const seen: { host?: string | undefined; ua?: string | undefined }[] = [];
  const server = createServer((req, res) => {
    seen.push({ host: req.headers.host, ua: req.headers['user-agent'] });
    res.statusCode = req.url === '/healthz' ? status.value : 404;
    res.end();
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, seen };
}

const config = (port: number, check: string, extraRoute = '') =>
  parseConfig(`
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8080" }

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${port}" }, { endpoint = "http://127.0.0.1:1" }]
${check}
${extraRoute}
`);

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(cond()).toBe(true);
}

describe('ActiveHealthChecker', () => {
  it('gives each checked upstream a slot, marks it down and up by thresholds, keeps it across updates', async () => {
    const status = { value: 200 };
    const up = await upstream(status);
    const flags = new Int32Array(HEALTH_SLOTS);
    const log: string[] = [];
    const checker = new ActiveHealthChecker(flags, {
      info: (m) => log.push(m),
      warn: (m) => log.push(m),
    });
    try {
      const check =
        'health_check = { path = "/healthz", interval = "100ms", unhealthy_threshold = 2, healthy_threshold = 1 }';
      const first = checker.update(config(up.port, check));
      const slots = first.servers[0]!.routes[0]!.healthSlots!;
      expect(slots).toEqual([0, 1]);
      // the dead second upstream goes down after two failures
      await until(() => flags[1] === SLOT_DOWN);
      expect(flags[0]).toBe(SLOT_UP);
      expect(up.seen[0]).toEqual({ host: `127.0.0.1:${up.port}`, ua: 'loch-health-check' });
      status.value = 500;
      await until(() => flags[0] === SLOT_DOWN);
      expect(log.some((m) => m.includes(`127.0.0.1:${up.port} is down: /healthz: status 500`))).toBe(true);
      // a reload with the same check keeps the targets, slots and verdicts
      const again = checker.update(
        config(
          up.port,
          check,
          '[[servers.web.routes]]\npath = "/x"\nupstreams = [{ endpoint = "http://127.0.0.1:2" }]',
        ),
      );
      expect(again.servers[0]!.routes[0]!.healthSlots).toEqual([0, 1]);
      expect(flags[0]).toBe(SLOT_DOWN);
      expect(activeHealthStats().map((t) => t.healthy)).toEqual([false, false]);
      status.value = 204;
      await until(() => flags[0] === SLOT_UP);
      // a config without the check: update stops nothing (the running workers still read the
      // slots); retain, once it runs, stops the checks and frees the slots (read healthy)
      const none = checker.update(config(up.port, ''));
      expect(none.servers[0]!.routes[0]!.healthSlots).toBeUndefined();
      expect(checker.stats()).toHaveLength(2);
      checker.retain(none);
      expect(flags[1]).toBe(SLOT_UP);
      expect(checker.stats()).toEqual([]);
    } finally {
      checker.close();
    }
  });
  it.each([
    ['v1', (first: Buffer) => expect(first.toString('latin1')).toMatch(/^PROXY UNKNOWN\r\nGET \/healthz /)],
    [
      'v2',
      (first: Buffer) => {
        expect(first.subarray(0, 12)).toEqual(Buffer.from(V2_SIGNATURE));
        expect(first[12]).toBe(0x20);
      },
    ],
  ] as const)(
    'checks an upstream with send_proxy_protocol = "%s" after that PROXY header',
    async (version, expectFirst) => {
      // The checker loads the header's encoder with its first such check (not with the module).
      const firsts: Buffer[] = [];
      const server = createNetServer((socket) => {
        // checker.close() may drop a check in flight: a reset here is the test's end, not a failure.
        socket.on('error', () => {});
        let got = Buffer.alloc(0);
        socket.on('data', (d: Buffer) => {
          got = Buffer.concat([got, d]);
          if (!got.includes('\r\n\r\n')) return;
          firsts.push(got);
          socket.end('HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n');
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const flags = new Int32Array(HEALTH_SLOTS);
      const checker = new ActiveHealthChecker(flags, { info: () => {}, warn: () => {} });
      try {
        const port = (server.address() as AddressInfo).port;
        checker.update(
          parseConfig(`
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8080" }

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${port}", send_proxy_protocol = "${version}" }]
health_check = { path = "/healthz", interval = "50ms", unhealthy_threshold = 1, healthy_threshold = 1 }
`),
        );
        await until(() => firsts.length >= 2);
        for (const first of firsts) expectFirst(first);
        expect(checker.stats()[0]).toMatchObject({ healthy: true, failures: 0 });
      } finally {
        checker.close();
        await new Promise((r) => server.close(r));
      }
    },
  );
});

describe('checkOnce', () => {
  const check = normalizeHealthCheck({ path: '/healthz', timeout: 200, expected_statuses: [204] }, (v, f) =>
    typeof v === 'number' ? v : f,
  )!;

  it('passes on an expected status, fails on another one or a refused connect', async () => {
    const status = { value: 204 };
    const up = await upstream(status);
    const address = {
      kind: 'tcp',
      host: '127.0.0.1',
      port: up.port,
      scheme: 'http',
      authority: 'h',
    } as const;
    expect(await checkOnce(address, check)).toBeNull();
    status.value = 200;
    expect(await checkOnce(address, check)).toBe('status 200');
    expect(await checkOnce({ ...address, port: 1 }, check)).toBe('ECONNREFUSED');
  });

  it('speaks h2c by prior knowledge to an HTTP/2 upstream (an h2c-only server refuses HTTP/1.1)', async () => {
    const server = createHttp2Server();
    const seen: (string | undefined)[] = [];
    server.on('stream', (stream, headers) => {
      seen.push(headers[':authority']);
      stream.respond({ ':status': headers[':path'] === '/healthz' ? 204 : 404 });
      stream.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const address = { kind: 'tcp', host: '127.0.0.1', port, scheme: 'http', authority: 'up:1' } as const;
      expect(await checkOnce(address, check, { http2: true })).toBeNull();
      expect(seen).toEqual(['up:1']);
      expect(await checkOnce(address, check, { http2: false })).not.toBeNull();
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('sends a PROXY LOCAL header first to an upstream that expects one', async () => {
    let first: Buffer | undefined;
    const server = createNetServer((socket) => {
      socket.on('error', () => {});
      let got = Buffer.alloc(0);
      socket.on('data', (d: Buffer) => {
        got = Buffer.concat([got, d]);
        first ??= got;
        if (got.includes('\r\n\r\n')) socket.end('HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const address = { kind: 'tcp', host: '127.0.0.1', port, scheme: 'http', authority: 'h' } as const;
      const header = encodeProxyHeader({ version: 2, source: null, destination: null });
      expect(await checkOnce(address, check, { proxyHeader: header })).toBeNull();
      expect(first!.subarray(0, 12)).toEqual(Buffer.from(V2_SIGNATURE));
      // LOCAL command (0x20), no address
      expect(first![12]).toBe(0x20);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('checks an https upstream over TLS, verifying it against the configured CA', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loch-health-tls-'));
    const cert = selfSignedCertificate(dir, 'up', ['up.test']);
    const server = createHttpsServer(
      { cert: readFileSync(cert.chain), key: readFileSync(cert.key) },
      (_req, res) => {
        res.statusCode = 204;
        res.end();
      },
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const base = { kind: 'tcp', host: '127.0.0.1', port, scheme: 'https', authority: 'up.test' } as const;
      const tls = { verify: true, ca: cert.chain, serverName: 'up.test' };
      expect(await checkOnce({ ...base, tls }, check)).toBeNull();
      // the wrong name fails verification
      expect(await checkOnce({ ...base, tls: { ...tls, serverName: 'other.test' } }, check)).toBe(
        'ERR_TLS_CERT_ALTNAME_INVALID',
      );
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
