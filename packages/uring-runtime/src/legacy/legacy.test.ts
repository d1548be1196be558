/**
 * Legacy-driver specifics that the conformance suite does not cover: stale Unix socket removal
 * (removeStale) and the SO_REUSEPORT path used on Node versions without `listen({ reusePort })`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLegacyDriver, type LegacyDriver } from './driver.js';

let driver: LegacyDriver | undefined;
let dir: string | undefined;
afterEach(async () => {
  await driver?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  driver = undefined;
  dir = undefined;
});

/** Leaves a socket file nobody listens on, as a crashed server would. */
function staleSocket(path: string): void {
  execFileSync('python3', [
    '-c',
    `import socket; s = socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(path)})`,
  ]);
}

describe('legacy Unix listener', () => {
  it('fails on a stale socket by default and replaces it with removeStale', async () => {
    driver = createLegacyDriver();
    dir = await mkdtemp(join(tmpdir(), 'loch-legacy-'));
    const path = join(dir, 'stale.sock');
    staleSocket(path);
    expect((await stat(path)).isSocket()).toBe(true);
    await expect(driver.listenUnix({ path })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    const listener = await driver.listenUnix({ path, removeStale: true });
    const accepted = listener.accept();
    const client = await driver.connectUnix({ path });
    await (await accepted).close();
    await client.close();
    await listener.close();
  });

  it('never removes a live socket', async () => {
    driver = createLegacyDriver();
    dir = await mkdtemp(join(tmpdir(), 'loch-legacy-'));
    const path = join(dir, 'live.sock');
    const live = await driver.listenUnix({ path });
    await expect(driver.listenUnix({ path, removeStale: true })).rejects.toMatchObject({
      code: 'EADDRINUSE',
    });
    await live.close();
  });

  it('reports a missing python3 for reusePort as ERR_LOCH_REUSEPORT_UNSUPPORTED', async () => {
    const { nodeHasReusePort } = await import('./reuse-port.js');
    if (nodeHasReusePort) return;
    driver = createLegacyDriver();
    const saved = process.env.LOCH_PYTHON;
    process.env.LOCH_PYTHON = '/nonexistent/python3';
    try {
      await expect(driver.listenTcp({ host: '127.0.0.1', port: 0, reusePort: true })).rejects.toMatchObject({
        code: 'ERR_LOCH_REUSEPORT_UNSUPPORTED',
      });
    } finally {
      if (saved === undefined) delete process.env.LOCH_PYTHON;
      else process.env.LOCH_PYTHON = saved;
    }
  });
});
