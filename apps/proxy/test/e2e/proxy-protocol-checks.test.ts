/**
 * PROXY protocol v2 from haproxy beyond plain headers, on every driver: haproxy's health checks
 * (`check` on a `send-proxy-v2` server) open connections with a v2 LOCAL header, which loch
 * serves with the socket's own address (the check passes, so haproxy routes to loch), and
 * client connections carry TLVs (`proxy-v2-options unique-id,crc32c`) that loch reads past
 * (checksum verified) to the client. haproxy and curl are the real peers; loch's JSON access
 * log is where the result is read.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  availableDrivers,
  curl,
  freePort,
  httpUpstream,
  type Loch,
  startLoch,
  tempDir,
  waitConnectable,
} from './harness.js';

const drivers = availableDrivers();

function jsonLines(path: string): Record<string, unknown>[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe.each(drivers)('haproxy health checks (v2 LOCAL) and TLVs, %s driver', (driver) => {
  let loch: Loch;
  let haproxy: ChildProcess;
  let upstream: Awaited<ReturnType<typeof httpUpstream>>;
  let log: string;
  let front: number;
  let herr = '';

  beforeAll(async () => {
    const dir = tempDir('loch-e2e-pp-checks-');
    log = join(dir, 'access.json');
    upstream = await httpUpstream((req, res) => {
      const body = `xff=${req.headers['x-forwarded-for'] ?? '-'}`;
      res.writeHead(200, { 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    const pp = await freePort();
    front = await freePort();
    loch = await startLoch(
      dir,
      `
[runtime]
workers = 1

[servers.pp]
listener = { type = "socket", value = "127.0.0.1:${pp}" }
proxy_protocol = true
access_log = { path = "access.json", format = "json" }

[[servers.pp.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream.port}" }]
`,
      { LOCH_DRIVER: driver },
    );
    const conf = `global
  maxconn 100

defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s

frontend f
  bind 127.0.0.1:${front}
  unique-id-format %{+X}o%ci:%cp_%fi:%fp_%Ts_%rt:%pid
  default_backend loch

backend loch
  option httpchk GET /haproxy-check
  server loch 127.0.0.1:${pp} send-proxy-v2 proxy-v2-options unique-id,crc32c check inter 300ms rise 1 fall 1
`;
    const file = join(dir, 'haproxy.cfg');
    writeFileSync(file, conf);
    haproxy = spawn('haproxy', ['-f', file, '-db'], { stdio: ['ignore', 'ignore', 'pipe'] });
    haproxy.stderr!.setEncoding('utf8').on('data', (d: string) => {
      herr += d;
    });
    try {
      await waitConnectable({ port: front });
    } catch (error) {
      throw new Error(`haproxy did not start: ${herr}`, { cause: error });
    }
  }, 60_000);

  afterAll(async () => {
    haproxy?.kill('SIGTERM');
    await loch?.stop();
    await upstream?.close();
  });

  it('serves the health checks that come with a v2 LOCAL header, with the socket address', async () => {
    await expect
      .poll(() => jsonLines(log).filter((l) => l.path === '/haproxy-check').length, { timeout: 15_000 })
      .toBeGreaterThanOrEqual(2);
    for (const l of jsonLines(log).filter((l) => l.path === '/haproxy-check'))
      expect(l).toMatchObject({ status: 200, client: '127.0.0.1', upstream_status: 200 });
  });

  it('reads a header with unique-id and CRC32C TLVs to the client', async () => {
    // haproxy routes only to a server whose check passed (else 503).
    const r = await curl(['--interface', '127.0.0.6', `http://127.0.0.1:${front}/through-${driver}`]);
    expect(r.err).toBe('');
    expect(r.out).toBe('xff=127.0.0.6');
    await expect
      .poll(() => jsonLines(log).find((l) => l.path === `/through-${driver}`), { timeout: 5000 })
      .toMatchObject({ client: '127.0.0.6', status: 200 });
  });
});
