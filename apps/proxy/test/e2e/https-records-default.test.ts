/**
 * What loch does with a tls table that names neither a record layer nor anything but Monolake's
 * keys (issue 13), on every runtime driver: its TLS 1.3 connections are taken over by Loch's own
 * record layer, the default (admin /stats `tlsRecords`), and carry a 2 MB answer intact; TLS 1.2
 * stays on OpenSSL. Under LOCH_TLS_RECORDS=openssl (the opt-out, e.g. a run of this suite with it)
 * the same listener takes nothing over. Monolake's `stack = "native_tls"` loads and is noted, by
 * `loch run` in its log and by `loch check`, as served by OpenSSL.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as https from 'node:https';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../src/demo-certificate.js';
import {
  availableDrivers,
  freePort,
  type Loch,
  lochArgs,
  type Nginx,
  PROXY_DIR,
  startLoch,
  startNginx,
  type TakeoverCounts,
  tempDir,
  tlsTakeovers,
} from './harness.js';

const drivers = availableDrivers();

/** nginx's /big: 2,000,000 bytes of 'a' (harness.ts). */
const BIG_SHA = createHash('sha256').update(Buffer.alloc(2_000_000, 0x61)).digest('hex');

/** Connections a TLS 1.3 exchange is expected to leave on Loch's record layer: none under the opt-out. */
const TAKEN_PER_CONNECTION = process.env.LOCH_TLS_RECORDS === 'openssl' ? 0 : 1;

const NOTE = /servers\.secure\.tls\.stack = "native_tls": accepted; Loch serves TLS with OpenSSL \(node's\)/;

/** The tls table under test: Monolake's keys only. */
const tlsTable = (dir: string) =>
  `tls = { chain = "${join(dir, 'default.pem')}", key = "${join(dir, 'default.key')}", stack = "native_tls" }`;

function config(dir: string, port: number, admin: number, upstream: number): string {
  return `
[runtime]
workers = 1

[admin]
listener = { type = "socket", value = "127.0.0.1:${admin}" }

[servers.secure]
listener = { type = "socket", value = "127.0.0.1:${port}" }
${tlsTable(dir)}

[[servers.secure.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream}" }]
`;
}

/** The worker's take-over counts for the server `secure`, from loch's /stats. */
function takeovers(admin: number): Promise<TakeoverCounts> {
  return tlsTakeovers(admin, 'secure');
}

/** GET /big on a new connection of `version`: status, protocol and the body's SHA-256. */
function big(
  port: number,
  version: 'TLSv1.2' | 'TLSv1.3',
): Promise<{ status: number; protocol: string | null; sha: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: '/big',
        agent: false,
        servername: 'localhost',
        rejectUnauthorized: false,
        minVersion: version,
        maxVersion: version,
        timeout: 20_000,
      },
      (res) => {
        const protocol = (res.socket as TLSSocket).getProtocol();
        const hash = createHash('sha256');
        res.on('data', (d: Buffer) => hash.update(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, protocol, sha: hash.digest('hex') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

describe.each(drivers)("an HTTPS listener with Monolake's tls keys on the %s driver", (driver) => {
  let nginx: Nginx;
  let loch: Loch;
  let port: number;
  let admin: number;

  beforeAll(async () => {
    nginx = await startNginx(['A']);
    const dir = tempDir('loch-records-default-');
    selfSignedCertificate(dir, 'default', ['localhost']);
    port = await freePort();
    admin = await freePort();
    loch = await startLoch(dir, config(dir, port, admin, nginx.ports[0]!), { LOCH_DRIVER: driver });
  }, 60_000);
  afterAll(async () => {
    await loch?.stop();
    await nginx?.stop();
  });

  it("takes TLS 1.3 connections over to Loch's record layer by default, and leaves TLS 1.2 on OpenSSL", async () => {
    const before = await takeovers(admin);
    for (let i = 0; i < 3; i++)
      expect(await big(port, 'TLSv1.3')).toEqual({ status: 200, protocol: 'TLSv1.3', sha: BIG_SHA });
    const after = await takeovers(admin);
    expect(after).toEqual({ loch: before.loch + 3 * TAKEN_PER_CONNECTION, declined: before.declined });
    expect(await big(port, 'TLSv1.2')).toEqual({ status: 200, protocol: 'TLSv1.2', sha: BIG_SHA });
    expect(await takeovers(admin)).toEqual(after);
  });

  it('notes in its log that OpenSSL serves `stack = "native_tls"`', () => {
    expect(loch.stderr()).toMatch(NOTE);
  });
});

describe('loch check with stack = "native_tls"', () => {
  it('loads it and prints a note (not a warning) that OpenSSL serves it', () => {
    const dir = tempDir('loch-records-check-');
    selfSignedCertificate(dir, 'default', ['localhost']);
    const file = join(dir, 'check.toml');
    writeFileSync(file, config(dir, 1, 2, 3));
    const checked = spawnSync(process.execPath, lochArgs('check', '-c', file), {
      cwd: PROXY_DIR,
      encoding: 'utf8',
    });
    expect(checked.status, checked.stderr).toBe(0);
    expect(checked.stderr).toMatch(new RegExp(`loch check: note: ${NOTE.source}`));
    expect(checked.stderr).not.toContain('warning');
  });
});
