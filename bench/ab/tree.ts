/**
 * One side of an A/B run: a checkout of this repo, already built, and how to start its `loch`
 * (apps/proxy's built `bin.loch`, run by this Node) as the HTTP reverse proxy of the reference
 * benchmark (1 worker unless told). Both sides get the same generated config (http-proxy/peers.ts's),
 * so only the code differs. Not a builder: a tree that is not built, or whose build is older than its
 * sources, is reported, never rebuilt.
 */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { type Peer, startPeer, waitForHttp } from '../lib/measure.js';

/** A checkout under test. */
export interface LochTree {
  /** "A" or "B". */
  readonly label: string;
  /** Absolute root of the checkout. */
  readonly root: string;
  /** The built `loch` command (apps/proxy's package.json `bin.loch`). */
  readonly cli: string;
  /** `git describe`-like: short commit, plus how many files differ from it. */
  readonly revision: string;
  /**
   * When the last build wrote apps/proxy's or a package's dist/ (the newest .js or .tsbuildinfo
   * there): the CLI file itself keeps its mtime while a build rewrites what it loads.
   */
  readonly builtAt: Date;
  /** Packages whose sources changed after their last build: the tree may not run what it holds. */
  readonly staleBuilds: readonly string[];
}

/** Thrown when a tree cannot be measured: not a checkout, or not built. */
export class TreeNotReadyError extends Error {
  readonly code = 'ERR_AB_TREE_NOT_READY';
}

/** Resolves `root` as the checkout for side `label`, or throws TreeNotReadyError with what to do. */
export function openTree(label: string, root: string): LochTree {
  const abs = resolve(root);
  const proxyDir = join(abs, 'apps', 'proxy');
  if (!existsSync(join(proxyDir, 'package.json')))
    throw new TreeNotReadyError(
      `${label}: ${abs} is not a checkout of this repo (no apps/proxy/package.json)`,
    );
  const pkg = JSON.parse(readFileSync(join(proxyDir, 'package.json'), 'utf8')) as { bin?: { loch?: string } };
  const cli = join(proxyDir, pkg.bin?.loch ?? 'dist/cli.js');
  if (!existsSync(cli))
    throw new TreeNotReadyError(`${label}: ${cli} does not exist (run \`pnpm build\` in ${abs} first)`);
  return {
    label,
    root: abs,
    cli,
    revision: revisionOf(abs),
    builtAt: new Date(
      Math.max(statSync(cli).mtimeMs, ...builtDirs(abs).map((d) => newestBuilt(join(abs, d)))),
    ),
    staleBuilds: staleBuilds(abs),
  };
}

function revisionOf(root: string): string {
  try {
    const git = (...args: string[]) =>
      execFileSync('git', ['-C', root, ...args], { encoding: 'utf8' }).trim();
    const head = git('rev-parse', '--short', 'HEAD');
    const changed = git('status', '--porcelain', '--untracked-files=no').split('\n').filter(Boolean).length;
    return changed === 0 ? `${head} (clean)` : `${head} + ${changed} changed files`;
  } catch {
    return 'not a git checkout';
  }
}

/** Newest mtime (ms) of the files under `dir` that `counts` accepts by name; 0 if none. */
function newestMtime(dir: string, counts: (name: string) => boolean): number {
  let newest = 0;
  if (!existsSync(dir)) return 0;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !counts(entry.name)) continue;
    newest = Math.max(newest, statSync(join(entry.parentPath ?? entry.path, entry.name)).mtimeMs);
  }
  return newest;
}

/** apps/proxy and packages/*, relative to `root`: the directories a build writes a dist/ in. */
function builtDirs(root: string): string[] {
  const dirs = [join('apps', 'proxy')];
  const packages = join(root, 'packages');
  if (existsSync(packages)) for (const p of readdirSync(packages)) dirs.push(join('packages', p));
  return dirs;
}

/**
 * Newest mtime (ms) of `dir`'s built output. tsc rewrites only the outputs whose text changed
 * but its .tsbuildinfo every time it runs, so this moves with every build that compiled the package.
 */
function newestBuilt(dir: string): number {
  return newestMtime(join(dir, 'dist'), (n) => n.endsWith('.js') || n === '.tsbuildinfo');
}

/** apps/proxy and packages/* whose src/ has a file newer than anything in their dist/. */
function staleBuilds(root: string): string[] {
  return builtDirs(root).filter((d) => {
    // A source whose mtime moved (a checkout) without a change still counts as built (newestBuilt).
    const built = newestBuilt(join(root, d));
    // Tests live beside the code in src/ but are not built.
    const source = newestMtime(join(root, d, 'src'), (n) => n.endsWith('.ts') && !/\.test(-d)?\.ts$/.test(n));
    return built > 0 && source > built;
  });
}

/**
 * The reference benchmark's loch config (bench/http-proxy/peers.ts) with `workers` workers; with
 * `adminPort` an `[admin]` listener, which turns metrics recording on (the metrics-on side of
 * `--metrics`); with `accessLog` the server's access log in text to that file (the on side of
 * `--access-log`), else none; `runtime`: extra lines of its `[runtime]` table (`--runtime-a`/`-b`).
 */
function lochConfig(
  port: number,
  upstreamPort: number,
  workers: number,
  adminPort?: number,
  accessLog?: string,
  runtime = '',
): string {
  const admin =
    adminPort === undefined
      ? ''
      : `[admin]\nlistener = { type = "socket", value = "127.0.0.1:${adminPort}" }\n\n`;
  return `${admin}[runtime]
workers = ${workers}
cpu_affinity = false
${runtime}

[log]
level = "warn"

[servers.bench]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:${port}" }
access_log = ${accessLog === undefined ? 'false' : `{ path = ${JSON.stringify(accessLog)}, format = "text" }`}
timeouts = { server_keepalive = "300s" }

[[servers.bench.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstreamPort}" }]
`;
}

/** Thrown when a started loch does not forward: it answered wrong, or not at all. */
export class LochDoesNotForwardError extends Error {
  readonly code = 'ERR_AB_LOCH_DOES_NOT_FORWARD';
}

/** A path the static backend serves and the body length it must come back with. */
export interface Probe {
  readonly path: string;
  readonly bytes: number;
}

/**
 * GETs every probe path through the proxy on 127.0.0.1:`port`; throws unless each answers 200
 * with the expected body length (a proxy that truncates or mangles a size is not measured).
 */
export async function checkBodies(port: number, probes: readonly Probe[]): Promise<void> {
  for (const probe of probes) {
    const res = await fetch(`http://127.0.0.1:${port}${probe.path}`, { signal: AbortSignal.timeout(5000) });
    const body = await res.arrayBuffer();
    if (res.status !== 200 || body.byteLength !== probe.bytes)
      throw new Error(
        `GET ${probe.path}: status ${res.status}, ${body.byteLength} body bytes (want 200, ${probe.bytes})`,
      );
  }
}

/** How big a running proxy's access log may grow before the harness empties it. */
const LOG_TRIM_BYTES = 256 * 1024 * 1024;

/**
 * Empties `file` whenever it passes LOG_TRIM_BYTES while `peer` runs: a round with the access log
 * on writes ~60,000 lines a second (the busy memory reading alone wrote 1.1 GB). loch and nginx
 * append (O_APPEND), so the truncated file grows again from 0, as in http-proxy/run.ts.
 */
export function trimWhileRunning(peer: Peer, file: string): void {
  const timer = setInterval(() => {
    try {
      if (statSync(file).size > LOG_TRIM_BYTES) truncateSync(file, 0);
    } catch {
      // Not written yet.
    }
  }, 1000);
  timer.unref();
  const stop = () => clearInterval(timer);
  peer.exited.then(stop, stop);
}

/**
 * Removes `dir` (a temp dir made for `peer` alone: its config, its access log) once the peer
 * has exited, so runs that start many instances do not fill /tmp with logs.
 */
export function removeOnExit(peer: Peer, dir: string): void {
  const remove = () => rmSync(dir, { recursive: true, force: true });
  peer.exited.then(remove, remove);
}

/**
 * Starts `tree`'s loch with `workers` workers (1 unless given) on 127.0.0.1:`port` pinned to
 * `cpu`, forwarding to the static backend, and resolves once it forwards every probe path with
 * status 200 and the expected body length (checkBodies). A loch that does not is stopped and reported with its output (LochDoesNotForwardError).
 */
export async function startLoch(
  tree: LochTree,
  o: {
    port: number;
    upstreamPort: number;
    cpu: string;
    probes: readonly Probe[];
    workers?: number | undefined;
    /** An admin listener here (metrics recorded); none: metrics off. */
    adminPort?: number | undefined;
    /** Access log on, in text to a file under the config's temp dir (logs/); off when false or absent. */
    accessLog?: boolean | undefined;
    /** Extra `[runtime]` lines (TOML), e.g. `worker_young_generation_bytes = 6291456`. */
    runtime?: string | undefined;
    /** Variables set in loch's environment over the harness's (e.g. NODE_OPTIONS); absent: none. */
    env?: Readonly<Record<string, string>> | undefined;
  },
): Promise<Peer> {
  const dir = mkdtempSync(join(tmpdir(), `loch-bench-ab-${tree.label}-`));
  const config = join(dir, 'loch.toml');
  // The log goes in a directory of its own: loch watches the config's directory (inotify, whose
  // events include every write to a file there), so a log beside loch.toml would wake loch's main
  // thread at every flush (bench/http-proxy/gc-2026-12-06.md).
  const accessLog = o.accessLog ? join(dir, 'logs', 'access.log') : undefined;
  if (accessLog !== undefined) mkdirSync(dirname(accessLog));
  writeFileSync(
    config,
    lochConfig(o.port, o.upstreamPort, o.workers ?? 1, o.adminPort, accessLog, o.runtime),
  );
  // cwd = the tree, so nothing of the harness's checkout leaks into module resolution.
  const peer = startPeer(`loch ${tree.label}`, process.execPath, [tree.cli, 'run', '-c', config], {
    cpu: o.cpu,
    cwd: tree.root,
    env: { ...process.env, ...o.env },
  });
  removeOnExit(peer, dir);
  if (accessLog !== undefined) trimWhileRunning(peer, accessLog);
  // A loch that exits (bad config, missing native addon) fails at once, not after the timeout.
  const exited = peer.exited.then((code) => {
    throw new Error(`exited with ${code} before it forwarded`);
  });
  exited.catch(() => {});
  try {
    await Promise.race([waitForHttp(o.port, o.probes[0]?.path ?? '/', '127.0.0.1', 15_000), exited]);
    await checkBodies(o.port, o.probes);
    return peer;
  } catch (err) {
    await peer.stop();
    throw new LochDoesNotForwardError(
      `loch ${tree.label} (${tree.cli}) does not forward: ${(err as Error).message}\n--- its output ---\n${peer.output()}`,
    );
  }
}

/** Warnings every A/B run prints: a stale build on either side, a busy machine, too few rounds. */
export function runWarnings(trees: readonly LochTree[], rounds: number): string[] {
  const warnings: string[] = [];
  for (const t of trees) {
    if (t.staleBuilds.length > 0)
      warnings.push(
        `${t.label} (${t.root}): sources newer than the build in ${t.staleBuilds.join(', ')}; loch runs the build.`,
      );
  }
  const load1 = loadavg()[0]!;
  // The run itself keeps about one core busy; more than that is someone else's work.
  if (load1 > 1)
    warnings.push(
      `load average ${load1.toFixed(2)} before the run: other work shares these ${availableParallelism()} CPUs; expect a wide spread.`,
    );
  if (rounds < 5) warnings.push(`${rounds} round(s): a smoke run; issue 12 asks for at least 5.`);
  return warnings;
}

/** A run's start as a file-name stamp: 2026-12-03T201500Z. */
export function fileStamp(started: Date): string {
  return started
    .toISOString()
    .replace(/[:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}
