/**
 * `loch run`: the main thread of the proxy. Starts one worker per configured core through the
 * runtime's start(), then supervises: reloads on SIGHUP and when the config file changes
 * (fs.watch on its directory, debounced), stops gracefully on SIGTERM/SIGINT, logs each
 * worker's counters on SIGUSR2.
 *
 * Reload is a two-phase commit over the workers' command channel: the new file is read and
 * validated here (a bad file is logged with every error and the running config stays), then
 * every worker precommits (builds its chains from the current ones and binds added listeners),
 * the replies are gathered, and all workers commit, or all abort if any failed. Changes to
 * `[runtime]` need a restart: such a reload is refused by name and the old config stays.
 * Not for the request path (worker.ts and the layers).
 */
import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { start, type WorkerPool } from '@loch/uring-runtime';
import { ConfigError, loadConfigFile } from '../config/load.js';
import type { ProxyConfig } from '../config/schema.js';
import { debugAidsFromEnv } from './debug-aids.js';
import { ProxyLog } from './log.js';
import { listenId, type WorkerCommand, type WorkerData } from './worker.js';

/** How long the config file must be quiet before a change triggers a reload (ms). */
const DEBOUNCE_MS = 150;

/** What changed in `[runtime]` between two configs (those need a restart). */
export function runtimeChanges(a: ProxyConfig, b: ProxyConfig): string[] {
  const out: string[] = [];
  if (a.runtime.workers !== b.runtime.workers) out.push('runtime.workers');
  if (a.runtime.driver !== b.runtime.driver) out.push('runtime.driver');
  if (a.runtime.entries !== b.runtime.entries) out.push('runtime.entries');
  if (a.runtime.cpuAffinity !== b.runtime.cpuAffinity) out.push('runtime.cpu_affinity');
  return out;
}

function describeListen(config: ProxyConfig): string {
  return config.servers.map((s) => `${s.key}=${listenId(s.listen)}`).join(' ');
}

/** Runs the proxy until SIGTERM/SIGINT; resolves with the exit code. */
export async function runProxy(config: ProxyConfig, configPath: string): Promise<number> {
  const log = new ProxyLog(config.logLevel, '');
  const file = resolve(configPath);
  const driver =
    (process.env.LOCH_DRIVER as ProxyConfig['runtime']['driver'] | undefined) || config.runtime.driver;
  const workerUrl = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url);
  let pool: WorkerPool;
  try {
    pool = await start(
      {
        workers: config.runtime.workers,
        cpuAffinity: config.runtime.cpuAffinity,
        driver,
        uring: { entries: config.runtime.entries },
        data: { config, debug: debugAidsFromEnv() } satisfies WorkerData,
      },
      workerUrl,
    );
  } catch (error) {
    log.error(`cannot start: ${(error as Error).message}`);
    log.flush();
    return 1;
  }
  const startup = await pool.broadcast({ t: 'startup' } satisfies WorkerCommand, { timeout: 15_000 });
  const failed = startup.filter((r) => !r.ok);
  if (failed.length) {
    for (const f of failed) if (!f.ok) log.error(`cannot start: worker ${f.worker}: ${f.error.message}`);
    log.flush();
    await pool.stop({ deadline: 5_000 });
    return 1;
  }
  const drivers = [...new Set(pool.workers.map((w) => w.driver))].join(',');
  log.info(
    `started ${pool.workers.length} worker(s), driver ${drivers} (${pool.workers[0]?.driverReason ?? ''}); listening: ${describeListen(config)}`,
  );
  log.flush();

  let current = config;
  let generation = 0;
  let reloading: Promise<void> | null = null;
  let again = false;
  let stopping = false;

  const reloadOnce = async (why: string): Promise<void> => {
    let next: ProxyConfig;
    try {
      next = await loadConfigFile(file);
    } catch (error) {
      const detail = error instanceof ConfigError ? error.message : String(error);
      log.error(`reload (${why}) failed, keeping the running config: ${detail}`);
      return;
    }
    const refused = runtimeChanges(current, next);
    if (refused.length) {
      log.error(
        `reload (${why}) refused, keeping the running config: ${refused.join(', ')} cannot change while running (restart loch)`,
      );
      return;
    }
    const gen = ++generation;
    const precommit: WorkerCommand = { t: 'precommit', generation: gen, config: next };
    const replies = await pool.broadcast(precommit, { timeout: 15_000 });
    const failed = replies.filter((r) => !r.ok);
    if (failed.length) {
      await pool.broadcast({ t: 'abort', generation: gen } satisfies WorkerCommand);
      for (const f of failed) {
        if (!f.ok)
          log.error(`reload (${why}) aborted on every worker: worker ${f.worker}: ${f.error.message}`);
      }
      return;
    }
    const committed = await pool.broadcast({ t: 'commit', generation: gen } satisfies WorkerCommand);
    for (const r of committed)
      if (!r.ok) log.error(`commit on worker ${r.worker} failed: ${r.error.message}`);
    current = next;
    log.level = next.logLevel;
    log.info(`reloaded ${file} (generation ${gen}); listening: ${describeListen(next)}`);
  };

  const reload = (why: string): void => {
    if (stopping) return;
    if (reloading) {
      again = true;
      return;
    }
    reloading = reloadOnce(why)
      .catch((error: unknown) => log.error(`reload (${why}): ${(error as Error).stack ?? String(error)}`))
      .finally(() => {
        log.flush();
        reloading = null;
        if (again) {
          again = false;
          reload(why);
        }
      });
  };

  let debounce: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  try {
    // The directory, not the file: editors and `mv` replace the file, which ends a file watch.
    watcher = watch(dirname(file), (_event, name) => {
      if (name !== null && name !== basename(file)) return;
      clearTimeout(debounce);
      debounce = setTimeout(() => reload('file changed'), DEBOUNCE_MS);
    });
  } catch (error) {
    log.warn(`not watching ${file}: ${(error as Error).message}; reload with SIGHUP`);
  }

  const onHup = () => reload('SIGHUP');
  process.on('SIGHUP', onHup);
  // SIGUSR2: one line per worker with its connections and upstream pool counters.
  // (SIGUSR1 is Node's inspector signal.)
  const onUsr2 = () => {
    void pool.broadcast({ t: 'stats' } satisfies WorkerCommand).then((replies) => {
      for (const r of replies) {
        if (r.ok) log.info(`stats ${JSON.stringify(r.value)}`);
        else log.warn(`stats: worker ${r.worker}: ${r.error.message}`);
      }
      log.flush();
    });
  };
  process.on('SIGUSR2', onUsr2);

  return new Promise<number>((resolveExit) => {
    const shutdown = async (signal: string, code: number): Promise<void> => {
      if (stopping) return;
      stopping = true;
      clearTimeout(debounce);
      watcher?.close();
      process.off('SIGHUP', onHup);
      process.off('SIGUSR2', onUsr2);
      const grace = Math.max(0, ...current.servers.map((s) => s.timeouts.shutdownGrace));
      log.info(`${signal}: stopping (in-flight requests get up to ${grace} ms)`);
      log.flush();
      await reloading;
      const result = await pool.stop({ deadline: grace + 2_000 });
      if (result.forced.length)
        log.warn(`worker(s) ${result.forced.join(',')} did not stop in time and were terminated`);
      log.info('stopped');
      log.flush();
      resolveExit(code);
    };
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn(`${signal} again: exiting now`);
        log.flush();
        process.exit(1);
      }
      void shutdown(signal, 0);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    pool.on('crash', ({ worker, error }: { worker: number; error: Error }) => {
      log.error(`worker ${worker} crashed: ${error.stack ?? error.message}; stopping`);
      void shutdown('crash', 1);
    });
  });
}
