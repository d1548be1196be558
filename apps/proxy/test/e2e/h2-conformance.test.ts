/**
 * The HTTP/2 conformance and attack suite (test/h2-conformance/h2_conformance.py, python3-h2
 * and hyperframe as the peer) against `loch run`, on every available driver, over h2c and over
 * TLS (h2 by ALPN): client -> loch -> a node:http HTTP/1.1 upstream that counts what reaches it. Each case of the suite
 * must pass (its RFC 9113 outcome, and loch still serving a new client afterwards); where RFC
 * 9113 allows several outcomes, loch's own choice is pinned here (the exact GOAWAY or
 * RST_STREAM code, a stream error kept a stream error). The MadeYouReset floods
 * (CVE-2025-8671) are checked on the upstream too: the requests of streams loch reset are
 * aborted, never answered, never followed by another request on their connection, and never
 * more at once than SETTINGS_MAX_CONCURRENT_STREAMS. Not for the protocol's codec (that is
 * packages/http/test/h2, with a TypeScript raw client).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../src/demo-certificate.js';
import { availableDrivers, freePort, type Loch, startLoch, tempDir } from './harness.js';

const SUITE = fileURLToPath(new URL('../h2-conformance/h2_conformance.py', import.meta.url));
/** Debian's python3 (python3-h2 lives there, not in whatever python3 is first on PATH). */
const PYTHON = '/usr/bin/python3';
/** How long the upstream holds a /hang request unless loch gives it up first. */
const HANG_MS = 8000;
/** The body of every answered GET (large enough that four of them spend a 65,535 window). */
const BODY = Buffer.alloc(20_000, 0x6c);

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
  /** /hang requests open at once, at most. */
  maxHanging: number;
  /** Requests that arrived on a connection that had carried a /hang request before. */
  afterHang: number;
}

function countingUpstream(): Promise<{ server: Server; port: number; counts: UpstreamCounts }> {
  const counts: UpstreamCounts = {
    hangStarted: 0,
    hangAnswered: 0,
    hangAborted: 0,
    maxHanging: 0,
    afterHang: 0,
  };
  const hadHang = new WeakSet<Socket>();
  let hanging = 0;
  const server = createServer((req, res) => {
    if (hadHang.has(req.socket)) counts.afterHang++;
    req.resume();
    req.on('end', () => {
      if (req.url !== '/hang') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(BODY);
        return;
      }
      hadHang.add(req.socket);
      counts.hangStarted++;
      hanging++;
      counts.maxHanging = Math.max(counts.maxHanging, hanging);
      const timer = setTimeout(() => {
        counts.hangAnswered++;
        res.end('late');
      }, HANG_MS);
      res.on('close', () => {
        hanging--;
        if (!res.writableFinished) {
          clearTimeout(timer);
          counts.hangAborted++;
        }
      });
    });
  });
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, port: (server.address() as { port: number }).port, counts }),
    ),
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
timeouts = { upstream_read = "30s" }
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
    suite.h2c = await runSuite(h2cPort, ['--slow-path', '/hang']);
    suite.h2 = await runSuite(tlsPort, ['--tls', '--slow-path', '/hang']);
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
    await expect.poll(() => c.hangAborted, { timeout: HANG_MS / 2 }).toBe(c.hangStarted);
    expect(c.hangAnswered).toBe(0);
    // Its connection is closed, not handed to another request.
    expect(c.afterHang).toBe(0);
    // A reset stream counts against SETTINGS_MAX_CONCURRENT_STREAMS (100) until its upstream
    // exchange ended, so the upstream never holds more of them at once.
    expect(c.maxHanging).toBeLessThanOrEqual(100);
    expect(loch.stderr()).not.toMatch(/crashed/);
    expect(loch.child.exitCode).toBeNull();
  });
});
