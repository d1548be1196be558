// Shared vitest settings for every workspace package: tests import sibling @loch/* packages from
// their src (the "@loch/source" export condition), so a test run never needs a prior build.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['@loch/source'] },
  ssr: { resolve: { conditions: ['@loch/source'] } },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    typecheck: { include: ['src/**/*.test-d.ts', 'test/**/*.test-d.ts'], tsconfig: './tsconfig.json' },
    globalSetup: [fileURLToPath(new URL('./vitest.temp-dir.ts', import.meta.url))],
    testTimeout: 20_000,
    // Hooks start servers and proxies: on a loaded CI machine (every suite at once on 2 cores) a
    // start can take longer than a test's own budget. A bound on liveness, never on speed.
    hookTimeout: 60_000,
  },
});
