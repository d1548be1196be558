/**
 * One side of an interleaved A/B run, as ab/run.ts (HTTP/1.1) and ab/https.ts take it from
 * `--a`/`--b`: the word `nginx` (the benchmark's own nginx peer) or a built checkout of this repo
 * (its `loch`). The two scripts start different servers for a side, but open a side, place it on
 * the CPUs and check a reading of it the same way; this module is that way. Not a proxy starter
 * (http-proxy/peers.ts, https/peers.ts and tree.ts write the configs) and not the round loop.
 */
import { resolve } from 'node:path';
import { type Measurement, measure, type Peer } from '../lib/measure.js';
import { type LochTree, openTree } from './tree.js';

/** wrk and the static backend share CPU 0 in every A/B layout. */
export const LOAD_CPU = '0';
/** The reference benchmark's load: wrk -t1 -c64. */
export const CONNECTIONS = 64;
/** A reading with more failed requests than this share is a proxy that stopped forwarding. */
const MAX_ERROR_SHARE = 0.01;
/** Fewer requests than this per connection is a stall (bench:https's bound), not a CPU figure. */
const STALL_REQUESTS_PER_CONNECTION = 10;

/**
 * The proxy's CPUs for `workers` workers: CPU 1 to itself with one (CPU 0 has the load), CPUs
 * 0-1 with more (bench:http-proxy's and bench:https's layouts).
 */
export function proxyCpus(workers: number): string {
  return workers === 1 ? '1' : '0-1';
}

/** One side as named on the command line. */
export interface AbSide {
  /** "A" or "B". */
  readonly label: string;
  /** The checkout whose loch runs, or undefined for nginx. */
  readonly tree: LochTree | undefined;
  /** What the side is, in words, for the page. */
  readonly what: string;
}

/**
 * `--a`/`--b` `value`: the word nginx (described as `nginxWhat` on the page), or a built checkout
 * relative to `cwd` (openTree's TreeNotReadyError when it is not one).
 */
export function openSide(label: string, value: string, cwd: string, nginxWhat: string): AbSide {
  if (value === 'nginx') return { label, tree: undefined, what: nginxWhat };
  const tree = openTree(label, resolve(cwd, value));
  return { label, tree, what: `loch \`${tree.root}\` (${tree.revision})` };
}

/** The checkouts among `sides` (for runWarnings). */
export function sideTrees(sides: readonly AbSide[]): LochTree[] {
  return sides.flatMap((s) => (s.tree === undefined ? [] : [s.tree]));
}

/**
 * One wrk reading of `peer` through `url` with the reference load, wrk on LOAD_CPU. Throws
 * (the run stops) when the peer has exited, stalled or failed more than 1% of the requests; a
 * reading with fewer failures is kept and named in `flagged`.
 */
export async function checkedReading(
  what: string,
  peer: Peer,
  url: string,
  o: { seconds: number; warmupSeconds: number; flagged: string[]; headers?: readonly string[] },
): Promise<Measurement> {
  if (peer.child.exitCode !== null || peer.child.signalCode !== null)
    throw new Error(`${what}: ${peer.name} exited:\n${peer.output()}`);
  const m = await measure(peer, url, {
    connections: CONNECTIONS,
    seconds: o.seconds,
    warmupSeconds: o.warmupSeconds,
    cpu: LOAD_CPU,
    ...(o.headers === undefined ? {} : { headers: o.headers }),
  });
  if (m.requests < CONNECTIONS * STALL_REQUESTS_PER_CONNECTION || m.errors > m.requests * MAX_ERROR_SHARE)
    throw new Error(
      `${what}: ${peer.name} stopped forwarding (${m.requests} requests, ${m.errors} errors)\n${peer.output()}`,
    );
  if (m.errors > 0) o.flagged.push(`${what}: ${m.errors} errors`);
  return m;
}
