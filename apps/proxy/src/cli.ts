/**
 * The `loch` command line: `loch run -c config.toml`, `loch check -c config.toml`, `--help`,
 * `--version`. Parses arguments and hands over to the proxy; not for proxy logic itself.
 */
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { adminExposureWarning } from './admin/exposure.js';
import { ConfigError } from './config/config-error.js';
import { type LoadedConfig, loadConfigIsolated } from './config/isolated-load.js';
import { LOG_MODULES } from './config/log-modules.js';
import type { ProxyConfig } from './config/schema.js';
import { certificateWarnings, redactSecrets, tlsNotes } from './config/tls-view.js';

/**
 * The signals `loch run` acts on, and what each does (run.ts installs the handlers). Kept beside
 * the help text so that the two cannot drift; test/e2e/operations.test.ts sends SIGHUP, SIGUSR1,
 * SIGUSR2 and SIGTERM to a running loch, supervision.test.ts SIGURG, lifecycle.test.ts SIGTERM.
 */
export const SIGNALS: readonly (readonly [signal: string, effect: string])[] = [
  ['SIGHUP', 'reload the config file (two-phase: every worker or none; a bad file keeps the running config)'],
  [
    'SIGTERM, SIGINT',
    'graceful stop: stop accepting, finish requests in flight within timeouts.shutdown_grace and tunnels within timeouts.tunnel_drain, then exit 0; a second one exits at once (1)',
  ],
  [
    'SIGUSR1',
    'reopen the log files ([log] error_log, access_log paths) by their paths (after logrotate renamed them)',
  ],
  ['SIGUSR2', "log each worker's connections, listeners, upstream pool counters and heap (info)"],
  [
    'SIGURG',
    'only with LOCH_DEBUG_CRASH_WORKER=<i>: crash worker i on purpose (a debugging aid for supervision); ignored otherwise',
  ],
  ['SIGQUIT', 'not handled: the default action (immediate exit with a core dump); use SIGTERM to stop'],
];

/**
 * V8 flags `loch run` sets in its main thread before any worker starts (V8 flags are process-wide:
 * each worker's isolate reads them). `--no-parallel-scavenge`: a scavenge of a worker's young
 * generation runs on that worker's thread alone instead of waking V8's platform threads, which
 * every isolate of the process shares. Counted with bench/https/request-threads.ts (2 workers,
 * wrk -c64, 3,269 B, HTTPS and HTTP, two 5 s windows each): futex calls per request in the platform
 * threads 0.010-0.017 -> 0.002-0.006, their context switches 0.006-0.010 -> 0.001-0.004, the
 * workers' futex calls 0.003-0.006 -> 0.001-0.003; scavenges per request do not change (0.6 per
 * 1,000). On two cores the helpers had no core of their own: with one worker the process is
 * pinned to one CPU, with two each worker's helpers ran beside the other worker, wrk or the
 * backend, so a parallel scavenge shortened no pause and cost a wake-up and a hand-off per task.
 * `--no-concurrent-array-buffer-sweeping`, for the same reason: at the end of each scavenge V8
 * posts the sweep of the young ArrayBuffers (the decoder's head slabs: ~35 per scavenge) to a
 * platform thread, which then runs on the worker's own CPU and preempts it inside the pause: with
 * one worker pinned to one CPU, the phase took 1.91 ms per scavenge (p90 4.5-12.4 ms) and 40% of
 * scavenges passed 2 ms; swept on the worker's thread, 0.26 ms and 11% (the sweep itself is
 * 0.1-0.2 ms). bench/http-proxy/gc-pauses-2026-12-05.md.
 * V8's memory reducer stays on by default (`--no-memory-reducer` is settable): it gives a busy
 * worker a memory-reducing mark-compact 100 s after its last one and shrinks its young generation
 * (a 1-worker loch at wrk -c16: at ~105 s and ~213 s of its life, 22-41 ms of marking and sweeping
 * and 79-289 extra scavenges each, none after in 460 s: a cost of a worker's first minutes, not of
 * its requests), but it is also what shrinks a worker that goes from busy to a trickle (health
 * checks every few seconds), which the runtime's idle trim, waiting for a quiet second, never
 * reaches: without the reducer such a worker kept ~15 MiB more for as long as the trickle lasted
 * (REVIEW F138). bench/http-proxy/gc-2026-12-06.md.
 */
export const DEFAULT_V8_FLAGS = '--no-parallel-scavenge --no-concurrent-array-buffer-sweeping';

/**
 * The V8 flags LOCH_V8_FLAGS may set: only flags V8 reads afresh at each use, or when it makes a
 * new isolate's heap and never after (`--memory-reducer`: the main isolate keeps what it was
 * made with), which are safe to change once the main isolate runs. Others are refused, not
 * passed on: `--single-threaded-gc`
 * set this way crashed the main isolate's next full GC (its heap was made for concurrent
 * marking).
 */
export const SETTABLE_V8_FLAGS: ReadonlySet<string> = new Set([
  '--parallel-scavenge',
  '--no-parallel-scavenge',
  '--concurrent-array-buffer-sweeping',
  '--no-concurrent-array-buffer-sweeping',
  '--memory-reducer',
  '--no-memory-reducer',
]);

/** LOCH_V8_FLAGS (or the default when unset) as a list of flags, or why it is refused. */
export function v8FlagsFromEnv(value: string | undefined): { flags: string[] } | { error: string } {
  const flags = (value ?? DEFAULT_V8_FLAGS).split(/\s+/).filter((f) => f !== '');
  const refused = flags.filter((f) => !SETTABLE_V8_FLAGS.has(f));
  if (refused.length > 0)
    return {
      error: `LOCH_V8_FLAGS: ${refused.map((f) => JSON.stringify(f.slice(0, 64))).join(', ')} cannot be set here (accepted: ${[...SETTABLE_V8_FLAGS].join(' ')})`,
    };
  return { flags };
}

const signalHelp = SIGNALS.map(([signal, effect]) => `  ${signal.padEnd(18)}${effect}`).join('\n');

const usage = `loch: the Loch reverse proxy

usage:
  loch run   -c <config.toml|config.json>   run the proxy
  loch check -c <config.toml|config.json>   validate the config and print the effective config
  loch --help | --version

options:
  -c, --config <file>   configuration file (TOML or JSON; Monolake's format is accepted)
  -h, --help            this text
  -v, --version         the version

signals (loch run):
${signalHelp}

environment:
  LOCH_DRIVER=auto|uring|legacy   the I/O driver, over runtime.driver
  LOCH_LOG=<level>[,<module>=<level>...]
                                  log levels over [log] level and [log] modules
                                  (modules: ${LOG_MODULES.join(', ')})
  LOCH_IDLE_TRIM_MS=<ms>          over runtime.idle_memory_trim
  LOCH_STREAM_BUFFER_BYTES=<n>    over runtime.stream_buffer_bytes (bytes)
  LOCH_WORKER_BUFFER_BYTES=<n>    over runtime.worker_buffer_bytes (bytes)
  LOCH_DEBUG_GC=1                 a full GC in each worker before SIGUSR2's stats
  LOCH_DEBUG_HEAPSNAPSHOT=<dir>   a heap snapshot per worker on each SIGUSR2
  LOCH_DEBUG_CRASH_WORKER=<i>     see SIGURG
  LOCH_DEBUG_FAULT=<fault>        what SIGURG does to it: throw (default), exit, or
                                  drop-completions (wedged; the watchdog replaces it)
  LOCH_WORKER_WATCHDOG_MS=<ms>    a worker without a heartbeat this long is wedged and
                                  replaced (default 30000; 0: no watchdog)
  LOCH_V8_FLAGS=<flags>           V8 flags set before the workers start, instead of the
                                  default ${DEFAULT_V8_FLAGS} (empty: V8's own defaults;
                                  accepted: ${[...SETTABLE_V8_FLAGS].join(' ')})
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/**
 * Access-log files this machine could not open for writing (`loch run` refuses such a config):
 * a warning, not an error, since a config may be checked where it does not run.
 */
export function accessLogWarnings(config: ProxyConfig): string[] {
  const out: string[] = [];
  const paths = new Set<string>();
  for (const s of [...config.servers, ...config.thriftServers])
    if (s.accessLog && s.accessLogOutput?.path != null) paths.add(s.accessLogOutput.path);
  for (const path of paths) {
    try {
      accessSync(existsSync(path) ? path : dirname(path), constants.W_OK);
    } catch (error) {
      out.push(
        `access log ${path} cannot be written here (${(error as NodeJS.ErrnoException).code}): loch run would refuse this config`,
      );
    }
  }
  return out;
}

/** Prints the effective config as JSON (what `loch check` shows). */
export function describeConfig(config: ProxyConfig): string {
  // Private keys and ticket keys never reach a terminal or a CI log.
  return JSON.stringify(config, redactSecrets, 2);
}

/** Runs the CLI with `argv` (without node and script); resolves with the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let parsed: ReturnType<
    typeof parseArgs<{ options: typeof options; allowPositionals: true; args: string[] }>
  >;
  const options = {
    config: { type: 'string', short: 'c' },
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'v' },
  } as const;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true });
  } catch (err) {
    process.stderr.write(`loch: ${(err as Error).message}\n\n${usage}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`loch ${version()}\n`);
    return 0;
  }
  const command = positionals[0];
  if (command !== 'run' && command !== 'check') {
    process.stderr.write(
      `loch: ${command ? `unknown command "${command}"` : 'no command given'}\n\n${usage}`,
    );
    return 2;
  }
  if (!values.config) {
    process.stderr.write(`loch ${command}: missing -c <config file>\n`);
    return 2;
  }
  const v8Flags = command === 'run' ? v8FlagsFromEnv(process.env.LOCH_V8_FLAGS) : { flags: [] };
  if ('error' in v8Flags) {
    process.stderr.write(`loch run: ${v8Flags.error}\n`);
    return 2;
  }
  // `loch run` validates in a thread of its own, so that its main thread, which lives as long
  // as the proxy, never loads the schema and its parsers (config/isolated-load.ts); meanwhile
  // this thread loads the proxy's own modules. `loch check` exits once it has printed, and
  // validates here.
  let loaded: LoadedConfig | undefined;
  let config: ProxyConfig;
  const proxy = command === 'run' ? import('./proxy/run.js') : undefined;
  // Awaited below unless the config fails first (its failure then is not this one's).
  proxy?.catch(() => undefined);
  try {
    if (command === 'run') {
      loaded = await loadConfigIsolated(values.config);
      config = loaded.config;
    } else config = await (await import('./config/load.js')).loadConfigFile(values.config);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
  if (loaded === undefined || proxy === undefined) {
    const exposed = adminExposureWarning(config.admin);
    for (const warning of [
      ...certificateWarnings(config),
      ...accessLogWarnings(config),
      ...(exposed === undefined ? [] : [exposed]),
    ])
      process.stderr.write(`loch check: warning: ${warning}\n`);
    for (const note of tlsNotes(config)) process.stderr.write(`loch check: note: ${note}\n`);
    process.stdout.write(`${describeConfig(config)}\n${values.config}: ok\n`);
    return 0;
  }
  // Before run.js starts the workers: their isolates take the flags as they are now.
  for (const flag of v8Flags.flags) setFlagsFromString(flag);
  const { runProxy } = await proxy;
  return runProxy(loaded, values.config);
}
