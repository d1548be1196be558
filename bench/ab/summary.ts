/**
 * How an interleaved A/B run is summarised: per metric and row (a body size, or one memory
 * state), the median and the spread (min-max) of each side over the rounds, the ratio of the
 * medians, the median of the per-round B/A ratios (paired, so drift of the machine during the
 * run cancels), and whether the two ranges overlap. Not a significance test: with 5 rounds a
 * side, disjoint ranges are what a rank test would call p < 0.01; overlapping ranges mean "not
 * shown by this run".
 */
import { markdownTable } from '../lib/measure.js';

/** Median of `values` (mean of the middle two for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** One table row: the per-round values of A and B, in round order (same index = same round). */
export interface AbRow {
  /** Row label (a body size, a memory state). */
  readonly label: string;
  readonly a: readonly number[];
  readonly b: readonly number[];
}

/** Medians, spreads and ratios of one row. */
export interface AbSummary {
  readonly label: string;
  readonly aMedian: number;
  readonly aMin: number;
  readonly aMax: number;
  readonly bMedian: number;
  readonly bMin: number;
  readonly bMax: number;
  /** bMedian / aMedian. */
  readonly ratio: number;
  /** Median, min and max of b[i] / a[i] over the rounds where both were measured. */
  readonly pairedRatio: number;
  readonly pairedMin: number;
  readonly pairedMax: number;
  readonly overlap: boolean;
  readonly rounds: number;
}

/** Summarises one row; non-finite values (a failed point) are left out. */
export function summarize(row: AbRow): AbSummary {
  const finite = (v: readonly number[]) => v.filter(Number.isFinite);
  const a = finite(row.a);
  const b = finite(row.b);
  const pairs = roundRatios(row);
  const aMin = Math.min(...a);
  const aMax = Math.max(...a);
  const bMin = Math.min(...b);
  const bMax = Math.max(...b);
  return {
    label: row.label,
    aMedian: median(a),
    aMin,
    aMax,
    bMedian: median(b),
    bMin,
    bMax,
    ratio: median(a) > 0 ? median(b) / median(a) : Number.NaN,
    pairedRatio: median(pairs),
    pairedMin: Math.min(...pairs),
    pairedMax: Math.max(...pairs),
    overlap: bMin <= aMax && aMin <= bMax,
    rounds: Math.min(a.length, b.length),
  };
}

/** A number for a table cell: thousands separated from 1,000 up, else up to `digits` decimals. */
function cell(v: number, digits: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  return v.toFixed(digits);
}

function ratioCell(v: number): string {
  return Number.isFinite(v) ? `${v.toFixed(3)}x` : 'n/a';
}

/**
 * The markdown table of one metric: per row, A and B median with their [min, max], B/A of the
 * medians, the paired per-round B/A (median and min-max) and whether the ranges overlap.
 */
export function abTable(rowHeader: string, rows: readonly AbRow[], digits = 1): string {
  return markdownTable(
    [
      rowHeader,
      'A median',
      'A [min, max]',
      'B median',
      'B [min, max]',
      'B/A',
      'B/A per round [min, max]',
      'ranges',
    ],
    rows.map((row) => {
      const s = summarize(row);
      return [
        s.label,
        cell(s.aMedian, digits),
        `[${cell(s.aMin, digits)}, ${cell(s.aMax, digits)}]`,
        cell(s.bMedian, digits),
        `[${cell(s.bMin, digits)}, ${cell(s.bMax, digits)}]`,
        ratioCell(s.ratio),
        `${ratioCell(s.pairedRatio)} [${ratioCell(s.pairedMin)}, ${ratioCell(s.pairedMax)}]`,
        s.rounds < 2 ? 'n/a (1 round)' : s.overlap ? 'overlap' : '**disjoint**',
      ];
    }),
  );
}

/** b[i] / a[i] for every round where both were measured and a[i] is positive, in round order. */
function roundRatios(row: AbRow): number[] {
  const out: number[] = [];
  for (let i = 0; i < Math.min(row.a.length, row.b.length); i++) {
    // A ratio to a value that is not positive (a noisy memory delta) means nothing.
    const r = row.a[i]! > 0 ? row.b[i]! / row.a[i]! : Number.NaN;
    if (Number.isFinite(r)) out.push(r);
  }
  return out;
}

/**
 * Where each row's paired B/A stands against 1.0x (B costs no more than A): every round's ratio,
 * their median, and a verdict: **under** when every round is below 1.0x, **over** when every
 * round is above, else undecided with the count of rounds below. For a cost metric, where "B at
 * most 1.0x A" is the question (issue 18: loch's CPU per request against nginx's).
 */
export function verdictTable(rowHeader: string, rows: readonly AbRow[]): string {
  return markdownTable(
    [rowHeader, 'B/A per round', 'median', 'rounds under 1.0x', 'verdict'],
    rows.map((row) => {
      const ratios = roundRatios(row);
      const under = ratios.filter((r) => r < 1).length;
      const over = ratios.filter((r) => r > 1).length;
      const verdict =
        ratios.length < 2
          ? 'n/a (fewer than 2 rounds)'
          : under === ratios.length
            ? '**under** (every round)'
            : over === ratios.length
              ? '**over** (every round)'
              : 'undecided';
      return [
        row.label,
        ratios.map((r) => r.toFixed(3)).join(', '),
        ratioCell(median(ratios)),
        `${under} of ${ratios.length}`,
        verdict,
      ];
    }),
  );
}
