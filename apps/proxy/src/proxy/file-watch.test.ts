/**
 * FilesWatch over both directory watches (@loch/native's, and node:fs watch, the fallback), on
 * real files in a temp directory: the ways files get replaced in the field are heard (an editor's
 * write + rename, `cat >`, cp over, certbot's re-pointed symlink, a Kubernetes secret volume's
 * `..data` swap, delete then re-create, the directory removed), and what is not a change of a
 * watched file is not. Every wait ends on an event, never on a delay: "not heard" is proven by a
 * later change that is heard (a directory's events arrive in order).
 */
import {
  closeSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DIRECTORY_WATCH,
  type DirectoryWatch,
  entriesResolvedThrough,
  FilesWatch,
  fsDirectoryWatch,
  nativeDirectoryWatch,
  type OpenDirectoryWatch,
} from './file-watch.js';

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const done of cleanup.splice(0).reverse()) done();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'loch-file-watch-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Waits for a value pushed to a log: resolves at the first entry (heard before or after) that matches. */
class Heard<T> {
  readonly all: T[] = [];
  #waiters: { match: (t: T) => boolean; resolve: () => void }[] = [];
  push(t: T): void {
    this.all.push(t);
    const matched = this.#waiters.filter((w) => w.match(t));
    this.#waiters = this.#waiters.filter((w) => !matched.includes(w));
    for (const w of matched) w.resolve();
  }
  until(match: (t: T) => boolean): Promise<void> {
    if (this.all.some(match)) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ match, resolve }));
  }
}

/** A FilesWatch over `open` that records the paths it reports and the directories it gives up. */
function filesWatch(open: OpenDirectoryWatch) {
  const changed = new Heard<string>();
  const failed = new Heard<string>();
  const watch = new FilesWatch(
    (path) => changed.push(path),
    (dir) => failed.push(dir),
    open,
  );
  cleanup.push(() => watch.close());
  return { watch, changed, failed };
}

const backends: [string, OpenDirectoryWatch | undefined][] = [
  ['native', nativeDirectoryWatch],
  ['node:fs', fsDirectoryWatch],
];

describe.each(backends)('FilesWatch on the %s directory watch', (_name, open) => {
  describe.skipIf(open === undefined)('', () => {
    const watching = (paths: string[]) => {
      const w = filesWatch(open as OpenDirectoryWatch);
      w.watch.update(paths);
      return w;
    };

    it("hears an editor's save (write a temp file, rename it over)", async () => {
      const dir = tempDir();
      const cert = join(dir, 'cert.pem');
      writeFileSync(cert, 'one');
      const w = watching([cert]);
      writeFileSync(join(dir, '.cert.pem.swp'), 'two');
      renameSync(join(dir, '.cert.pem.swp'), cert);
      await w.changed.until((p) => p === cert);
    });

    it('hears `cat > file` (truncate, write, close) and cp over', async () => {
      const dir = tempDir();
      const key = join(dir, 'key.pem');
      const other = join(dir, 'other.pem');
      writeFileSync(key, 'one');
      writeFileSync(other, 'two');
      const w = watching([key]);
      const fd = openSync(key, 'w');
      writeSync(fd, 'three');
      closeSync(fd);
      await w.changed.until((p) => p === key);
      w.changed.all.length = 0;
      copyFileSync(other, key);
      await w.changed.until((p) => p === key);
    });

    it("hears certbot's renewal (the live/ symlink re-pointed by a rename)", async () => {
      const root = tempDir();
      mkdirSync(join(root, 'archive'));
      mkdirSync(join(root, 'live'));
      writeFileSync(join(root, 'archive', 'cert1.pem'), 'one');
      writeFileSync(join(root, 'archive', 'cert2.pem'), 'two');
      const cert = join(root, 'live', 'cert.pem');
      symlinkSync('../archive/cert1.pem', cert);
      const w = watching([cert]);
      symlinkSync('../archive/cert2.pem', join(root, 'live', 'cert.pem.new'));
      renameSync(join(root, 'live', 'cert.pem.new'), cert);
      await w.changed.until((p) => p === cert);
    });

    it("hears a Kubernetes secret volume's update (`..data` swapped; `tls.crt -> ..data/tls.crt` never changes), twice", async () => {
      const dir = tempDir();
      const version = (n: number) => {
        mkdirSync(join(dir, `..2026_12_06_${n}`));
        writeFileSync(join(dir, `..2026_12_06_${n}`, 'tls.crt'), `cert ${n}`);
      };
      // The kubelet's atomic writer: a new timestamped directory, `..data_tmp` pointing to it,
      // renamed over `..data`, then the old directory removed.
      const swap = (from: number, to: number) => {
        version(to);
        symlinkSync(`..2026_12_06_${to}`, join(dir, '..data_tmp'));
        renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
        rmSync(join(dir, `..2026_12_06_${from}`), { recursive: true });
      };
      version(1);
      symlinkSync('..2026_12_06_1', join(dir, '..data'));
      symlinkSync('..data/tls.crt', join(dir, 'tls.crt'));
      const cert = join(dir, 'tls.crt');
      const w = watching([cert, join(dir, 'sentinel')]);
      swap(1, 2);
      await w.changed.until((p) => p === cert);
      w.changed.all.length = 0;
      swap(2, 3);
      await w.changed.until((p) => p === cert);
    });

    it('hears a file deleted, and created again', async () => {
      const dir = tempDir();
      const idl = join(dir, 'api.thrift');
      writeFileSync(idl, 'one');
      const w = watching([idl]);
      unlinkSync(idl);
      await w.changed.until((p) => p === idl);
      w.changed.all.length = 0;
      writeFileSync(idl, 'two');
      await w.changed.until((p) => p === idl);
    });

    it('reports every file of a directory that was removed, and gives the directory up', async () => {
      const root = tempDir();
      const dir = join(root, 'tls');
      mkdirSync(dir);
      const cert = join(dir, 'cert.pem');
      const key = join(dir, 'key.pem');
      const w = watching([cert, key]);
      rmSync(dir, { recursive: true });
      await w.failed.until((d) => d === dir);
      expect(new Set(w.changed.all)).toEqual(new Set([cert, key]));
    });

    it.each([
      ['removed (a reload after `rm -rf` + copy)', false],
      ['made again under the same path, though the old one never went (a log in it held open)', true],
    ])('watches a directory again at the next update() once it is back: %s', async (_, logHeldOpen) => {
      const root = tempDir();
      const dir = join(root, 'etc');
      mkdirSync(dir);
      const config = join(dir, 'loch.toml');
      writeFileSync(config, 'one');
      if (logHeldOpen) {
        const log = openSync(join(dir, 'access.log'), 'a');
        cleanup.push(() => closeSync(log));
      }
      const w = watching([config]);
      rmSync(dir, { recursive: true });
      // An open file keeps the directory's inode: the kernel reports the config's deletion, not
      // the directory gone.
      if (logHeldOpen) await w.changed.until((p) => p === config);
      else await w.failed.until((d) => d === dir);
      mkdirSync(dir);
      writeFileSync(config, 'two');
      w.watch.update([config]);
      w.changed.all.length = 0;
      writeFileSync(config, 'three');
      await w.changed.until((p) => p === config);
    });

    it('reports nothing for files it does not watch, written, replaced or appended to', async () => {
      const dir = tempDir();
      const cert = join(dir, 'cert.pem');
      const w = watching([cert]);
      const log = openSync(join(dir, 'access.log'), 'a');
      cleanup.push(() => closeSync(log));
      for (let i = 0; i < 50; i++) writeSync(log, `GET /${i}\n`);
      writeFileSync(join(dir, 'other.pem'), 'x');
      renameSync(join(dir, 'other.pem'), join(dir, 'another.pem'));
      writeFileSync(cert, 'x');
      await w.changed.until((p) => p === cert);
      expect(w.changed.all).toEqual([cert]);
    });

    it('stops reporting after close(), and after update() dropped the directory', async () => {
      const a = tempDir();
      const b = tempDir();
      const w = watching([join(a, 'x'), join(b, 'y')]);
      w.watch.update([join(b, 'y')]);
      writeFileSync(join(a, 'x'), 'x');
      writeFileSync(join(b, 'y'), 'y');
      await w.changed.until((p) => p === join(b, 'y'));
      expect(w.changed.all).toEqual([join(b, 'y')]);
      w.watch.close();
      w.watch.close();
    });

    it('gives up a directory it cannot watch, and watches the others', async () => {
      const dir = tempDir();
      const w = watching([join(dir, 'missing', 'cert.pem'), join(dir, 'key.pem')]);
      await w.failed.until((d) => d === join(dir, 'missing'));
      writeFileSync(join(dir, 'key.pem'), 'x');
      await w.changed.until((p) => p === join(dir, 'key.pem'));
    });
  });
});

/** Counts what a directory watch reports for `access.log` while it is appended to, until a later close of another file is heard. */
async function entriesHeardForAppends(open: OpenDirectoryWatch): Promise<number> {
  const dir = tempDir();
  const log = join(dir, 'access.log');
  writeFileSync(log, '');
  const heard = new Heard<string | null>();
  const watch: DirectoryWatch = open(
    dir,
    (name) => heard.push(name),
    () => {},
    () => {},
  );
  cleanup.push(() => watch.close());
  const fd = openSync(log, 'a');
  cleanup.push(() => closeSync(fd));
  for (let i = 0; i < 100; i++) writeSync(fd, `GET /${i} 200\n`);
  writeFileSync(join(dir, 'sentinel'), 'x');
  await heard.until((n) => n === 'sentinel');
  return heard.all.filter((n) => n === 'access.log').length;
}

describe('what a directory watch wakes the main thread for', () => {
  it.skipIf(nativeDirectoryWatch === undefined)(
    'the native watch hears no append to a file kept open (an access log beside the config)',
    async () => {
      expect(await entriesHeardForAppends(nativeDirectoryWatch as OpenDirectoryWatch)).toBe(0);
    },
  );

  it('node:fs watch hears them (the fallback: why watched-logs.ts still warns there)', async () => {
    expect(await entriesHeardForAppends(fsDirectoryWatch)).toBeGreaterThan(0);
  });

  it('loch uses the native watch wherever the addon loads', () => {
    expect(DIRECTORY_WATCH.open).toBe(nativeDirectoryWatch ?? fsDirectoryWatch);
    expect(DIRECTORY_WATCH.hearsEveryWrite).toBe(nativeDirectoryWatch === undefined);
  });
});

describe('entriesResolvedThrough', () => {
  it("follows a name's symlinks through entries of its own directory, not outside it", () => {
    const root = tempDir();
    const dir = join(root, 'secret');
    mkdirSync(dir);
    mkdirSync(join(dir, '..2026_12_06_1'));
    writeFileSync(join(dir, '..2026_12_06_1', 'tls.crt'), 'x');
    symlinkSync('..2026_12_06_1', join(dir, '..data'));
    symlinkSync('..data/tls.crt', join(dir, 'tls.crt'));
    symlinkSync('tls.crt', join(dir, 'cert.pem'));
    symlinkSync('../elsewhere.pem', join(dir, 'outside.pem'));
    writeFileSync(join(dir, 'plain.pem'), 'x');
    expect(entriesResolvedThrough(dir, 'tls.crt')).toEqual(['tls.crt', '..data', '..2026_12_06_1']);
    expect(entriesResolvedThrough(dir, 'cert.pem')).toEqual([
      'cert.pem',
      'tls.crt',
      '..data',
      '..2026_12_06_1',
    ]);
    expect(entriesResolvedThrough(dir, 'outside.pem')).toEqual(['outside.pem']);
    expect(entriesResolvedThrough(dir, 'plain.pem')).toEqual(['plain.pem']);
    expect(entriesResolvedThrough(dir, 'missing.pem')).toEqual(['missing.pem']);
  });
});
