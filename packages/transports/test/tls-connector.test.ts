/**
 * TlsConnector under HttpConnector against a real node:https server, on every runtime driver:
 * verification against a CA file (and its failures: an unknown CA, a wrong server name, both
 * typed ConnectErrors ERR_TRANSPORT_TLS_FAILED with the TLS error as cause), `verify: false` by
 * explicit choice, pooled reuse of a TLS connection, http endpoints passing through, and pool
 * keys that keep connections of different TLS profiles apart.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequest, readText } from '@loch/http';
import { TlsCertificateError } from '@loch/tls';
import { ConnectError, type Endpoint, endpoint, HttpConnector, UnifiedL4Connector } from '@loch/transports';
import { TlsConnector } from '@loch/transports/tls';
import { createRuntime, type Runtime } from '@loch/uring-runtime';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { driverCases, pki } from './harness.js';

const drivers = await driverCases();

let dir: string;
let server: https.Server;
let port: number;
let caFile: string;
let connections = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'loch-tls-connector-'));
  const p = pki(dir);
  caFile = p.caFile;
  server = https.createServer({ cert: p.cert, key: p.key, keepAlive: true }, (req, res) => {
    const body = `${req.method} ${req.url} host=${req.headers.host}`;
    res.writeHead(200, { 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  server.on('secureConnection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe.each(drivers)('TlsConnector on the $name driver', ({ name, skip }) => {
  const run = skip === undefined ? it : it.skip;
  let runtime: Runtime;
  let connector: HttpConnector | undefined;

  beforeEach(async () => {
    runtime = await createRuntime({ driver: name, log: () => undefined });
  });
  afterEach(async () => {
    connector?.close();
    connector = undefined;
    await runtime.close();
  });

  function make(): HttpConnector {
    connector = new HttpConnector(new TlsConnector(new UnifiedL4Connector({ runtime })));
    return connector;
  }

  async function get(c: HttpConnector, key: Endpoint, path: string): Promise<string> {
    const res = await c.request(key, createRequest('GET', path));
    return `${res.status} ${await readText(res.body)}`;
  }

  run('verifies the server against a CA file and reuses the pooled TLS connection', async () => {
    const c = make();
    const key = endpoint({ scheme: 'https', host: 'localhost', port, ca: caFile });
    const before = connections;
    expect(await get(c, key, '/one')).toBe(`200 GET /one host=localhost:${port}`);
    expect(await get(c, key, '/two')).toBe(`200 GET /two host=localhost:${port}`);
    expect(connections - before).toBe(1);
    expect(c.stats().reused).toBeGreaterThanOrEqual(1);
  });

  run('fails with ERR_TRANSPORT_TLS_FAILED for an unknown CA and for a wrong name', async () => {
    const c = make();
    const untrusted = endpoint({ scheme: 'https', host: '127.0.0.1', port, serverName: 'localhost' });
    const e1 = await c.request(untrusted, createRequest('GET', '/')).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(ConnectError);
    expect((e1 as ConnectError).code).toBe('ERR_TRANSPORT_TLS_FAILED');
    expect((e1 as ConnectError).status).toBe(502);
    expect((e1 as Error).cause).toBeInstanceOf(TlsCertificateError);
    const wrongName = endpoint({
      scheme: 'https',
      host: '127.0.0.1',
      port,
      serverName: 'other.example',
      ca: caFile,
    });
    const e2 = await c.request(wrongName, createRequest('GET', '/')).catch((e: unknown) => e);
    expect((e2 as ConnectError).code).toBe('ERR_TRANSPORT_TLS_FAILED');
    expect((e2 as Error).cause).toBeInstanceOf(TlsCertificateError);
  });

  run('connects without verification only when told, and keeps that profile apart', async () => {
    const c = make();
    const unverified = endpoint({ scheme: 'https', host: '127.0.0.1', port, verify: false });
    const verified = endpoint({ scheme: 'https', host: '127.0.0.1', port, ca: caFile });
    expect(unverified.id).not.toBe(verified.id);
    expect(await get(c, unverified, '/u')).toMatch(/^200 GET \/u /);
    expect(await get(c, verified, '/v')).toMatch(/^200 GET \/v /);
    // Two profiles, two connections: the unverified one never carried the verified request.
    expect(c.stats().created).toBe(2);
  });

  run('passes http endpoints through without TLS', async () => {
    const plain = (await import('node:http')).createServer((_req, res) => res.end('plain'));
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    try {
      const c = make();
      const key = endpoint({ host: '127.0.0.1', port: (plain.address() as AddressInfo).port });
      expect(await get(c, key, '/')).toBe('200 plain');
    } finally {
      plain.closeAllConnections();
      await new Promise((r) => plain.close(r));
    }
  });
});
