/**
 * The normal client of the abuse benchmarks (upload-starvation, slow-readers, bench/abuse's
 * worker crash): one GET by curl, a process of its own, so the latency is what curl measured
 * and not this process's event loop (busy with the abusive peers' bookkeeping); and the
 * summary of a series of them. Not a load generator: one request at a time.
 */
import { spawn } from 'node:child_process';

/** Latency of the probes that succeeded (ms, 0.1 ms steps); `n` counts every probe, failed ones too. */
export interface Latency {
  n: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
}

/**
 * One GET of `path` on 127.0.0.1:port by curl on a new connection: curl's time_total in ms, or
 * -1 when it failed (no 200 within `maxSeconds`).
 */
export function probe(port: number, path = '/normal', maxSeconds = 10): Promise<number> {
  return new Promise((resolve) => {
    const c = spawn('curl', [
      '-s',
      '-o',
      '/dev/null',
      '--max-time',
      String(maxSeconds),
      '-w',
      '%{http_code} %{time_total}',
      `http://127.0.0.1:${port}${path}`,
    ]);
    let out = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    c.on('error', () => resolve(-1));
    c.on('exit', () => {
      const [code, total] = out.split(' ');
      resolve(code === '200' ? Number(total) * 1000 : -1);
    });
  });
}

/** p50 / p99 / max of the probes that succeeded (ms, -1 = failed). */
export function latency(xs: readonly number[]): Latency {
  const ok = xs.filter((x) => x >= 0).sort((a, b) => a - b);
  const at = (p: number) => {
    const v = ok[Math.min(ok.length - 1, Math.floor(p * ok.length))];
    return v === undefined ? null : Math.round(v * 10) / 10;
  };
  return { n: xs.length, p50: at(0.5), p99: at(0.99), max: at(1) };
}

/** How many of the probes failed. */
export function failures(xs: readonly number[]): number {
  return xs.filter((x) => x < 0).length;
}

/** `n` probes one after the other (the normal client alone, before the abuse). */
export async function probeSeries(port: number, n: number, path = '/normal'): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await probe(port, path));
  return out;
}
