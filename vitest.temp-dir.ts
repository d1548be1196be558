// Global setup shared by every package's vitest run: the run's temporary files go under one
// directory of their own, removed when the run ends. Tests create hundreds of mkdtemp
// directories (configs, certificates, nginx roots, unix sockets) and most never removed theirs,
// so every CI run left them in /tmp for good. Setting TMPDIR here, before vitest starts its
// workers, makes os.tmpdir() (and Python's tempfile, and every child the tests spawn) use it.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'loch-test-run-'));
  // nginx's workers run as www-data: every directory on the path to what they serve must be
  // searchable by them (mkdtemp makes 0700).
  chmodSync(dir, 0o755);
  const previous = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  return () => {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
    rmSync(dir, { recursive: true, force: true });
  };
}
