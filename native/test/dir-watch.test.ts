/**
 * The directory watch (dirWatch.open): what it hears (entry changes: a file written and closed,
 * created, deleted, renamed in and out, chmod; the directory itself removed; names as given),
 * what it does not (appends to a file kept open: the access log beside a config), that close()
 * is final and idempotent, failures as { errno, syscall }, and that an open watch neither keeps
 * a process alive nor troubles a worker's teardown. Real files in a temp directory; every wait
 * ends on an event, never on a delay: "nothing heard" is proven by a later event that is heard
 * (inotify delivers in order).
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type DirWatchEvent, loadDirWatch, type NativeDirWatchHandle } from '../index.js';

const loaded = loadDirWatch();
const dirWatch = 'dirWatch' in loaded ? loaded.dirWatch : undefined;

type Heard = [DirWatchEvent, string | null];

/** A watch of a fresh directory that records what it hears and lets a test wait for an event. */
function watched() {
  const dir = mkdtempSync(join(tmpdir(), 'loch-dir-watch-'));
  const heard: Heard[] = [];
  let waiter: { match: (h: Heard) => boolean; resolve: () => void } | undefined;
  const handle = dirWatch!.open(dir, (event, name) => {
    heard.push([event, name]);
    if (waiter?.match([event, name])) {
      const w = waiter;
      waiter = undefined;
      w.resolve();
    }
  });
  if ('errno' in handle) throw new Error(`open: ${handle.syscall} ${handle.errno}`);
  open.push({ dir, handle });
  /** Resolves at the first event (from now on or already heard) that `match` accepts. */
  const until = (match: (h: Heard) => boolean) =>
    heard.some(match) ? Promise.resolve() : new Promise<void>((resolve) => (waiter = { match, resolve }));
  /** Writes and closes `name`, a file no test watches for, and waits until that is heard: every event before it was delivered. */
  const settle = async (name = 'sentinel') => {
    writeFileSync(join(dir, name), 'x');
    await until(([e, n]) => e === 'written' && n === name);
  };
  return { dir, heard, handle, until, settle };
}

const open: { dir: string; handle: NativeDirWatchHandle }[] = [];
afterEach(() => {
  for (const { dir, handle } of open.splice(0)) {
    handle.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

describe.skipIf(dirWatch === undefined)('dirWatch', () => {
  it('hears a file written and closed, created, renamed over, chmod-ed and deleted, by name', async () => {
    const w = watched();
    writeFileSync(join(w.dir, 'a.tmp'), 'one');
    renameSync(join(w.dir, 'a.tmp'), join(w.dir, 'a'));
    chmodSync(join(w.dir, 'a'), 0o600);
    unlinkSync(join(w.dir, 'a'));
    await w.settle();
    expect(w.heard.slice(0, -2)).toEqual([
      ['created', 'a.tmp'],
      ['written', 'a.tmp'],
      ['moved-from', 'a.tmp'],
      ['moved-to', 'a'],
      ['attrib', 'a'],
      ['deleted', 'a'],
    ]);
  });

  it('does not hear appends to a file kept open (an access log beside the config), only its close', async () => {
    const w = watched();
    const fd = openSync(join(w.dir, 'access.log'), 'a');
    await w.until(([e, n]) => e === 'created' && n === 'access.log');
    for (let i = 0; i < 200; i++) writeSync(fd, `GET /${i} 200\n`);
    await w.settle();
    expect(w.heard).toEqual([
      ['created', 'access.log'],
      ['created', 'sentinel'],
      ['written', 'sentinel'],
    ]);
    closeSync(fd);
    await w.until(([e, n]) => e === 'written' && n === 'access.log');
  });

  it("reports the directory's removal as 'gone' (name null), its last event", async () => {
    const w = watched();
    writeFileSync(join(w.dir, 'cert.pem'), 'x');
    rmSync(w.dir, { recursive: true });
    await w.until(([e]) => e === 'gone');
    expect(w.heard.at(-1)).toEqual(['gone', null]);
    expect(w.heard.filter(([e]) => e === 'gone')).toHaveLength(1);
    expect(w.heard).toContainEqual(['deleted', 'cert.pem']);
  });

  it('delivers nothing after close(), which may be called again', async () => {
    const w = watched();
    const other = watched();
    w.handle.close();
    w.handle.close();
    writeFileSync(join(w.dir, 'a'), 'x');
    writeFileSync(join(other.dir, 'b'), 'x');
    await other.settle();
    expect(w.heard).toEqual([]);
  });

  it('stops delivering a batch when a callback closes the watch', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loch-dir-watch-'));
    const heard: (string | null)[] = [];
    let first!: () => void;
    const firstHeard = new Promise<void>((resolve) => (first = resolve));
    const handle = dirWatch!.open(dir, (_event, name) => {
      heard.push(name);
      handle.close();
      first();
    }) as NativeDirWatchHandle;
    open.push({ dir, handle });
    // Queued before the loop reads any: one read(2) takes them all, delivery stops after the first.
    for (const name of ['a', 'b', 'c']) writeFileSync(join(dir, name), 'x');
    await firstHeard;
    // A later loop turn: the rest of the batch would have been delivered by now.
    await watched().settle();
    expect(heard).toEqual(['a']);
  });

  it('watches 300 directories at once (one inotify instance per thread, not per watch: max_user_instances is 128)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'loch-dir-watch-'));
    const heard: string[] = [];
    const handles: NativeDirWatchHandle[] = [];
    let last!: () => void;
    const lastHeard = new Promise<void>((resolve) => (last = resolve));
    for (let i = 0; i < 300; i++) {
      const dir = join(root, `d${i}`);
      mkdirSync(dir);
      const handle = dirWatch!.open(dir, (event, name) => {
        if (event !== 'written') return;
        heard.push(`${i}/${name}`);
        if (i === 299) last();
      });
      expect(handle).not.toHaveProperty('errno');
      handles.push(handle as NativeDirWatchHandle);
      open.push({ dir, handle: handle as NativeDirWatchHandle });
    }
    for (const i of [0, 150, 299]) writeFileSync(join(root, `d${i}`, 'cert.pem'), 'x');
    await lastHeard;
    expect(heard).toEqual(['0/cert.pem', '150/cert.pem', '299/cert.pem']);
    for (const handle of handles) handle.close();
    open.push({ dir: root, handle: { close() {} } });
  });

  it('gives each of two watches of one directory its events; one closed, the other still hears', async () => {
    const w = watched();
    const twin: Heard[] = [];
    const handle = dirWatch!.open(w.dir, (event, name) => twin.push([event, name])) as NativeDirWatchHandle;
    writeFileSync(join(w.dir, 'a'), 'x');
    // Each event goes to both, in the order they were opened: once w heard a later one, the twin has 'a's.
    await w.settle();
    expect(twin.filter(([, n]) => n === 'a')).toEqual([
      ['created', 'a'],
      ['written', 'a'],
    ]);
    handle.close();
    writeFileSync(join(w.dir, 'b'), 'x');
    await w.settle('sentinel2');
    expect(twin.filter(([, n]) => n === 'b')).toEqual([]);
    expect(w.heard.filter(([, n]) => n === 'b')).toEqual([
      ['created', 'b'],
      ['written', 'b'],
    ]);
  });

  it('fails as { errno, syscall } for a missing directory or a file, and throws for bad arguments', () => {
    const w = watched();
    expect(dirWatch!.open(join(w.dir, 'missing'), () => {})).toEqual({
      errno: 2,
      syscall: 'inotify_add_watch',
    });
    writeFileSync(join(w.dir, 'file'), 'x');
    expect(dirWatch!.open(join(w.dir, 'file'), () => {})).toEqual({
      errno: 20,
      syscall: 'inotify_add_watch',
    });
    // @ts-expect-error: no callback
    expect(() => dirWatch!.open(w.dir)).toThrow(TypeError);
  });

  it('never keeps a process alive, and ends with a worker thread that leaves it open', () => {
    const index = join(import.meta.dirname, '..', 'index.js');
    const child = `
      import { Worker } from 'node:worker_threads';
      import { loadDirWatch } from ${JSON.stringify(index)};
      const { dirWatch } = loadDirWatch();
      dirWatch.open(process.argv[1], () => {});
      const body = 'Promise.all([import(' + JSON.stringify(${JSON.stringify(`file://${index}`)}) + '), import("node:worker_threads")]).then(([m, t]) => { m.loadDirWatch().dirWatch.open(' + JSON.stringify(process.argv[1]) + ', () => {}); t.parentPort.postMessage("open"); })';
      for (let i = 0; i < 4; i++) {
        const worker = new Worker(body, { eval: true });
        worker.once('message', () => (i % 2 ? worker.terminate() : undefined));
      }
      console.log('end of main');
    `;
    const w = watched();
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', child, w.dir], {
      encoding: 'utf8',
      timeout: 20_000,
      env: process.env,
    });
    expect(run.stderr).toBe('');
    expect(run.signal).toBe(null);
    expect(run.status).toBe(0);
    expect(run.stdout).toBe('end of main\n');
  });
});
