/**
 * Watches a set of files for changes, by their directories (editors, `mv`, certbot's renewed
 * symlinks and Kubernetes' secret updates replace a file, which ends a watch on the file itself):
 * how loch picks up a changed config, or a renewed certificate or key, without a SIGHUP. The set
 * is replaced after each reload. Not debounced and not a reload itself: the caller decides
 * (run.ts). Not recursive: a file is watched through the entries of its own directory.
 *
 * A directory watch hears entry changes, not every write: @loch/native's inotify watch leaves
 * IN_MODIFY out (node:fs watch asks for it, so a log beside the config woke the main thread at
 * each write); node:fs watch serves only where the addon does not load (DIRECTORY_WATCH).
 */

import { existsSync, readlinkSync, statSync, watch } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { getSystemErrorName } from 'node:util';
import { type DirWatchEvent, loadDirWatch } from '@loch/native';

/** An open watch of one directory. */
export interface DirectoryWatch {
  /** Ends the watch: no callback after it. Idempotent. */
  close(): void;
}

/**
 * Opens a watch of the directory `dir`: `onEntry(name)` when the entry `name` may have changed
 * (null: any entry may have), `onGone()` once when the directory itself was removed or renamed
 * (the watch hears nothing more; close it), `onError` when the watch fails later. Throws an
 * Error with `code` (ENOENT, ENOTDIR, EACCES, EMFILE...) when `dir` cannot be watched.
 */
export type OpenDirectoryWatch = (
  dir: string,
  onEntry: (name: string | null) => void,
  onGone: () => void,
  onError: (error: Error) => void,
) => DirectoryWatch;

/** The events of the native watch that name an entry which may have changed. */
const ENTRY_EVENTS: ReadonlySet<DirWatchEvent> = new Set([
  'written',
  'attrib',
  'created',
  'deleted',
  'moved-from',
  'moved-to',
]);

/**
 * @loch/native's directory watch (inotify without IN_MODIFY: appends to a file kept open, such
 * as an access log, are not heard), or undefined when the addon does not load.
 */
export const nativeDirectoryWatch: OpenDirectoryWatch | undefined = (() => {
  const loaded = loadDirWatch();
  if (!('dirWatch' in loaded)) return undefined;
  const { dirWatch } = loaded;
  return (dir, onEntry, onGone) => {
    const handle = dirWatch.open(dir, (event, name) => {
      if (event === 'gone') onGone();
      else if (event === 'overflow') onEntry(null);
      else if (ENTRY_EVENTS.has(event)) onEntry(name);
    });
    if ('errno' in handle) {
      const code = getSystemErrorName(-handle.errno);
      throw Object.assign(new Error(`${code}: ${handle.syscall} '${dir}'`), {
        code,
        errno: -handle.errno,
        syscall: handle.syscall,
        path: dir,
      });
    }
    return handle;
  };
})();

/**
 * node:fs watch on the directory. It hears every write to every file in it (libuv asks inotify
 * for IN_MODIFY), so it is only the fallback for machines where @loch/native does not load.
 */
export const fsDirectoryWatch: OpenDirectoryWatch = (dir, onEntry, onGone, onError) => {
  const watcher = watch(dir, { persistent: false }, (_event, name) => {
    // libuv names the directory itself when it was removed or renamed.
    if (name === basename(dir) && !existsSync(dir)) onGone();
    else onEntry(name === null ? null : String(name));
  });
  watcher.on('error', onError);
  return watcher;
};

/**
 * The directory watch loch uses: the native one when the addon loads; node:fs watch otherwise
 * (the legacy driver's machines without a built addon), which also hears every write: then a log
 * kept in a watched directory still wakes the main thread (watched-logs.ts warns of it).
 */
export const DIRECTORY_WATCH: { readonly open: OpenDirectoryWatch; readonly hearsEveryWrite: boolean } =
  nativeDirectoryWatch !== undefined
    ? { open: nativeDirectoryWatch, hearsEveryWrite: false }
    : { open: fsDirectoryWatch, hearsEveryWrite: true };

/**
 * The entries of `dir` that the file `dir/name` resolves through, itself first: a symlink's
 * target inside `dir` adds the target's first entry (Kubernetes' secret volumes: `tls.crt ->
 * ..data/tls.crt`, and `..data -> ..2026_12_06_...`: an update renames a new `..data` into
 * place, and `tls.crt` itself never changes). Targets outside `dir` add nothing (certbot's
 * `live/` links into `archive/`: a renewal re-points the link itself by a rename).
 */
export function entriesResolvedThrough(dir: string, name: string): string[] {
  const entries = [name];
  const pending = [join(dir, name)];
  for (let hops = 0; hops < 16 && pending.length > 0; hops++) {
    const path = pending.shift() as string;
    let target: string;
    try {
      target = readlinkSync(path);
    } catch {
      continue; // not a symlink (EINVAL), or gone
    }
    const resolved = resolve(dirname(path), target);
    const inside = relative(dir, resolved);
    if (inside === '' || inside === '..' || inside.startsWith(`..${sep}`) || isAbsolute(inside)) continue;
    const first = inside.split(sep)[0] as string;
    if (!entries.includes(first)) {
      entries.push(first);
      pending.push(join(dir, first));
    }
    if (first !== inside) pending.push(resolved);
  }
  return entries;
}

/** One watched directory: its watch and which watched paths each entry name may change. */
interface WatchedDirectory {
  watch: DirectoryWatch;
  /** The directory's device and inode when the watch was opened (directoryIdentity). */
  identity: string;
  /** The watched names in it -> their paths. */
  names: Map<string, string>;
  /** Entry name -> the watched paths that resolve through it (entriesResolvedThrough). */
  affects: Map<string, Set<string>>;
}

/** Watches a set of files (absolute paths); calls `onChange(path)` when one may have changed. */
export class FilesWatch {
  readonly #onChange: (path: string) => void;
  readonly #onError: (dir: string, error: Error) => void;
  readonly #open: OpenDirectoryWatch;
  readonly #dirs = new Map<string, WatchedDirectory>();

  /**
   * `onError(dir, error)`: `dir` cannot be watched (or no longer is: it was removed); the files
   * in it are not watched until an update() after it is back. `open`: the directory watch
   * (tests pass each; loch uses DIRECTORY_WATCH).
   */
  constructor(
    onChange: (path: string) => void,
    onError: (dir: string, error: Error) => void,
    open: OpenDirectoryWatch = DIRECTORY_WATCH.open,
  ) {
    this.#onChange = onChange;
    this.#onError = onError;
    this.#open = open;
  }

  /** Watches exactly `paths` (absolute) from now on. */
  update(paths: Iterable<string>): void {
    const wanted = new Map<string, Map<string, string>>();
    for (const path of paths) {
      const dir = dirname(path);
      let names = wanted.get(dir);
      if (names === undefined) wanted.set(dir, (names = new Map()));
      names.set(basename(path), path);
    }
    for (const [dir, entry] of this.#dirs) {
      if (!wanted.has(dir)) {
        entry.watch.close();
        this.#dirs.delete(dir);
      }
    }
    for (const [dir, names] of wanted) {
      const entry = this.#dirs.get(dir);
      const identity = directoryIdentity(dir);
      if (entry !== undefined && entry.identity === identity) {
        entry.names = names;
        entry.affects = affected(dir, names);
        continue;
      }
      // Another directory under the same path now (removed and made again, while something kept
      // the old one's inode alive, so its watch never heard it go): watch the new one.
      if (entry !== undefined) {
        entry.watch.close();
        this.#dirs.delete(dir);
      }
      try {
        const holder: WatchedDirectory = {
          watch: { close() {} },
          identity,
          names,
          affects: affected(dir, names),
        };
        holder.watch = this.#open(
          dir,
          (name) => this.#heard(dir, holder, name),
          () => this.#gone(dir, holder),
          (error) => this.#onError(dir, error),
        );
        this.#dirs.set(dir, holder);
      } catch (error) {
        this.#onError(dir, error as Error);
      }
    }
  }

  /** Stops every watch. */
  close(): void {
    for (const entry of this.#dirs.values()) entry.watch.close();
    this.#dirs.clear();
  }

  #heard(dir: string, holder: WatchedDirectory, name: string | null): void {
    if (this.#dirs.get(dir) !== holder) return; // closed meanwhile
    if (name === null) {
      for (const path of holder.names.values()) this.#onChange(path);
      return;
    }
    const paths = holder.affects.get(name);
    if (paths === undefined) return;
    // A link the names resolve through was replaced (Kubernetes' `..data`): what it points to
    // now decides the entries to listen for.
    holder.affects = affected(dir, holder.names);
    for (const path of paths) this.#onChange(path);
  }

  #gone(dir: string, holder: WatchedDirectory): void {
    if (this.#dirs.get(dir) !== holder) return;
    holder.watch.close();
    this.#dirs.delete(dir);
    for (const path of holder.names.values()) this.#onChange(path);
    this.#onError(dir, new Error('the directory was removed or renamed'));
  }
}

/**
 * `dev:ino` of the directory `dir`, '' when it is not there: a directory removed while a file in
 * it is still open (a worker's access log) keeps its inode, and its watch hears nothing more.
 */
function directoryIdentity(dir: string): string {
  try {
    const s = statSync(dir, { bigint: true });
    return `${s.dev}:${s.ino}`;
  } catch {
    return '';
  }
}

/** Entry name -> the watched paths that resolve through it. */
function affected(dir: string, names: ReadonlyMap<string, string>): Map<string, Set<string>> {
  const affects = new Map<string, Set<string>>();
  for (const [name, path] of names)
    for (const entry of entriesResolvedThrough(dir, name)) {
      let paths = affects.get(entry);
      if (paths === undefined) affects.set(entry, (paths = new Set()));
      paths.add(path);
    }
  return affects;
}
