/**
 * Logging for the proxy: the access log (one line per request, to stdout or a file, as text or
 * JSON lines: access-log.ts) and the operational log (levels, per module, to stderr). Access
 * lines are buffered per thread and written in one call every 50 ms (a coarse tick, like
 * nginx's `flush=`) or as soon as enough are waiting, so logging costs no write per request:
 * to a file, a text line is formatted byte by byte into the file's pending bytes
 * (access-log.ts FileSink.pushText: no string); to stdout, one line string (made the same way
 * in a scratch buffer: textLine) and a concatenation; operational lines go out on the next
 * event-loop turn. Lines are stamped with the time of their event-loop turn (the turn clock,
 * metrics/turn-clock.ts: no clock read per line); the timestamp string is made at most once per
 * millisecond, from a date and time formatted once per second. Not for metrics.
 *
 * Operational lines go to stderr, or to `[log] error_log`'s file (opened, switched and reopened
 * with the access logs: prepareAccess/commitAccess/reopen).
 *
 * Levels: `[log] level` for every message, `[log] modules = { tls = "debug" }` per module
 * (LOG_MODULES), and env LOCH_LOG (`debug`, or `info,tls=debug,upstream=warn`) instead of both
 * (a level it does not name stays the config's; its module list replaces the config's).
 * `at(module)` gives a module's logger: the same outputs, its own level.
 *
 * Access log text line (space separated; "-" for an absent field):
 *   2026-11-26T06:00:00.123Z web 127.0.0.1:51234 GET /api/x?y=1 200 1234 127.0.0.1:9000 0.84
 *   time                     server client      method target status bytes upstream ms
 */
import type { HttpHeaders } from '@loch/http';
import type { SocketAddress } from '@loch/uring-runtime';
import { LOG_MODULES, type LogModule } from '../config/log-modules.js';
import type { AccessLogOutput, ProxyConfig } from '../config/schema.js';
import { type TrustedPeers, trustedPeersOf } from '../config/trusted-peers.js';
import { turnWallNow } from '../metrics/turn-clock.js';
import {
  ACCESS_FLUSH_MS,
  type AccessRecord,
  type AccessSink,
  FileSink,
  jsonLine,
  LineBuffer,
  TextChunk,
} from './access-log.js';
import { forwardedClient } from './forwarded-client.js';

export { ACCESS_FLUSH_MS } from './access-log.js';

/** Log levels, most verbose first. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'off';

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, off: 100 };

/** Module levels as the config and LOCH_LOG state them. */
export type ModuleLevels = Readonly<Partial<Record<LogModule, LogLevel>>>;

/**
 * Parses LOCH_LOG: a level, module=level pairs, or both (`info,tls=debug`). Returns the levels
 * or an error message naming the bad part.
 */
export function parseLogEnv(
  value: string,
): { level: LogLevel | undefined; modules: ModuleLevels } | { error: string } {
  let level: LogLevel | undefined;
  const modules: Partial<Record<LogModule, LogLevel>> = {};
  for (const raw of value.split(',')) {
    const part = raw.trim();
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = eq < 0 ? undefined : part.slice(0, eq).trim();
    const lvl = (eq < 0 ? part : part.slice(eq + 1)).trim();
    if (!(lvl in RANK)) return { error: `LOCH_LOG: "${lvl}" is not a level (debug, info, warn, error, off)` };
    if (name === undefined) level = lvl as LogLevel;
    else if ((LOG_MODULES as readonly string[]).includes(name)) modules[name as LogModule] = lvl as LogLevel;
    else return { error: `LOCH_LOG: "${name}" is not a log module (${LOG_MODULES.join(', ')})` };
  }
  return { level, modules };
}

/** How one server's access lines are written. */
interface AccessRoute {
  readonly sink: AccessSink;
  readonly json: boolean;
  readonly thrift: boolean;
  /** `trusted_proxies`: the client is read from X-Forwarded-For behind these. */
  readonly trusted: TrustedPeers | undefined;
}

/** Log files opened for a config that is not committed yet. */
export interface StagedAccessLogs {
  readonly routes: Map<string, AccessRoute>;
  readonly files: Map<string, FileSink>;
  /** `[log] error_log`'s file, or null: stderr. */
  readonly errorFile: FileSink | null;
  /** Files opened for this config (closed again on abort). */
  readonly opened: FileSink[];
}

/** What a thread's loggers share: outputs, access routes, the clock cache. */
class LogOutputs {
  /** Operational lines: stderr, or `[log] error_log`'s file. */
  ops: AccessSink;
  readonly stderr: LineBuffer;
  /** The error-log file in use, or null. */
  errorFile: FileSink | null = null;
  readonly stdout: LineBuffer;
  /** Server key -> how its lines are written (absent: text to stdout). */
  routes = new Map<string, AccessRoute>();
  /**
   * The route of the last access line: its server key and the routes map it was read from (a
   * worker logs line after line for the same server; a hash lookup of the key is ~70
   * instructions, the two comparisons a few). A config commit replaces the map, which misses.
   */
  lastRoutes: Map<string, AccessRoute> | null = null;
  lastServer = '';
  lastRoute: AccessRoute | null = null;
  /** Open access-log files by path (one per path, shared by the servers naming it). */
  files = new Map<string, FileSink>();
  readonly stdoutText: AccessRoute;
  /** The record every access line of this thread is formatted from (refilled per line). */
  readonly record: AccessRecord = {
    time: '',
    server: '',
    client: { family: 'unix', path: '' },
    peer: undefined,
    method: '',
    target: '',
    status: 0,
    bytes: 0,
    upstream: undefined,
    upstreamStatus: undefined,
    upstreamMs: undefined,
    ms: 0,
    requestId: undefined,
    timeChunk: undefined,
  };
  /** The wall clock lines are stamped with (ProxyLog.useClock). */
  clock: () => number = turnWallNow;
  lastMs = Number.NaN;
  lastIso = '';
  /** The second of lastIsoSecond, in ms (toISOString runs once per second, not per millisecond). */
  lastSecondMs = Number.NaN;
  /** `YYYY-MM-DDTHH:MM:SS.` of that second. */
  lastIsoSecond = '';
  /** lastIso as a chunk while it has the 24-char form (lastIsoChunkOk), for access lines. */
  readonly lastIsoChunk = new TextChunk(24);
  lastIsoChunkOk = false;

  constructor(out: (text: string) => void, err: (text: string) => void, flushMs: number) {
    this.stdout = new LineBuffer(out, flushMs);
    this.stderr = new LineBuffer(err, 0);
    this.ops = this.stderr;
    this.stdoutText = { sink: this.stdout, json: false, thrift: false, trusted: undefined };
  }
}

/** The logger of one thread (main or worker), or one module's view of it (`at`). */
export class ProxyLog {
  readonly #out: LogOutputs;
  readonly #prefix: string;
  readonly #module: LogModule | undefined;
  readonly #root: ProxyLog;
  readonly #children = new Map<LogModule, ProxyLog>();
  #level: LogLevel;
  #modules: ModuleLevels = {};
  #min: number;

  constructor(
    level: LogLevel,
    prefix: string,
    out: (text: string) => void = (t) => process.stdout.write(t),
    err: (text: string) => void = (t) => process.stderr.write(t),
    flushMs = ACCESS_FLUSH_MS,
    shared?: { root: ProxyLog; outputs: LogOutputs; module: LogModule },
  ) {
    this.#out = shared?.outputs ?? new LogOutputs(out, err, flushMs);
    this.#prefix = prefix;
    this.#module = shared?.module;
    this.#root = shared?.root ?? this;
    this.#level = level;
    this.#min = RANK[level];
  }

  /** Level of messages without a module (module loggers: their effective level). */
  get level(): LogLevel {
    return this.#level;
  }
  /** Sets the level of every message (module levels set by `setLevels` stay). */
  set level(level: LogLevel) {
    this.#root.setLevels(level, this.#root.#modules);
  }

  /** Sets the level and the per-module levels (a module not named follows `level`). */
  setLevels(level: LogLevel, modules: ModuleLevels): void {
    const root = this.#root;
    root.#level = level;
    root.#min = RANK[level];
    root.#modules = modules;
    for (const [name, child] of root.#children) {
      child.#level = modules[name] ?? level;
      child.#min = RANK[child.#level];
    }
  }

  /**
   * Applies a config's levels (`[log] level`, `[log] modules`), with LOCH_LOG over them.
   * Returns a problem with LOCH_LOG to report, if any.
   */
  configureLevels(
    config: Pick<ProxyConfig, 'logLevel' | 'logModules'>,
    env: string | undefined = process.env.LOCH_LOG,
  ): string | undefined {
    let level = config.logLevel;
    let modules: ModuleLevels = config.logModules ?? {};
    let problem: string | undefined;
    if (env !== undefined && env !== '') {
      const parsed = parseLogEnv(env);
      if ('error' in parsed) problem = `${parsed.error}: ignored`;
      else {
        // LOCH_LOG replaces the config's module levels (LOCH_LOG=debug: everything at debug).
        level = parsed.level ?? level;
        modules = parsed.modules;
      }
    }
    this.setLevels(level, modules);
    return problem;
  }

  /** The logger of `module`: the same outputs and prefix, the module's level. */
  at(module: LogModule): ProxyLog {
    const root = this.#root;
    let child = root.#children.get(module);
    if (child === undefined) {
      child = new ProxyLog(root.#modules[module] ?? root.#level, root.#prefix, undefined, undefined, 0, {
        root,
        outputs: root.#out,
        module,
      });
      root.#children.set(module, child);
    }
    return child;
  }

  /**
   * Sets the wall clock (ms since the epoch) lines are stamped with, for this thread's loggers
   * (default turnWallNow: the turn clock's reading on Date.now()'s scale, no clock read per line).
   * Tests give `() => Date.now()` to stamp lines with a fake system time.
   */
  useClock(clock: () => number): void {
    this.#out.clock = clock;
  }

  /**
   * Current time as ISO 8601 (cached per millisecond; the date and time up to the second are
   * formatted by toISOString once per second, the milliseconds appended), from the wall clock
   * (useClock): the time of this event-loop turn, as nginx stamps its lines with the time
   * cached per event-loop iteration.
   */
  now(): string {
    const out = this.#out;
    const ms = out.clock();
    if (ms !== out.lastMs) {
      out.lastMs = ms;
      const second = Math.floor(ms / 1000) * 1000;
      const milli = ms - second;
      const bytes = out.lastIsoChunk.bytes;
      if (second !== out.lastSecondMs) {
        const iso = new Date(ms).toISOString();
        out.lastIso = iso;
        // Years 0-9999 (always, for a clock): a fixed 24-char form whose first 20 chars are the second's.
        if (iso.length === 24) {
          out.lastSecondMs = second;
          out.lastIsoSecond = iso.slice(0, 20);
          for (let i = 0; i < 24; i++) bytes[i] = iso.charCodeAt(i);
          out.lastIsoChunkOk = true;
        } else {
          out.lastSecondMs = Number.NaN;
          out.lastIsoChunkOk = false;
        }
        return iso;
      }
      out.lastIso = `${out.lastIsoSecond}${milli < 100 ? (milli < 10 ? '00' : '0') : ''}${milli}Z`;
      // The same second: its bytes are there, the milliseconds change.
      const hundreds = Math.floor(milli / 100);
      const tens = Math.floor(milli / 10) - 10 * hundreds;
      bytes[20] = 0x30 + hundreds;
      bytes[21] = 0x30 + tens;
      bytes[22] = 0x30 + (milli - 10 * Math.floor(milli / 10));
    }
    return out.lastIso;
  }

  /** Whether messages at `level` are written. */
  enabled(level: Exclude<LogLevel, 'off'>): boolean {
    return RANK[level] >= this.#min;
  }

  debug(message: string): void {
    if (RANK.debug >= this.#min) this.#line('debug', message);
  }
  info(message: string): void {
    if (RANK.info >= this.#min) this.#line('info', message);
  }
  warn(message: string): void {
    if (RANK.warn >= this.#min) this.#line('warn', message);
  }
  error(message: string): void {
    if (RANK.error >= this.#min) this.#line('error', message);
  }

  #line(level: string, message: string): void {
    const module = this.#module === undefined ? '' : `[${this.#module}] `;
    this.#out.ops.push(`${this.now()} ${level} ${this.#prefix}${module}${message}\n`);
  }

  /** One access-log line (an HTTP exchange the codec answered itself, or a Thrift call). */
  access(
    server: string,
    peer: SocketAddress,
    method: string,
    target: string,
    status: number,
    bytes: number,
    upstream: string | undefined,
    ms: number,
  ): void {
    this.accessRequest(
      server,
      peer,
      undefined,
      method,
      target,
      status,
      bytes,
      upstream,
      ms,
      undefined,
      undefined,
    );
  }

  /**
   * One access-log line of an HTTP request that reached the chain: `headers` give the request
   * id (JSON) and, behind `trusted_proxies`, the client from X-Forwarded-For.
   */
  accessRequest(
    server: string,
    peer: SocketAddress,
    headers: HttpHeaders | undefined,
    method: string,
    target: string,
    status: number,
    bytes: number,
    upstream: string | undefined,
    ms: number,
    upstreamStatus: number | undefined,
    upstreamMs: number | undefined,
  ): void {
    const out = this.#out;
    let route = out.lastRoute;
    if (route === null || server !== out.lastServer || out.routes !== out.lastRoutes) {
      route = out.routes.get(server) ?? out.stdoutText;
      out.lastRoutes = out.routes;
      out.lastServer = server;
      out.lastRoute = route;
    }
    let client = peer;
    if (route.trusted !== undefined && headers?.has('x-forwarded-for') === true)
      client = forwardedClient(peer, headers.getAll('x-forwarded-for'), route.trusted);
    // One record per thread, filled per line: formatting is synchronous, so nothing is allocated
    // per request but the line itself.
    const record = out.record;
    record.time = this.now();
    record.timeChunk = out.lastIsoChunkOk ? out.lastIsoChunk : undefined;
    record.server = server;
    record.client = client;
    record.peer = client === peer ? undefined : peer;
    record.method = method;
    record.target = target;
    record.status = status;
    record.bytes = bytes;
    record.upstream = upstream;
    record.upstreamStatus = upstreamStatus;
    record.upstreamMs = upstreamMs;
    record.ms = ms;
    record.requestId = route.json && headers !== undefined ? headers.get('x-request-id') : undefined;
    // A text line goes to the sink as the record: a file sink formats it into its byte buffer.
    if (route.json) route.sink.push(jsonLine(record, route.thrift));
    else route.sink.pushText(record);
  }

  /**
   * Opens the access-log files `config` names that are not open yet (throws
   * AccessLogFileError: the config is refused) and builds its routes; nothing changes until
   * `commitAccess`.
   */
  prepareAccess(config: ProxyConfig): StagedAccessLogs {
    const out = this.#root.#out;
    const files = new Map<string, FileSink>();
    const opened: FileSink[] = [];
    const routes = new Map<string, AccessRoute>();
    // Problems writing the error log itself go to stderr; the access logs' to the error log.
    const report = (message: string) => this.#root.at('access_log').error(message);
    const reportStderr = (message: string) =>
      out.stderr.push(`${this.now()} error ${this.#prefix}${message}\n`);
    const route = (
      key: string,
      output: AccessLogOutput | undefined,
      thrift: boolean,
      trusted: readonly string[] | undefined,
    ) => {
      const json = output?.format === 'json';
      let sink: AccessSink = out.stdout;
      if (output?.path != null) {
        let file = files.get(output.path) ?? out.files.get(output.path);
        if (file === undefined) {
          try {
            file = new FileSink(output.path, report);
          } catch (error) {
            for (const f of opened) void f.close();
            throw error;
          }
          opened.push(file);
        }
        files.set(output.path, file);
        sink = file;
      }
      const t = trusted === undefined || trusted.length === 0 ? undefined : trustedPeersOf(trusted);
      if (sink !== out.stdout || json || t !== undefined) routes.set(key, { sink, json, thrift, trusted: t });
    };
    let errorFile: FileSink | null = null;
    const errorPath = config.errorLogPath;
    if (errorPath !== undefined) {
      errorFile = files.get(errorPath) ?? (out.errorFile?.path === errorPath ? out.errorFile : null);
      if (errorFile === null) {
        try {
          errorFile = new FileSink(errorPath, reportStderr, 0);
        } catch (error) {
          for (const f of opened) void f.close();
          throw error;
        }
        opened.push(errorFile);
      }
    }
    try {
      for (const s of config.servers) route(s.key, s.accessLogOutput, false, s.trustedProxies);
      for (const s of config.thriftServers) route(s.key, s.accessLogOutput, true, undefined);
    } catch (error) {
      if (errorFile !== null && opened.includes(errorFile)) void errorFile.close();
      throw error;
    }
    return { routes, files, errorFile, opened };
  }

  /** Switches to a prepared config's access logs; files no server names any more are closed. */
  commitAccess(staged: StagedAccessLogs): void {
    const out = this.#root.#out;
    for (const [path, file] of out.files) if (!staged.files.has(path)) void file.close();
    out.files = staged.files;
    out.routes = staged.routes;
    if (out.errorFile !== null && out.errorFile !== staged.errorFile) {
      // Lines already queued for the old file go there; later ones to the new output.
      void out.errorFile.close();
    }
    out.errorFile = staged.errorFile;
    out.ops = staged.errorFile ?? out.stderr;
  }

  /** Drops a prepared config's access logs (closes the files it opened). */
  abortAccess(staged: StagedAccessLogs): void {
    for (const file of staged.opened) void file.close();
  }

  /** Opens every access-log file again by its path (SIGUSR1 after logrotate renamed them). */
  async reopen(): Promise<void> {
    const out = this.#root.#out;
    const files: AccessSink[] = [...out.files.values()];
    if (out.errorFile !== null) files.push(out.errorFile);
    await Promise.all(files.map((f) => f.reopen()));
  }

  /** Writes every buffered line now (before exit). */
  flush(): void {
    const out = this.#out;
    out.stdout.flush();
    for (const f of out.files.values()) f.flush();
    out.ops.flush();
    out.stderr.flush();
  }

  /** Writes what is pending and closes the access-log files (at shutdown). */
  async close(): Promise<void> {
    const out = this.#root.#out;
    await Promise.all([...out.files.values()].map((f) => f.close()));
    out.files = new Map();
    out.routes = new Map();
    if (out.errorFile !== null) {
      const file = out.errorFile;
      out.errorFile = null;
      out.ops = out.stderr;
      await file.close();
    }
    this.flush();
  }
}
