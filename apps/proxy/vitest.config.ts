import { fileURLToPath } from 'node:url';
import { defineConfig, mergeConfig } from 'vitest/config';
import shared from '../../vitest.shared.ts';

// Once per run for every e2e test: loch as one esbuild bundle of the sources (test/e2e/loch-bundle.ts)
// and the drivers this kernel grants (test/e2e/drivers-setup.ts).
const setupFile = (name: string) => fileURLToPath(new URL(`./test/e2e/${name}`, import.meta.url));
export default mergeConfig(
  shared,
  defineConfig({ test: { globalSetup: [setupFile('loch-bundle.ts'), setupFile('drivers-setup.ts')] } }),
);
