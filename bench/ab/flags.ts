/**
 * What every interleaved A/B runner (run.ts, http2.ts, https.ts) does with its command line and
 * its rounds: a flag's value checked or a loud exit naming it, a side's `--x-env NAME=VALUE`
 * pairs, and which side goes first in a round. Not the flags themselves: each runner declares
 * its own with parseArgs.
 */

/** Leaves with `script: message` on stderr and exit code 2. */
export function usageExit(script: string, message: string): never {
  process.stderr.write(`${script}: ${message}\n`);
  process.exit(2);
}

/** A flag's value as an integer of at least `min`, or a usage exit naming the flag. */
export function numberFlag(script: string, name: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) usageExit(script, `--${name} ${value}: want an integer >= ${min}`);
  return n;
}

/** `NAME=VALUE` pairs of one side's --x-env flags, or a usage exit naming the bad one. */
export function envFlag(script: string, name: string, values: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) usageExit(script, `--${name} ${v}: want NAME=VALUE`);
    env[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return env;
}

/** Side order of round `round` (0-based): A first in even rounds, B first in odd ones. */
export function orderOf<S>(round: number, sides: readonly [S, S]): S[] {
  return round % 2 === 0 ? [sides[0], sides[1]] : [sides[1], sides[0]];
}
