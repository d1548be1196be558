/**
 * The HTTP/2 conformance and attack suite (test/h2-conformance/h2_conformance.py, python3-h2
 * and hyperframe as the peer) against `loch run`, on every available driver, over h2c and over
 * TLS (h2 by ALPN): client -> loch -> a node:http HTTP/1.1 upstream that counts what reaches it. Each case of the suite
 * must pass (its RFC 9113 outcome, and loch still serving a new client afterwards); where RFC
 * 9113 allows several outcomes, loch's own choice is pinned here (the exact GOAWAY or
 * RST_STREAM code, a stream error kept a stream error). The MadeYouReset floods
 * (CVE-2025-8671) are checked on the upstream too: the requests of streams loch reset are
 * aborted, never answered, never followed by another request on their connection, and never
 * more at once than SETTINGS_MAX_CONCURRENT_STREAMS. The suite itself is checked to fail a
 * server that does not end a SETTINGS flood (nginx 1.22). Not for the protocol's codec (that is
 * packages/http/test/h2, with a TypeScript raw client).
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../src/demo-certificate.js';
import { availableDrivers, freePort, type Loch, runNginx, startLoch, tempDir } from './harness.js';

const SUITE = fileURLToPath(new URL('../h2-conformance/h2_conformance.py', import.meta.url));
/** Debian's python3 (python3-h2 lives there, not in whatever python3 is first on PATH). */
const PYTHON = '/usr/bin/python3';
/**
 * How long the upstream holds a /hang request unless loch gives it up first: long enough that
 * a loch slowed by a busy machine still aborts first, and below loch's upstream_read (120 s),
 * so a request loch never gave up is answered, never timed out by loch.
 */
const HANG_MS = 30_000;
/** The body of every answered GET (large enough that four of them spend a 65,535 window). */
const BODY = Buffer.alloc(20_000, 0x6c);

/**
 * The upstream's slow resource, and 30 s to wait for each expected event instead of 5: on a
 * machine busy with other suites a round trip through loch can take seconds (no case waits the
 * full time when loch behaves).
 */
const SUITE_ARGS = ['--slow-path', '/hang', '--timeout', '30'];

const drivers = availableDrivers();
const cases = spawnSync(PYTHON, [SUITE, '--list'], { encoding: 'utf8' })
  .stdout.trim()
  .split('\n')
  .map((l) => (JSON.parse(l) as { case: string }).case);

/** One JSON line of the suite. */
interface Result {
  case: string;
  ok: boolean;
  expect: string;
  got: Record<string, unknown>;
  alive: boolean;
}

/** What reached the upstream. */
interface UpstreamCounts {
  /** /hang requests received, answered after HANG_MS, and given up by loch before that. */
  hangStarted: number;
  hangAnswered: number;
  hangAborted: number;
  /**
   * /hang requests open at once, at most, by the kernel's view when each arrived: those whose
   * connection loch had not closed yet (ESTABLISHED, not CLOSE_WAIT). This process (vitest's,
   * under load) may read a new connection's request before the FIN of one loch closed earlier,
   * so its own 'close' events would count a few given-up requests as still open.
   */
  maxHanging: number;
  /** The same by this process's 'close' events (informational: see above). */
  maxHangingByEvents: number;
  /** Requests that arrived on a connection that had carried a /hang request before. */
  afterHang: number;
}

/** Remote ports of the ESTABLISHED IPv4 connections accepted on `port` (from /proc/net/tcp). */
function establishedPeers(port: number): Set<number> {
  const peers = new Set<number>();
  const local = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/tcp', 'latin1').split('\n')) {
    const f = line.trim().split(/\s+/);
    // sl local_address rem_address st ...; state 01 is ESTABLISHED.
    if (f[1]?.endsWith(local) && f[3] === '01') peers.add(Number.parseInt(f[2]!.split(':')[1]!, 16));
  }
  return peers;
}

function countingUpstream(): Promise<{ server: Server; port: number; counts: UpstreamCounts }> {
  const counts: UpstreamCounts = {
    hangStarted: 0,
    hangAnswered: 0,
    hangAborted: 0,
    maxHanging: 0,
    maxHangingByEvents: 0,
    afterHang: 0,
  };
  const hadHang = new WeakSet<Socket>();
  const hanging = new Set<Socket>();
  let port = 0;
  const server = createServer((req, res) => {
    if (hadHang.has(req.socket)) counts.afterHang++;
    req.resume();
    req.on('end', () => {
      if (req.url !== '/hang') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(BODY);
        return;
      }
      const socket = req.socket;
      hadHang.add(socket);
      counts.hangStarted++;
      hanging.add(socket);
      counts.maxHangingByEvents = Math.max(counts.maxHangingByEvents, hanging.size);
      // The kernel's view (a /proc/net/tcp read) only where this process's could pass the limit.
      let live = hanging.size;
      if (live > 100) {
        const open = establishedPeers(port);
        live = 0;
        for (const s of hanging) if (open.has(s.remotePort!)) live++;
      }
      counts.maxHanging = Math.max(counts.maxHanging, live);
      const timer = setTimeout(() => {
        counts.hangAnswered++;
        res.end('late');
      }, HANG_MS);
      res.on('close', () => {
        hanging.delete(socket);
        if (!res.writableFinished) {
          clearTimeout(timer);
          counts.hangAborted++;
        }
      });
    });
  });
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      port = (server.address() as { port: number }).port;
      resolve({ server, port, counts });
    }),
  );
}

/** Runs the suite against 127.0.0.1:port; resolves with its results by case and its exit code. */
function runSuite(
  port: number,
  args: readonly string[] = [],
): Promise<{ code: number | null; results: Map<string, Result>; stderr: string }> {
  return new Promise((resolve) => {
    const py = spawn(PYTHON, [SUITE, `127.0.0.1:${port}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    py.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    py.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
    });
    py.on('exit', (code) => {
      const results = new Map<string, Result>();
      for (const line of out.split('\n')) {
        if (line.trim() === '') continue;
        const r = JSON.parse(line) as Result;
        results.set(r.case, r);
      }
      resolve({ code, results, stderr: err });
    });
  });
}

/** Loch's own choice where RFC 9113 allows several outcomes, per case. */
const pinned: Record<string, Record<string, unknown>> = {
  'rapid-reset': { goaway: 'ENHANCE_YOUR_CALM' },
  'continuation-flood': { goaway: 'ENHANCE_YOUR_CALM' },
  'continuation-empty-flood': { goaway: 'ENHANCE_YOUR_CALM' },
  // A 431 on its stream, the HPACK table kept in step: the next request on the connection works.
  'hpack-bomb': { status: '431', rst: null, goaway: null, next: '200' },
  'too-many-streams': { limit: 100, overCodes: ['REFUSED_STREAM'], withinReset: 0, scope: 'stream' },
  'stream-id-decrease': { goaway: 'PROTOCOL_ERROR', last: 5 },
  'stream-id-reuse': { goaway: 'PROTOCOL_ERROR' },
  'made-you-reset-window-overflow': { rst: 'FLOW_CONTROL_ERROR', goaway: null, scope: 'stream', next: '200' },
  'made-you-reset-data-half-closed': { rst: 'STREAM_CLOSED', goaway: null, scope: 'stream', next: '200' },
  'made-you-reset-flood': { goaway: 'ENHANCE_YOUR_CALM' },
  'made-you-reset-window-flood': { goaway: 'ENHANCE_YOUR_CALM' },
};

const transports = ['h2c', 'h2'] as const;

describe.each(drivers)('HTTP/2 conformance suite (python3-h2) through loch on the %s driver', (driver) => {
  let loch: Loch;
  let up: Awaited<ReturnType<typeof countingUpstream>>;
  const suite = {} as Record<(typeof transports)[number], Awaited<ReturnType<typeof runSuite>>>;

  beforeAll(async () => {
    up = await countingUpstream();
    const h2cPort = await freePort();
    const tlsPort = await freePort();
    const dir = tempDir('loch-h2-conformance-');
    const cert = selfSignedCertificate(dir);
    const server = (key: string, listener: string) => `
[servers.${key}]
listener = { type = "socket", value = "127.0.0.1:${listener}" }
timeouts = { upstream_read = "120s" }
${key === 'h2' ? `tls = { chain = "${cert.chain}", key = "${cert.key}" }` : ''}

[[servers.${key}.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${up.port}" }]
`;
    loch = await startLoch(
      dir,
      `
[runtime]
workers = 1
${server('h2c', String(h2cPort))}
${server('h2', String(tlsPort))}
`,
      { LOCH_DRIVER: driver },
    );
    suite.h2c = await runSuite(h2cPort, SUITE_ARGS);
    suite.h2 = await runSuite(tlsPort, ['--tls', ...SUITE_ARGS]);
  }, 240_000);

  afterAll(async () => {
    await loch?.stop();
    up?.server.closeAllConnections();
    await new Promise((r) => up?.server.close(r));
  });

  it.each(transports)('%s: runs every case and exits 0', (transport) => {
    const s = suite[transport];
    expect([...s.results.keys()]).toEqual(cases);
    expect(s.stderr).toMatch(new RegExp(`${cases.length} of ${cases.length} cases passed`));
    expect(s.code).toBe(0);
  });

  it.each(transports.flatMap((transport) => cases.map((name) => [transport, name] as const)))(
    '%s: %s',
    (transport, name) => {
      const r = suite[transport].results.get(name);
      expect(r, `no result for ${name}`).toBeDefined();
      expect({ ok: r!.ok, alive: r!.alive, got: r!.got }).toMatchObject({
        ok: true,
        alive: true,
        got: pinned[name] ?? {},
      });
    },
  );

  it('MadeYouReset: the upstream requests of streams loch reset are aborted, never reused, never more at once than the stream limit', async () => {
    const c = up.counts;
    // Every /hang request (the MadeYouReset and rapid reset streams) is given up by loch when
    // it resets the stream, well before the upstream would answer it.
    expect(c.hangStarted).toBeGreaterThan(0);
    // Each ends either way: given up by loch, or answered by the upstream after HANG_MS.
    await expect
      .poll(() => c.hangAborted + c.hangAnswered, { timeout: HANG_MS + 30_000, interval: 200 })
      .toBe(c.hangStarted);
    expect({
      // Every one given up by loch, none answered by the upstream.
      aborted: c.hangAborted === c.hangStarted,
      answered: c.hangAnswered,
      // Its connection is closed, not handed to another request.
      afterHang: c.afterHang,
      // A reset stream counts against SETTINGS_MAX_CONCURRENT_STREAMS (100) until its upstream
      // exchange ended, so the upstream never holds more of them at once.
      withinLimit: c.maxHanging <= 100,
      counts: c,
    }).toEqual({ aborted: true, answered: 0, afterHang: 0, withinLimit: true, counts: c });
    expect(loch.stderr()).not.toMatch(/crashed/);
    expect(loch.child.exitCode).toBeNull();
  }, 120_000);
});

describe('the suite against a server that does not end a SETTINGS flood', () => {
  it('nginx 1.22 (listen ... http2): that case fails by name, the others pass, the exit code is 1', async () => {
    const dir = tempDir('loch-h2-conformance-nginx-');
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'index.html'), BODY, { mode: 0o644 });
    const port = await freePort();
    const nginx = await runNginx(dir, `server { listen 127.0.0.1:${port} http2; root ${dir}; }`, [port]);
    try {
      const run = await runSuite(port, ['--timeout', '2', '--cases', 'ping,settings-flood,stream-id-reuse']);
      expect(run.code).toBe(1);
      expect([...run.results.keys()]).toEqual(['baseline', 'ping', 'settings-flood', 'stream-id-reuse']);
      expect(run.results.get('settings-flood')).toMatchObject({
        ok: false,
        alive: true,
        got: { goaway: null },
      });
      for (const name of ['baseline', 'ping', 'stream-id-reuse'])
        expect(run.results.get(name)?.ok).toBe(true);
      expect(run.stderr).toMatch(/3 of 4 cases passed/);
    } finally {
      await nginx.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
