#!/usr/bin/env node
/**
 * The `loch` executable: runs the CLI and sets the exit code. Kept tiny so that a symlinked
 * bin (node_modules/.bin/loch) works: all logic is in cli.ts. Not for argument parsing.
 */
import { main } from './cli.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`loch: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
