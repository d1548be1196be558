/**
 * Command-line options shared by the wrk-driven runners (http-proxy, l4-forward): --quick,
 * --seconds and --warmup, and how they turn into run lengths. Not for runner-specific flags,
 * which each run.ts declares beside these.
 */

/**
 * The runner's own arguments: process.argv after the script, without a `--` separator
 * (`pnpm run <script> -- --flag` passes the `--` through to the script).
 */
export function runnerArgs(): string[] {
  return process.argv.slice(2).filter((a) => a !== '--');
}

/** parseArgs options for --quick, --seconds N and --warmup N; spread into a runner's options. */
export const TIMING_OPTIONS = {
  quick: { type: 'boolean', default: false },
  seconds: { type: 'string' },
  warmup: { type: 'string' },
} as const;

/** Run lengths from parsed TIMING_OPTIONS: 10 s measured after 2 s warm-up, or 3 s / 1 s with --quick. */
export function timing(args: {
  quick?: boolean | undefined;
  seconds?: string | undefined;
  warmup?: string | undefined;
}): {
  quick: boolean;
  seconds: number;
  warmupSeconds: number;
} {
  const quick = args.quick === true;
  return {
    quick,
    seconds: Number(args.seconds ?? (quick ? 3 : 10)),
    warmupSeconds: Number(args.warmup ?? (quick ? 1 : 2)),
  };
}
