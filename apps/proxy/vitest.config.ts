import { fileURLToPath } from 'node:url';
import { defineConfig, mergeConfig } from 'vitest/config';
import shared from '../../vitest.shared.ts';

// The e2e tests start loch from one esbuild bundle of the sources per run (test/e2e/loch-bundle.ts).
export default mergeConfig(
  shared,
  defineConfig({
    test: { globalSetup: [fileURLToPath(new URL('./test/e2e/loch-bundle.ts', import.meta.url))] },
  }),
);
