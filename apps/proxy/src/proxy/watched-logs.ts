/**
 * Log files that lie in a directory loch watches, where the directory watch hears every write.
 * loch watches the config's directory and the directories of the files it reads (certificates,
 * keys, IDLs: file-watch.ts). Its own watch (@loch/native's) hears entry changes only, so a log
 * there costs nothing; node:fs watch, the fallback where the addon does not load, hears every
 * write to every file in the directory: there a log wakes the main thread at each flush of a busy
 * worker (~30 times a second under load, ~0.1 us of CPU a request:
 * bench/http-proxy/gc-2026-12-06.md). Nothing breaks, so loch warns instead of refusing.
 */
import { dirname, resolve } from 'node:path';
import type { ProxyConfig } from '../config/schema.js';
import { DIRECTORY_WATCH } from './file-watch.js';

/**
 * The access and error log files of `config` whose directory is one of `watchedFiles`'
 * directories, when the directory watch hears every write (`hearsEveryWrite`: the fallback's);
 * none otherwise.
 */
export function logsInWatchedDirectories(
  config: ProxyConfig,
  watchedFiles: Iterable<string>,
  hearsEveryWrite: boolean = DIRECTORY_WATCH.hearsEveryWrite,
): string[] {
  if (!hearsEveryWrite) return [];
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
  return `log ${path} is in a directory loch watches for config and certificate changes, and without @loch/native's directory watch (node:fs watch instead) every write to it wakes the main thread; put logs in a directory of their own`;
}
