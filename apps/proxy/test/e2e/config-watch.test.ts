/**
 * `loch run` hears its config change however the file is replaced, with no SIGHUP (run.ts's
 * watch over file-watch.ts): a Kubernetes ConfigMap volume's update (the watched
 * `loch.toml -> ..data/loch.toml` never changes; the kubelet renames a new `..data` into place,
 * which loch missed before), and after the config's directory was removed and put back (an
 * `rm -rf` + copy deploy: a new directory, while the old one's inode lives on as long as the
 * worker's access log in it is open), once a SIGHUP reloaded it: every reload re-arms the watch of
 * a directory that is gone or another one now (REVIEW F151).
 * An access log beside the config draws no warning where the native directory watch serves.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DIRECTORY_WATCH } from '../../src/proxy/file-watch.js';
import { freePort, httpUpstream, type Loch, startLoch, tempDir } from './harness.js';

describe('the config watch of `loch run`', () => {
  let loch: Loch | undefined;
  let upstream: Awaited<ReturnType<typeof httpUpstream>> | undefined;
  afterEach(async () => {
    await loch?.stop();
    await upstream?.close();
    loch = undefined;
    upstream = undefined;
  });

  const config = async (route: string) => {
    upstream ??= await httpUpstream((_req, res) => res.end('ok'));
    const port = await freePort();
    return `
[runtime]
workers = 1

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
access_log = { path = "access.log" }
[[servers.web.routes]]
path = "${route}"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream.port}" }]
`;
  };

  it('reloads on a Kubernetes ConfigMap update (`..data` swapped), twice; no warning for the log beside it', async () => {
    const dir = tempDir('loch-config-watch-k8s-');
    const version = (n: number, text: string) => {
      mkdirSync(join(dir, `..2026_12_06_${n}`));
      writeFileSync(join(dir, `..2026_12_06_${n}`, 'loch.toml'), text);
    };
    // The kubelet's atomic writer: a new timestamped directory, `..data_tmp` pointing to it,
    // renamed over `..data`, then the old directory removed.
    const swap = (from: number, to: number, text: string) => {
      version(to, text);
      symlinkSync(`..2026_12_06_${to}`, join(dir, '..data_tmp'));
      renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
      rmSync(join(dir, `..2026_12_06_${from}`), { recursive: true });
    };
    const first = await config('/');
    version(1, first);
    symlinkSync('..2026_12_06_1', join(dir, '..data'));
    symlinkSync('..data/loch.toml', join(dir, 'loch.toml'));
    // startLoch writes the config through the link: the same text.
    loch = await startLoch(dir, first);
    let mark = loch.stderr().length;
    swap(1, 2, first.replace('path = "/"', 'path = "/v2"'));
    await loch.waitFor(/info reloaded .*\(generation 1\)/, mark);
    mark = loch.stderr().length;
    swap(2, 3, first.replace('path = "/"', 'path = "/v3"'));
    await loch.waitFor(/info reloaded .*\(generation 2\)/, mark);
    expect(loch.stderr()).toMatch(/reloaded /);
    expect(loch.stderr().includes('is in a directory loch watches')).toBe(DIRECTORY_WATCH.hearsEveryWrite);
  });

  it('watches the config again after its directory was removed, put back and reloaded by SIGHUP', async () => {
    const root = tempDir('loch-config-watch-gone-');
    const dir = join(root, 'etc');
    mkdirSync(dir);
    loch = await startLoch(dir, await config('/'));
    const text = readFileSync(loch.configPath, 'utf8');
    let mark = loch.stderr().length;
    rmSync(dir, { recursive: true });
    // The worker keeps access.log open in it, which holds the directory's inode: IN_DELETE_SELF
    // waits for that, but the config's deletion is heard (its reload fails and keeps the config).
    await loch.waitFor(/error reload \(file changed\) failed, keeping the running config/, mark);
    mkdirSync(dir);
    writeFileSync(loch.configPath, text);
    mark = loch.stderr().length;
    loch.child.kill('SIGHUP');
    await loch.waitFor(/info reloaded /, mark);
    mark = loch.stderr().length;
    writeFileSync(loch.configPath, text.replace('path = "/"', 'path = "/again"'));
    await loch.waitFor(/info reloaded /, mark);
  });
});
