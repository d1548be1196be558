/**
 * Watches a set of files for changes, by their directories (editors, `mv`, certbot's renewed
 * symlinks and Kubernetes' secret updates replace a file, which ends a watch on the file itself):
 * how loch picks up a renewed certificate or key without a config change. The set is replaced
 * after each reload. Not debounced and not a reload itself: the caller decides (run.ts).
 */
import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname } from 'node:path';

export class FilesWatch {
  readonly #onChange: (path: string) => void;
  readonly #onError: (dir: string, error: Error) => void;
  /** Directory -> its watcher and the names watched in it. */
  readonly #dirs = new Map<string, { watcher: FSWatcher; names: Map<string, string> }>();

  constructor(onChange: (path: string) => void, onError: (dir: string, error: Error) => void) {
    this.#onChange = onChange;
    this.#onError = onError;
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
        entry.watcher.close();
        this.#dirs.delete(dir);
      }
    }
    for (const [dir, names] of wanted) {
      const entry = this.#dirs.get(dir);
      if (entry !== undefined) {
        entry.names = names;
        continue;
      }
      try {
        const holder = { watcher: null as unknown as FSWatcher, names };
        holder.watcher = watch(dir, (_event, name) => {
          // Some changes (a renamed directory entry) come without a name: look at every file.
          if (name === null) for (const path of holder.names.values()) this.#onChange(path);
          else {
            const path = holder.names.get(String(name));
            if (path !== undefined) this.#onChange(path);
          }
        });
        holder.watcher.on('error', (error) => this.#onError(dir, error));
        this.#dirs.set(dir, holder);
      } catch (error) {
        this.#onError(dir, error as Error);
      }
    }
  }

  close(): void {
    for (const entry of this.#dirs.values()) entry.watcher.close();
    this.#dirs.clear();
  }
}
