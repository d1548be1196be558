/**
 * Markdown report pieces shared by the wrk-driven runners (http-proxy, l4-forward): the
 * "Every point" table, the ratio cell and progress lines on stdout. Not for charts (chart.ts) or for measuring
 * (measure.ts); each runner still owns its page layout and prose.
 */
import { formatSize } from './bodies.js';
import { type Measurement, markdownTable } from './measure.js';

/** `a / b` as "1.23x", or "n/a" when either side is missing or the reference is not positive. */
export function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !(b > 0)) return 'n/a';
  return `${(a / b).toFixed(2)}x`;
}

/** How pointsTable lays out and looks up one table's measurements. */
export interface PointsTableOptions {
  /** Body sizes, one group of rows each, in this order. */
  readonly sizes: readonly number[];
  /** Peer names, in row order within a size. */
  readonly names: readonly string[];
  /** The peer the ratio columns divide by (same size). */
  readonly reference: string;
  /** Header of the peer column ("proxy", "forwarder"). */
  readonly label: string;
  /** The measurement of one peer at one size, if it was measured. */
  readonly find: (name: string, size: number) => Measurement | undefined;
}

/**
 * The "Every point" table: one row per measured (size, peer) with req/s, latency, CPU per
 * request, ratios to the reference peer and errors (or "stalled" when a run served nothing).
 */
export function pointsTable(o: PointsTableOptions): string {
  const rows: (string | number)[][] = [];
  for (const size of o.sizes) {
    const ref = o.find(o.reference, size);
    for (const name of o.names) {
      const m = o.find(name, size);
      if (!m) continue;
      rows.push([
        formatSize(size),
        name,
        m.requestsPerSecond,
        m.p50Ms,
        m.p99Ms,
        m.cpuUsPerRequest,
        ratio(m.requestsPerSecond, ref?.requestsPerSecond),
        ratio(m.cpuUsPerRequest, ref?.cpuUsPerRequest),
        m.requests === 0 ? 'stalled: 0 requests' : String(m.errors),
      ]);
    }
  }
  return markdownTable(
    [
      'body',
      o.label,
      'req/s',
      'p50 ms',
      'p99 ms',
      'CPU us/req',
      `req/s vs ${o.reference}`,
      `CPU vs ${o.reference}`,
      'errors',
    ],
    rows,
  );
}

/** A per-size table of one metric: a "body" column, then one column per peer (NaN when missing). */
export function metricBySizeTable(
  sizes: readonly number[],
  names: readonly string[],
  value: (name: string, size: number) => number | undefined,
): string {
  return markdownTable(
    ['body', ...names],
    sizes.map((size) => [formatSize(size), ...names.map((n) => value(n, size) ?? NaN)]),
  );
}

/** One progress line on stdout. */
export function log(line: string): void {
  process.stdout.write(`${line}\n`);
}
