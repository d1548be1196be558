/**
 * Ports for a server a test starts later or in another process (nginx, loch), taken below the
 * kernel's ephemeral range. A port from `listen(0)` is an ephemeral one: in the window between the
 * probe's close and the server's bind, any outgoing connection on the machine (CI runs every
 * package's suites at once) may take it as its source port -- seen in CI as "bind EADDRINUSE" at a
 * server's start. Below that range only explicit binds compete: other freePort() callers, which
 * portSlice() keeps apart (each vitest worker of each package probes only its own ports), and
 * anything else, which the bind probe sees. Also a port connections to are refused: nothing
 * else binds it by chance (a closed listen(0) port may be any other test's next listen(0)).
 * Slices only part workers of one run: two runs of one package at once (a helper's package suite
 * beside a full suite) number their workers alike, so a port handed out is also claimed for the
 * machine (claimPort: a file per port naming the process, given up at exit). The one copy for apps/proxy's e2e harness, packages/transports' nginx helper, packages/http's and
 * packages/gateway's tests. Not a test file.
 */
import { mkdirSync, readFileSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

/**
 * One band of the range per package whose vitest picks ports here: turbo runs every package's
 * vitest at once and each numbers its workers (VITEST_POOL_ID) from 1, so without bands worker 1
 * of two packages would probe the same ports. Pass the band of the package whose tests run (not
 * of the file's location). A new package takes the next number.
 */
export const PORT_BANDS = {
  'apps/proxy': 0,
  'packages/transports': 1,
  'packages/http': 2,
  'packages/gateway': 3,
} as const;

/** A package with a band. */
export type PortBand = keyof typeof PORT_BANDS;

/** vitest workers one run may have at once (VITEST_POOL_ID is 1..maxWorkers); each gets a slice. */
export const MAX_POOL_ID = 64;

/**
 * The lowest port any band holds: above 10080, the highest port fetch() (undici) refuses to
 * connect to ("bad port", the Fetch standard's port blocking), which a test's fetch would fail on.
 */
const PORT_FLOOR = 10_100;

/** The first port of the kernel's ephemeral range (net.ipv4.ip_local_port_range). */
export const ephemeralFloor = ((): number => {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > PORT_FLOOR + 10_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
})();

/**
 * The ports [low, high) that the worker `poolId` of band `band` probes: the range from PORT_FLOOR
 * to `ceiling` cut into (bands * MAX_POOL_ID) equal slices, one per (band, pool id), so that no two
 * workers running at one time (VITEST_POOL_ID is unique among one package's workers at one time)
 * probe the same port and can both take it between a probe and a bind.
 */
export function portSlice(band: number, poolId: number, ceiling: number): [low: number, high: number] {
  if (!Number.isInteger(poolId) || poolId < 1 || poolId > MAX_POOL_ID) {
    throw new Error(
      `VITEST_POOL_ID ${poolId} outside 1..${MAX_POOL_ID}: run with --maxWorkers=${MAX_POOL_ID} at most`,
    );
  }
  const bands = Object.keys(PORT_BANDS).length;
  const width = Math.floor((ceiling - PORT_FLOOR) / (bands * MAX_POOL_ID));
  const low = PORT_FLOOR + (band * MAX_POOL_ID + poolId - 1) * width;
  return [low, low + width];
}

/** This worker's slice of `band` (pool id 1 outside vitest: a script runs alone). */
export function ownSlice(band: PortBand): [low: number, high: number] {
  return portSlice(PORT_BANDS[band], Number(process.env.VITEST_POOL_ID ?? 1), ephemeralFloor);
}

/**
 * A port of this worker's slice of `band` that was free a moment ago; never one this process
 * returned before.
 */
export async function freePort(band: PortBand): Promise<number> {
  const [low, high] = ownSlice(band);
  const offset = Math.floor(Math.random() * (high - low));
  for (let i = 0; i < high - low; i++) {
    const port = low + ((offset + i) % (high - low));
    if (handedOut.has(port) || !claimPort(port)) continue;
    handedOut.add(port);
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port in ${low}..${high - 1}, this vitest worker's slice of ${band}`);
}

/**
 * Where a port handed out is claimed for the machine: one file per port, holding the claimant's
 * pid. A fixed path, not under $TMPDIR: vitest.temp-dir.ts gives every run a TMPDIR of its own,
 * and what is claimed (a loopback port) is the machine's.
 */
export const CLAIM_DIR = '/tmp/loch-test-ports';

/** Claim files this process made, removed at its exit. */
const claims: string[] = [];
let claiming = false;

/**
 * Claims `port` for this process unless another live process holds it (a claim whose process is
 * gone is taken over). True also when claims cannot be made at all (no writable temp dir): the
 * bind probe alone decides then, as before claims existed.
 */
export function claimPort(port: number): boolean {
  const path = join(CLAIM_DIR, String(port));
  try {
    if (!claiming) {
      mkdirSync(CLAIM_DIR, { recursive: true, mode: 0o777 });
      process.once('exit', dropClaims);
      claiming = true;
    }
    writeFileSync(path, String(process.pid), { flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return true;
    return takeOver(path);
  }
  claims.push(path);
  return true;
}

/**
 * Takes over the claim at `path` when its process is gone. Under a lock (a directory beside it,
 * made or not atomically), re-read there: of two processes taking over one stale claim, only one
 * gets it. A process killed inside the lock leaves that one port unclaimable: skipped for good.
 */
function takeOver(path: string): boolean {
  const stale = readClaim(path);
  // Empty: its claimant has created it and not yet written its pid. Undefined: given up just now.
  if (stale === undefined || stale === '' || Number(stale) === process.pid || alive(Number(stale)))
    return false;
  const lock = `${path}.taking`;
  try {
    mkdirSync(lock);
  } catch {
    return false;
  }
  try {
    if (readClaim(path) !== stale) return false;
    unlinkSync(path);
    writeFileSync(path, String(process.pid), { flag: 'wx' });
    claims.push(path);
    return true;
  } catch {
    return false;
  } finally {
    rmdirSync(lock);
  }
}

function readClaim(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function dropClaims(): void {
  for (const path of claims.splice(0)) {
    try {
      if (readFileSync(path, 'utf8') === String(process.pid)) unlinkSync(path);
    } catch {
      // already gone or taken over
    }
  }
}

/** Ports freePort() returned in this process. */
const handedOut = new Set<number>();

/** Whether 127.0.0.1:`port` can be listened on now. */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}
