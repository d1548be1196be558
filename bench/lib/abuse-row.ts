/**
 * One row of an abuse benchmark's `--json` output: what one peer did under one scenario
 * (upload-flood, slowloris, slow-readers, worker-crash). bench/abuse/run.ts reads these files
 * (from every scenario's runner, bench/slowloris's too, which writes the same shape) and makes
 * results/abuse.md of them. Not a result page of its own.
 */
import { writeFileSync } from 'node:fs';
import type { Latency } from './normal-client.js';

export interface AbuseRow {
  scenario: string;
  /** loch-uring, loch-legacy, nginx or haproxy. */
  peer: string;
  /** The normal client's latency before the abuse. */
  alone: Latency;
  /** ... and during it. */
  during: Latency;
  /** Normal requests that failed during the abuse (no 200 within curl's cap). */
  failed: number;
  rssBeforeMiB: number | null;
  rssPeakMiB: number | null;
  rssAfterMiB: number | null;
  /** What else the scenario saw (how the abusive clients ended, what the peer held or spooled). */
  note: string;
  /**
   * A second normal client over one kept-alive connection (no accept in its path), where the
   * runner has one (slowloris).
   */
  keepAlive?: { alone: Latency; during: Latency; failed: number };
}

/** Takes `--json <file>` out of `args` (in place); the file, or undefined without the flag. */
export function takeJsonFlag(args: string[]): string | undefined {
  const at = args.indexOf('--json');
  if (at < 0) return undefined;
  const file = args[at + 1];
  if (file === undefined || file.startsWith('--')) throw new Error('--json needs a file');
  args.splice(at, 2);
  return file;
}

/** Writes the rows as a JSON array. */
export function writeRows(file: string, rows: readonly AbuseRow[]): void {
  writeFileSync(file, `${JSON.stringify(rows, null, 2)}\n`);
}

/** RSS in MiB (0.1 steps) from KiB. */
export function mib(kib: number): number {
  return Math.round(kib / 102.4) / 10;
}

/** `p50 / p99 / max` in ms for a table cell ('-' where no probe succeeded). */
export function latencyCell(l: Latency): string {
  const f = (v: number | null) => (v === null ? '-' : v.toFixed(1));
  return `${f(l.p50)} / ${f(l.p99)} / ${f(l.max)}`;
}
