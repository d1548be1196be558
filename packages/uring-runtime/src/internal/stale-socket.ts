/**
 * The stale Unix socket check both drivers run before binding with `removeStale`: a socket file
 * left by a process (or worker) that died is unlinked, a live one is left alone.
 */
import { lstat, unlink } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';

/**
 * Unlinks `path` when it is a socket nobody listens on (connect refused). A live socket, or a
 * path that is not a socket, is left alone, and bind then fails with EADDRINUSE.
 */
export async function removeStaleSocket(path: string): Promise<void> {
  const stat = await lstat(path).catch(() => undefined);
  if (stat === undefined || !stat.isSocket()) return;
  const refused = await new Promise<boolean>((resolve) => {
    const probe = netConnect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(false);
    });
    probe.once('error', (error: Error & { code?: string }) => resolve(error.code === 'ECONNREFUSED'));
  });
  if (refused) await unlink(path).catch(() => undefined);
}
