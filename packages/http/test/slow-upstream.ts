/**
 * Test support: starts test/slow_upstream_reader.py (an upstream that reads request bodies
 * slowly over a small receive buffer and a network's MSS; HTTP/2 with --h2; see its header for
 * the options) and resolves once it printed its port. Used by the client deadline tests here and
 * by @loch/transports' write-progress test.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('./slow_upstream_reader.py', import.meta.url));

/** A running slow_upstream_reader.py: its port, and the child to kill when done. */
export interface SlowUpstream {
  port: number;
  child: ChildProcess;
}

/** Starts slow_upstream_reader.py with `args` (e.g. `['--h2', '--stall-after', '1']`). */
export function startSlowUpstream(args: string[]): Promise<SlowUpstream> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', [SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`slow_upstream_reader.py exited with ${code}`)));
    child.stdout!.setEncoding('utf8').once('data', (d: string) => resolve({ port: Number(d.trim()), child }));
  });
}
