/**
 * h2load (nghttp2-client) as the HTTP/2 load generator: one run against a URL (h2c by prior
 * knowledge for http://, h2 by ALPN for https://) for a fixed duration with `-c` clients of `-m`
 * concurrent streams each, its summary parsed (requests done, succeeded, failed, the measured
 * duration) and its per-request log (`--log-file`) read for p50/p99, since h2load prints only
 * min/max/mean. `measureH2` charges the CPU the peer's process tree spent during the run to the
 * requests it served, as bench/lib/measure.ts does for wrk, and returns the same Measurement
 * shape so the shared report helpers apply. Not a load generator of its own.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuSplitSeconds, type Measurement, type Peer } from '../lib/measure.js';

/** One h2load load shape: clients and streams per client. */
export interface H2Load {
  readonly clients: number;
  readonly streams: number;
}

/** What one h2load run reported. */
export interface H2LoadResult {
  /** Requests that completed with a 2xx/3xx (h2load's "succeeded"). */
  readonly requests: number;
  /** Requests that failed, errored or timed out, and non-2xx/3xx answers. */
  readonly errors: number;
  /** The measured duration (h2load's "finished in"). */
  readonly seconds: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/** Parses h2load's summary (stdout) and the durations of its per-request log. */
export function parseH2load(text: string, durationsUs: readonly number[]): H2LoadResult {
  const finished = /finished in ([\d.]+)(ms|s),/.exec(text);
  const req =
    /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
      text,
    );
  const status = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(text);
  if (!finished || !req) throw new Error(`cannot read h2load output:\n${text}`);
  const seconds = Number(finished[1]) / (finished[2] === 'ms' ? 1000 : 1);
  const succeeded = Number(req[4]);
  const bad = status ? Number(status[3]) + Number(status[4]) : 0;
  const requests = Math.max(0, succeeded - bad);
  const sorted = [...durationsUs].sort((a, b) => a - b);
  const pct = (p: number) =>
    sorted.length === 0
      ? Number.NaN
      : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! / 1000;
  return {
    requests,
    errors: Number(req[5]) + Number(req[6]) + Number(req[7]) + bad,
    seconds,
    requestsPerSecond: seconds > 0 ? requests / seconds : 0,
    p50Ms: pct(50),
    p99Ms: pct(99),
  };
}

/**
 * Runs h2load (pinned to `cpu`) against `url` for `seconds` (`-D`), reading its per-request log
 * for the latency percentiles. TLS: h2load offers h2 by ALPN and does not verify certificates.
 */
export async function runH2load(
  url: string,
  options: H2Load & { seconds: number; cpu?: string; extraArgs?: readonly string[] },
): Promise<H2LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), 'loch-bench-h2load-'));
  const logFile = join(dir, 'requests.log');
  const args = [
    `-c${options.clients}`,
    `-m${options.streams}`,
    '-t1',
    `-D${options.seconds}`,
    `--log-file=${logFile}`,
    ...(options.extraArgs ?? []),
    url,
  ];
  const argv =
    options.cpu === undefined ? ['h2load', ...args] : ['taskset', '-c', options.cpu, 'h2load', ...args];
  try {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    if (code !== 0) throw new Error(`h2load exited with ${code}:\n${out}`);
    return parseH2load(out, readDurations(logFile));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The third column (stream duration, us) of h2load's tab-separated per-request log. */
function readDurations(file: string): number[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: number[] = [];
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const a = text.indexOf('\t', start);
    const b = a < 0 ? -1 : text.indexOf('\t', a + 1);
    if (b > 0 && b < end) {
      const c = text.indexOf('\t', b + 1);
      const d = Number(text.slice(b + 1, c > 0 && c < end ? c : end));
      if (Number.isFinite(d)) out.push(d);
    }
    start = end + 1;
  }
  return out;
}

/** Drives `url` with h2load and charges the CPU time of `peer` to the requests served. */
export async function measureH2(
  peer: Peer,
  url: string,
  load: H2Load & { seconds: number; warmupSeconds?: number; cpu?: string; extraArgs?: readonly string[] },
): Promise<Measurement> {
  if (load.warmupSeconds) await runH2load(url, { ...load, seconds: load.warmupSeconds });
  const [user0, sys0] = cpuSplitSeconds(peer.pid);
  const result = await runH2load(url, load);
  const [user1, sys1] = cpuSplitSeconds(peer.pid);
  const perRequest = (s: number) => (result.requests > 0 ? (s * 1e6) / result.requests : Number.NaN);
  return {
    ...result,
    peer: peer.name,
    cpuUsPerRequest: perRequest(user1 - user0 + (sys1 - sys0)),
    sysUsPerRequest: perRequest(sys1 - sys0),
  };
}

/** Resolves once `url` answers one h2load request with a 2xx (or throws after `timeoutMs`). */
export async function waitForH2(url: string, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const out = await new Promise<string>((resolve) => {
      const child = spawn('h2load', ['-n1', '-c1', url], { stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      child.stdout.on('data', (d: Buffer) => {
        text += d.toString();
      });
      child.stderr.on('data', (d: Buffer) => {
        text += d.toString();
      });
      child.on('exit', () => resolve(text));
    });
    if (/status codes: 1 2xx/.test(out)) return;
    last = out;
    if (Date.now() > until)
      throw new Error(`${url} did not answer over HTTP/2 within ${timeoutMs} ms:\n${last}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
