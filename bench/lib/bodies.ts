/**
 * The response bodies the proxy benchmarks serve through a static nginx backend: Monolake's
 * sizes (128 B, 3,269 B, 11,268 B, 165,854 B) and a 0-64 KiB sweep, as files named by their
 * byte count (`/<bytes>`) in a temp dir. Not the backend itself (see nginx.ts).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Body sizes of Monolake's proxy benchmark. */
export const MONOLAKE_SIZES: readonly number[] = [128, 3269, 11268, 165854];

/** The 0-64 KiB sweep. */
export const SWEEP_SIZES: readonly number[] = [0, 1024, 4096, 16384, 32768, 65536];

/** Both sets, ascending, without duplicates. */
export const ALL_SIZES: readonly number[] = [...new Set([...MONOLAKE_SIZES, ...SWEEP_SIZES])].sort(
  (a, b) => a - b,
);

/** Writes one file per size (deterministic printable bytes) into a new temp dir; returns the dir. */
export function writeBodies(sizes: readonly number[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'loch-bench-bodies-'));
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  for (const size of sizes) {
    const body = Buffer.alloc(size);
    for (let i = 0; i < size; i++) body[i] = alphabet.charCodeAt(i % alphabet.length);
    writeFileSync(join(dir, String(size)), body);
  }
  return dir;
}

/** "0 B", "128 B", "3,269 B", "64 KiB": KiB only for exact multiples of 1024. */
export function formatSize(bytes: number): string {
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes.toLocaleString('en-US')} B`;
}
