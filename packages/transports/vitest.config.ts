import { existsSync } from 'node:fs';
import { defineConfig, mergeConfig } from 'vitest/config';
import shared from '../../vitest.shared.ts';

// @loch/uring-runtime loads its io_uring driver with a variable dynamic import
// (`import('./uring/index.js')` through a variable, src/runtime.ts loadUring). From sources under
// vitest that specifier is not mapped to the .ts file, so the uring driver would be reported
// unavailable and its suites skipped. Map a missing .js under a workspace package's src/ to its .ts.
const jsToTs = {
  name: 'loch-js-to-ts',
  enforce: 'pre' as const,
  resolveId(id: string) {
    const path = id.startsWith('/@fs/') ? id.slice(4) : id;
    if (/\/packages\/[^/]+\/src\/.*\.js$/.test(path) && !existsSync(path)) {
      const ts = path.replace(/\.js$/, '.ts');
      if (existsSync(ts)) return ts;
    }
    return null;
  },
};

export default mergeConfig(shared, defineConfig({ plugins: [jsToTs] }));
