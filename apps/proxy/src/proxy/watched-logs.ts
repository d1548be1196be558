/**
 * Log files that lie in a directory loch watches. loch watches the config's directory and the
 * directories of the files it reads (certificates, keys, IDLs: file-watch.ts), and a directory
 * watch (inotify) hears every write to every file in it: a log there wakes the main thread at
 * each flush of a busy worker (~30 times a second under load, ~0.1 us of CPU a request:
 * bench/http-proxy/gc-2026-12-06.md). Nothing breaks, so loch warns instead of refusing.
 */
import { dirname, resolve } from 'node:path';
import type { ProxyConfig } from '../config/schema.js';

/** The access and error log files of `config` whose directory is one of `watchedFiles`' directories. */
export function logsInWatchedDirectories(config: ProxyConfig, watchedFiles: Iterable<string>): string[] {
  const watched = new Set<string>();
  for (const file of watchedFiles) watched.add(dirname(resolve(file)));
  const logs = new Set<string>();
  if (config.errorLogPath !== undefined) logs.add(resolve(config.errorLogPath));
  for (const server of [...config.servers, ...config.thriftServers]) {
    const path = server.accessLogOutput?.path;
    if (server.accessLog && path !== undefined && path !== null) logs.add(resolve(path));
  }
  return [...logs].filter((log) => watched.has(dirname(log)));
}

/** The warning for such a log (one line, what it costs and what to do). */
export function watchedLogWarning(path: string): string {
  return `log ${path} is in a directory loch watches for config and certificate changes: every write to it wakes the main thread; put logs in a directory of their own`;
}
