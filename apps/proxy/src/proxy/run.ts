/**
 * `loch run`: the main thread of the proxy. Starts one worker per configured core through the
 * runtime's start(), then supervises: reloads on SIGHUP and when the config file changes
 * (file-watch.ts: its directory, with @loch/native's watch; debounced), stops gracefully on SIGTERM/SIGINT, has every worker
 * reopen its access-log files on SIGUSR1 (logrotate), logs each worker's counters on SIGUSR2
 * (the signals are listed in `loch --help`: cli.ts SIGNALS), and keeps serving when a worker crashes: the runtime's pool
 * replaces it (back-off, crash-loop limit), and the replacement is brought to the config
 * running now before it is counted as restarted. Only every worker in a crash loop stops loch.
 *
 * Reload is a two-phase commit over the workers' command channel: the new file is read and
 * validated in a short-lived thread (config/isolated-load.ts: this thread never loads the
 * schema; a bad file is logged with every error and the running config stays), then
 * every worker precommits (builds its chains from the current ones and binds added listeners),
 * the replies are gathered, and all workers commit, or all abort if any failed. Changes to
 * `[runtime]` need a restart: such a reload is refused by name and the old config stays.
 * Not for the request path (worker.ts and the layers).
 */
import { resolve } from 'node:path';
import {
  DEFAULT_RESTART_POLICY,
  Runtime,
  start,
  type WorkerCrash,
  type WorkerCrashLoop,
  type WorkerFault,
  type WorkerPool,
  type WorkerReply,
  type WorkerRestart,
} from '@loch/uring-runtime';
import { AdminPlane } from '../admin/admin-listener.js';
import { ConfigError } from '../config/config-error.js';
import { type LoadedConfig, loadConfigIsolated } from '../config/isolated-load.js';
import type { ProxyConfig } from '../config/schema.js';
import { keepTicketKeys, tlsNotes } from '../config/tls-view.js';
import { ActiveHealthChecker } from '../health/active-checks.js';
import { attachHealthFlags, newHealthBuffer, outlierWords, retryWords } from '../health/health-flags.js';
import { OutlierSlots } from '../health/outlier-slots.js';
import { RetrySlots } from '../health/retry-slots.js';
import { debugAidsFromEnv } from './debug-aids.js';
import { FilesWatch } from './file-watch.js';
import { ProxyLog } from './log.js';
import { rotateTicketKeys, TicketKeyRotation } from './ticket-rotation.js';
import { logsInWatchedDirectories, watchedLogWarning } from './watched-logs.js';
import { listenId, type WorkerCommand, type WorkerData } from './worker-protocol.js';

/** How long the config file must be quiet before a change triggers a reload (ms). */
const DEBOUNCE_MS = 150;

/**
 * How crashed workers are replaced: at once after a short back-off (nginx's master restarts a
 * dead worker immediately), doubling per crash of the same worker up to 5 s; a sixth crash of
 * one worker within a minute is a crash loop and that worker is given up.
 */
export const WORKER_RESTART: typeof DEFAULT_RESTART_POLICY = Object.freeze({
  ...DEFAULT_RESTART_POLICY,
  minBackoffMs: 100,
  maxBackoffMs: 5_000,
});

/** Replies that mean "this worker is being replaced or gone", not "it refused". */
const ABSENT = new Set(['ERR_LOCH_WORKER_RESTARTING', 'ERR_LOCH_WORKER_GONE']);

function absent(reply: WorkerReply): boolean {
  return !reply.ok && ABSENT.has(reply.error.code);
}

/**
 * The debugging aid that crashes a worker on purpose (tests of supervision):
 * `LOCH_DEBUG_CRASH_WORKER=<index>` makes every SIGURG throw an uncaught error in that worker.
 * SIGURG is ignored by default and never sent by a terminal, so without the variable nothing
 * changes. Returns the index, undefined when unset, or an error message when invalid.
 */
export function debugCrashWorker(
  value: string | undefined,
  workers: number,
): number | undefined | { error: string } {
  if (value === undefined || value === '') return undefined;
  const index = Number(value);
  if (!Number.isInteger(index) || index < 0 || index >= workers)
    return { error: `LOCH_DEBUG_CRASH_WORKER=${value} is not a worker index (0..${workers - 1})` };
  return index;
}

/**
 * Which fault SIGURG injects into LOCH_DEBUG_CRASH_WORKER's worker: `LOCH_DEBUG_FAULT=throw`
 * (the default: an uncaught error), `exit` (the thread exits with code 70) or
 * `drop-completions` (wedged: its io_uring ring drops every completion, or its legacy thread
 * blocks; the watchdog finds it). Returns the fault, or an error message when unknown.
 */
export function debugFault(value: string | undefined): WorkerFault | { error: string } {
  if (value === undefined || value === '') return 'throw';
  if (value === 'throw' || value === 'exit' || value === 'drop-completions') return value;
  return { error: `LOCH_DEBUG_FAULT=${value} is not a fault (throw, exit, drop-completions)` };
}

/**
 * The workers' watchdog from LOCH_WORKER_WATCHDOG_MS: unset, the runtime's default (a worker
 * without a heartbeat for 30 s is wedged and replaced); `0`, none; N, wedged after N ms
 * (heartbeats every N/4 ms, at most every second). Returns an error message when invalid.
 */
export function workerWatchdog(
  value: string | undefined,
): { intervalMs: number; timeoutMs: number } | false | undefined | { error: string } {
  if (value === undefined || value === '') return undefined;
  const ms = Number(value);
  if (ms === 0) return false;
  if (!Number.isInteger(ms) || ms < 100)
    return { error: `LOCH_WORKER_WATCHDOG_MS=${value} is not 0 or a whole number of ms >= 100` };
  return { intervalMs: Math.min(1000, Math.floor(ms / 4)), timeoutMs: ms };
}

/** What changed in `[runtime]` between two configs (those need a restart). */
export function runtimeChanges(a: ProxyConfig, b: ProxyConfig): string[] {
  const out: string[] = [];
  if (a.runtime.workers !== b.runtime.workers) out.push('runtime.workers');
  if (a.runtime.driver !== b.runtime.driver) out.push('runtime.driver');
  if (a.runtime.entries !== b.runtime.entries) out.push('runtime.entries');
  if (a.runtime.cpuAffinity !== b.runtime.cpuAffinity) out.push('runtime.cpu_affinity');
  if (a.runtime.streamBufferBytes !== b.runtime.streamBufferBytes) out.push('runtime.stream_buffer_bytes');
  if (a.runtime.workerBufferBytes !== b.runtime.workerBufferBytes) out.push('runtime.worker_buffer_bytes');
  if (a.runtime.workerYoungGenerationBytes !== b.runtime.workerYoungGenerationBytes)
    out.push('runtime.worker_young_generation_bytes');
  if (a.runtime.waveCollectOpen !== b.runtime.waveCollectOpen) out.push('runtime.wave_collect_open');
  return out;
}

/** The LOCH_WAVE_COLLECT_OPEN values @loch/uring-runtime reads (resolveWaveCollectOpen); others are unset to it. */
const WAVE_COLLECT_OPEN_WORDS: readonly string[] = ['1', 'on', '0', 'off'];

/**
 * runtime.wave_collect_open as the workers' env: start() hands a worker's runtime no such option,
 * and @loch/uring-runtime reads LOCH_WAVE_COLLECT_OPEN when the option is absent; a worker thread
 * starts with a copy of this process's env (a replaced worker too). Returns what to add to the
 * env: nothing when the variable holds a value the runtime reads (it wins, as LOCH_DRIVER over
 * runtime.driver) or the key is off (the runtime's default). A value the runtime does not read
 * ("true", "yes") would leave the collection off, so the key overrides it. The CLI runs one proxy
 * a process, so the change to process.env is never undone.
 */
export function waveCollectOpenEnv(
  config: ProxyConfig,
  env: NodeJS.ProcessEnv = process.env,
): { LOCH_WAVE_COLLECT_OPEN?: string } {
  const read = WAVE_COLLECT_OPEN_WORDS.includes(env.LOCH_WAVE_COLLECT_OPEN ?? '');
  return read || !config.runtime.waveCollectOpen ? {} : { LOCH_WAVE_COLLECT_OPEN: '1' };
}

/** The workers' V8 heap limits: runtime.worker_young_generation_bytes (0: V8's own). */
export function workerResourceLimits(config: ProxyConfig): { maxYoungGenerationSizeMb: number } | undefined {
  const bytes = config.runtime.workerYoungGenerationBytes;
  return bytes === 0 ? undefined : { maxYoungGenerationSizeMb: bytes / (1024 * 1024) };
}

/**
 * The workers' receive budgets: `[runtime]` stream_buffer_bytes and worker_buffer_bytes, each
 * unless its env variable is set (LOCH_STREAM_BUFFER_BYTES, LOCH_WORKER_BUFFER_BYTES; read by
 * the runtime when the option is absent), as LOCH_DRIVER wins over runtime.driver.
 */
export function receiveBudgets(
  config: ProxyConfig,
  env: NodeJS.ProcessEnv = process.env,
): { streamBytes?: number; workerBytes?: number } {
  const set = (name: string) => env[name] !== undefined && env[name] !== '';
  return {
    ...(set('LOCH_STREAM_BUFFER_BYTES') ? {} : { streamBytes: config.runtime.streamBufferBytes }),
    ...(set('LOCH_WORKER_BUFFER_BYTES') ? {} : { workerBytes: config.runtime.workerBufferBytes }),
  };
}

function describeListen(config: ProxyConfig): string {
  return [...config.servers, ...config.thriftServers].map((s) => `${s.key}=${listenId(s.listen)}`).join(' ');
}

/** The part of a config the main thread's log opens: `[log] error_log` (no access logs). */
function errorLogOnly(config: ProxyConfig): ProxyConfig {
  return { ...config, servers: [], thriftServers: [] };
}

/** Runs the proxy until SIGTERM/SIGINT; resolves with the exit code. */
export async function runProxy(
  { config: loaded, files: loadedFiles }: LoadedConfig,
  configPath: string,
): Promise<number> {
  const log = new ProxyLog(loaded.logLevel, '');
  try {
    // `[log] error_log`: this thread's lines go to the file too (workers open it themselves).
    log.commitAccess(log.prepareAccess(errorLogOnly(loaded)));
  } catch (error) {
    log.error(`cannot start: ${(error as Error).message}`);
    log.flush();
    return 1;
  }
  const envProblem = log.configureLevels(loaded);
  if (envProblem !== undefined) log.warn(envProblem);
  for (const note of tlsNotes(loaded)) log.info(note);
  // Active health checks run here, once per process; workers read the verdicts from `health`.
  const health = newHealthBuffer(loaded.runtime.workers);
  const checker = new ActiveHealthChecker(attachHealthFlags(health)!, {
    info: (m) => {
      log.info(m);
      log.flush();
    },
    warn: (m) => {
      log.warn(m);
      log.flush();
    },
  });
  // Passive health (outlier detection) of every worker shares `health` too: placed here.
  const outliers = new OutlierSlots(outlierWords()!, (m) => log.warn(m));
  // And so do the retry budgets' counts (a block per worker), placed after the other two (their
  // places are part of a group's identity).
  const retries = new RetrySlots(retryWords()!, (m) => log.warn(m));
  const config = retries.update(outliers.update(checker.update(loaded)));
  checker.retain(config);
  outliers.retain(config);
  retries.retain(config);
  const file = resolve(configPath);
  const driver =
    (process.env.LOCH_DRIVER as ProxyConfig['runtime']['driver'] | undefined) || config.runtime.driver;
  const workerUrl = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url);
  const debug = debugAidsFromEnv();
  const crashTarget = debugCrashWorker(process.env.LOCH_DEBUG_CRASH_WORKER, config.runtime.workers);
  const fault = debugFault(process.env.LOCH_DEBUG_FAULT);
  const watchdog = workerWatchdog(process.env.LOCH_WORKER_WATCHDOG_MS);
  // Metrics buffers and the admin listener (served here, by the main thread: admin/).
  const admin = new AdminPlane(config, config.runtime.workers, log);
  Object.assign(process.env, waveCollectOpenEnv(config));
  let pool: WorkerPool;
  try {
    pool = await start(
      {
        workers: config.runtime.workers,
        cpuAffinity: config.runtime.cpuAffinity,
        driver,
        uring: {
          entries: config.runtime.entries,
          ...(config.runtime.directFiles === undefined ? {} : { directFiles: config.runtime.directFiles }),
        },
        buffers: receiveBudgets(config),
        resourceLimits: workerResourceLimits(config),
        data: { config, debug, metrics: admin.workerShare(), health } satisfies WorkerData,
        restart: WORKER_RESTART,
        faultInjection: typeof crashTarget === 'number',
        watchdog: typeof watchdog === 'object' && 'error' in watchdog ? undefined : watchdog,
      },
      workerUrl,
    );
  } catch (error) {
    log.error(`cannot start: ${(error as Error).message}`);
    log.flush();
    checker.close();
    return 1;
  }
  const startup = await pool.broadcast({ t: 'startup' } satisfies WorkerCommand, { timeout: 15_000 });
  const failed = startup.filter((r) => !r.ok);
  if (failed.length) {
    for (const f of failed) if (!f.ok) log.error(`cannot start: worker ${f.worker}: ${f.error.message}`);
    log.flush();
    checker.close();
    await pool.stop({ deadline: 5_000 });
    return 1;
  }

  let current = config;
  let generation = 0;
  /** The generation every running worker serves (reloads that failed do not count). */
  let committed = 0;
  let stopping = false;
  let finish!: (code: number) => void;
  const exited = new Promise<number>((resolveExit) => {
    finish = resolveExit;
  });

  /**
   * Reloads and the catch-up of replacement workers run one at a time, in order: a replacement
   * is never brought to a config that a reload is replacing at the same moment.
   */
  let tail: Promise<void> = Promise.resolve();
  const serially = (what: string, task: () => Promise<void>): void => {
    tail = tail
      .then(task)
      .catch((error: unknown) => log.error(`${what}: ${(error as Error).stack ?? String(error)}`))
      .finally(() => log.flush());
  };

  /** Logs already warned of (logsInWatchedDirectories): once each, not at every reload. */
  const warnedLogs = new Set<string>();
  const warnWatchedLogs = (config: ProxyConfig, files: readonly string[]) => {
    for (const path of logsInWatchedDirectories(config, [file, ...files]))
      if (!warnedLogs.has(path)) {
        warnedLogs.add(path);
        log.warn(watchedLogWarning(path));
      }
  };

  const reloadOnce = async (why: string): Promise<void> => {
    if (stopping) return;
    let next: ProxyConfig;
    let files: readonly string[];
    try {
      // Read and validated in a thread of its own (the schema never loads here).
      const read = await loadConfigIsolated(file);
      files = read.files;
      next = retries.update(outliers.update(checker.update(keepTicketKeys(current, read.config))));
    } catch (error) {
      const detail = error instanceof ConfigError ? error.message : String(error);
      log.error(`reload (${why}) failed, keeping the running config: ${detail}`);
      admin.reloaded('failed');
      return;
    }
    const refused = runtimeChanges(current, next);
    if (refused.length) {
      log.error(
        `reload (${why}) refused, keeping the running config: ${refused.join(', ')} cannot change while running (restart loch)`,
      );
      checker.retain(current);
      outliers.retain(current);
      retries.retain(current);
      admin.reloaded('refused');
      return;
    }
    const gen = ++generation;
    const precommit: WorkerCommand = {
      t: 'precommit',
      generation: gen,
      config: next,
      metrics: admin.planFor(next),
    };
    const replies = await pool.broadcast(precommit, { timeout: 15_000 });
    // A worker being replaced after a crash (or given up) takes no part: its replacement starts
    // on the config current when it comes up, and is brought up to date after this reload.
    const failed = replies.filter((r) => !r.ok && !absent(r));
    if (failed.length) {
      await pool.broadcast({ t: 'abort', generation: gen } satisfies WorkerCommand);
      checker.retain(current);
      outliers.retain(current);
      retries.retain(current);
      for (const f of failed) {
        if (!f.ok)
          log.error(`reload (${why}) aborted on every worker: worker ${f.worker}: ${f.error.message}`);
      }
      admin.reloaded('aborted');
      return;
    }
    for (const r of replies)
      if (absent(r)) log.warn(`reload (${why}): worker ${r.worker} is not running, skipped`);
    pool.setData({ config: next, debug, metrics: admin.workerShare(), health } satisfies WorkerData);
    const commit: WorkerCommand = { t: 'commit', generation: gen };
    const committedOn = await Promise.all(
      replies
        .filter((r) => r.ok)
        .map((r) =>
          pool.send(r.worker, commit).then(
            () => null,
            (error: unknown) => ({ worker: r.worker, error: error as Error }),
          ),
        ),
    );
    for (const f of committedOn)
      if (f !== null) log.error(`commit on worker ${f.worker} failed: ${f.error.message}`);
    current = next;
    committed = gen;
    checker.retain(next);
    outliers.retain(next);
    retries.retain(next);
    void admin.reloaded('ok', next, gen);
    watched.update([file, ...files]);
    warnWatchedLogs(next, files);
    rotation.update(next);
    try {
      log.commitAccess(log.prepareAccess(errorLogOnly(next)));
    } catch (error) {
      log.error(`reload (${why}): the main thread keeps its error log: ${(error as Error).message}`);
    }
    log.configureLevels(next);
    log.info(`reloaded ${file} (generation ${gen}); listening: ${describeListen(next)}`);
    for (const note of tlsNotes(next)) log.info(note);
  };

  let reloadQueued = false;
  const reload = (why: string): void => {
    // Requests while one is queued join it (it reads the file when it runs: the latest wins).
    if (stopping || reloadQueued) return;
    reloadQueued = true;
    serially(`reload (${why})`, () => {
      reloadQueued = false;
      return reloadOnce(why);
    });
  };

  /**
   * A replacement came up on the config of its start data. Checks that its listeners bound
   * (the `startup` command), then brings it to the running config and generation. A replacement
   * that cannot is failed, so the pool counts it as a crash (and gives up after too many).
   */
  const catchUp = async ({ worker, attempt }: WorkerRestart): Promise<void> => {
    if (stopping) return;
    const replaced = (error: unknown) => ABSENT.has((error as { code?: string }).code ?? '');
    try {
      await pool.send(worker, { t: 'startup' } satisfies WorkerCommand, { timeout: 15_000 });
      if (committed > 0) {
        const gen = committed;
        await pool.send(
          worker,
          { t: 'precommit', generation: gen, config: current } satisfies WorkerCommand,
          {
            timeout: 15_000,
          },
        );
        await pool.send(worker, { t: 'commit', generation: gen } satisfies WorkerCommand);
      }
    } catch (error) {
      // Crashed again meanwhile: its next replacement catches up in turn.
      if (replaced(error)) return;
      const cause = new Error(`replacement cannot serve: ${(error as Error).message}`);
      log.error(`worker ${worker}: ${cause.message}`);
      pool.fail(worker, cause);
      return;
    }
    admin.restarted();
    log.info(
      `worker ${worker} restarted (crash ${attempt} of ${WORKER_RESTART.maxRestarts} allowed within ${WORKER_RESTART.windowMs} ms); serving generation ${committed}`,
    );
  };

  pool.on('crash', ({ worker, error, restartIn, attempt }: WorkerCrash) => {
    const next =
      restartIn !== undefined
        ? `restarting it in ${restartIn} ms (crash ${attempt} within ${WORKER_RESTART.windowMs} ms)`
        : stopping
          ? 'not restarted (stopping)'
          : 'not restarted';
    log.error(`worker ${worker} crashed: ${error.stack ?? error.message}; ${next}`);
    log.flush();
  });
  pool.on('restart', (restart: WorkerRestart) =>
    serially(`worker ${restart.worker} restart`, () => catchUp(restart)),
  );
  pool.on('crash-loop', ({ worker, crashes, windowMs }: WorkerCrashLoop) => {
    const serving = [];
    for (let i = 0; i < pool.size; i++) {
      const status = pool.status(i);
      if (status === 'running' || status === 'restarting') serving.push(i);
    }
    log.error(
      `worker ${worker} is in a crash loop (${crashes} crashes within ${windowMs} ms): not restarted again; ${serving.length ? `worker(s) ${serving.join(',')} still serving` : 'no worker left'}`,
    );
    log.flush();
    if (serving.length === 0) void shutdown('every worker in a crash loop', 1);
  });

  let debounce: NodeJS.Timeout | undefined;
  const reloadSoon = (why: string) => {
    clearTimeout(debounce);
    debounce = setTimeout(() => reload(why), DEBOUNCE_MS);
  };
  // The config file and the files it names (certificates and keys, IDLs, pseudonym keys), each by
  // its directory (file-watch.ts: editors, `mv`, certbot and Kubernetes replace files; entry
  // changes are heard, not every write). A change reloads the config, which reads them all again
  // (a bad one keeps the running config); every reload re-arms the set, also a directory that
  // was removed and is back.
  const watched = new FilesWatch(
    (path) => reloadSoon(path === file ? 'file changed' : `${path} changed`),
    (dir, error) => log.warn(`not watching ${dir} for changes: ${error.message}; reload with SIGHUP`),
  );
  watched.update([file, ...loadedFiles]);
  warnWatchedLogs(loaded, loadedFiles);

  /**
   * Session ticket key rotation: the next key set is made here once and sent to every worker at
   * once (serially with reloads, so a reload never stages keys a rotation is replacing); the
   * running config carries it, so reloads keep it and replacement workers start with it.
   */
  const rotateOnce = async (servers: readonly string[]): Promise<void> => {
    if (stopping) return;
    const { config: next, keys } = rotateTicketKeys(current, servers);
    current = next;
    pool.setData({ config: next, debug, metrics: admin.workerShare(), health } satisfies WorkerData);
    const replies = await pool.broadcast({ t: 'ticket-keys', keys } satisfies WorkerCommand);
    for (const r of replies)
      if (!r.ok && !absent(r)) log.error(`ticket key rotation: worker ${r.worker}: ${r.error.message}`);
    log.info(`rotated the session ticket keys of ${Object.keys(keys).join(', ')}`);
  };
  const rotation = new TicketKeyRotation((servers) =>
    serially('ticket key rotation', () => rotateOnce(servers)),
  );
  rotation.update(current);

  const onHup = () => reload('SIGHUP');
  process.on('SIGHUP', onHup);
  // SIGUSR1: every worker opens its access-log files again by their paths (logrotate renamed
  // them). Node starts its inspector on SIGUSR1 only while no listener is installed, so from
  // the "started" line on it is loch's.
  const onUsr1 = () => {
    const accessLog = log.at('access_log');
    void pool.broadcast({ t: 'reopen' } satisfies WorkerCommand, { timeout: 15_000 }).then((replies) => {
      const failed = replies.filter((r) => !r.ok && !absent(r));
      for (const f of failed) if (!f.ok) accessLog.error(`SIGUSR1: worker ${f.worker}: ${f.error.message}`);
      // The main thread's error log file (if any) first, so that this line is in the new file.
      void log.reopen().then(() => {
        accessLog.info(`SIGUSR1: access logs reopened by ${replies.length - failed.length} worker(s)`);
        log.flush();
      });
    });
  };
  process.on('SIGUSR1', onUsr1);
  // SIGUSR2: one line per worker with its connections and upstream pool counters.
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
  // LOCH_DEBUG_CRASH_WORKER=<i>: SIGURG crashes worker i (a debugging aid for supervision).
  const onUrg = () => {
    if (typeof crashTarget !== 'number') return;
    try {
      const kind = typeof fault === 'string' ? fault : 'throw';
      pool.injectFault(crashTarget, kind);
      log.warn(`SIGURG: crashing worker ${crashTarget} on purpose (LOCH_DEBUG_CRASH_WORKER, fault ${kind})`);
    } catch (error) {
      log.warn(`SIGURG: cannot crash worker ${crashTarget}: ${(error as Error).message}`);
    }
    log.flush();
  };
  if (typeof crashTarget === 'number') process.on('SIGURG', onUrg);
  else if (crashTarget !== undefined) log.warn(`${crashTarget.error}: ignored`);
  if (typeof fault !== 'string') log.warn(`${fault.error}: throw instead`);
  if (typeof watchdog === 'object' && 'error' in watchdog)
    log.warn(`${watchdog.error}: the default watchdog instead`);

  async function shutdown(signal: string, code: number): Promise<void> {
    if (stopping) return;
    stopping = true;
    admin.draining();
    clearTimeout(debounce);
    checker.close();
    watched.close();
    rotation.close();
    process.off('SIGHUP', onHup);
    process.off('SIGUSR2', onUsr2);
    process.off('SIGUSR1', onUsr1);
    process.off('SIGURG', onUrg);
    // Every server kind's grace counts: thrift calls in flight get theirs too.
    const grace = Math.max(
      0,
      ...[...current.servers, ...current.thriftServers].map((s) => s.timeouts.shutdownGrace),
    );
    log.info(`${signal}: stopping (in-flight requests get up to ${grace} ms)`);
    log.flush();
    await tail;
    const result = await pool.stop({ deadline: grace + 2_000 });
    if (result.forced.length)
      log.warn(`worker(s) ${result.forced.join(',')} did not stop in time and were terminated`);
    await admin.close();
    log.info('stopped');
    // Written through and closed (a file's write in flight completes first).
    await log.close();
    finish(code);
  }
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
  if (!(await admin.started(pool))) {
    void shutdown('admin listener', 1);
    return exited;
  }
  // Logged once every handler is in place: a signal sent on seeing this line is handled.
  const drivers = [...new Set(pool.workers.map((w) => w.driver))].join(',');
  log.info(
    `started ${pool.workers.length} worker(s), driver ${drivers} (${pool.workers[0]?.driverReason ?? ''}); listening: ${describeListen(config)}`,
  );
  log.flush();
  // From here on this thread only supervises: give back what the startup grew. Loading the
  // modules and the config took its young generation to 16 MiB, 13 MiB of RSS that V8's memory
  // reducer returned only ~40 s later, in the middle of whatever was measured then
  // (bench/idle-memory/main-thread.ts; readings-2026-12-05c.md, section 4).
  Runtime.trimThreadMemory();
  return exited;
}
