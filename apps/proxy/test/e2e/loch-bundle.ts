/**
 * Vitest globalSetup of apps/proxy: builds `loch` from the working tree's TypeScript sources
 * into one esbuild bundle per test run, which the e2e tests start (harness.ts lochArgs) instead
 * of the sources under tsx. Why: every e2e test starts loch, and under tsx each start (and each
 * of its worker threads) resolved and transformed the whole module graph through tsx's loader,
 * with tsx's cache cold in every run (it lives in the run's own TMPDIR, vitest.temp-dir.ts).
 * The bundle is built from the sources of this run, once, so nothing but the working tree is
 * tested. Not a test.
 *
 * Layout (in a directory of this run, removed at teardown): dist/bin.js, dist/worker.js,
 * dist/load-thread.js and dist/bootstrap.js (the entries run.ts, config/isolated-load.ts and
 * workers/start.ts find next to their own module when it is .js) with their shared chunks, so the main thread and each worker thread load plain
 * JavaScript and share one instance of every module per thread; and package.json, a copy of
 * apps/proxy's, which cli.ts reads for the version ('../package.json' from dist/) and which makes
 * dist/*.js ES modules.
 *
 * Kept outside the bundle: @loch/native (its index.js finds the .node file next to itself;
 * imported by absolute path). A `createRequire(import.meta.url)` in a source file resolves from
 * that file, not from the bundle (the gateway's protobufjs descriptor). Set LOCH_E2E_TSX=1 to
 * start loch under tsx as before.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const PROXY_DIR = fileURLToPath(new URL('../..', import.meta.url));
const ROOT = join(PROXY_DIR, '../..');

/** Environment variable that tells harness.ts where the bundle's bin.js is. */
export const BUNDLE_ENV = 'LOCH_E2E_BIN';

/** The part of esbuild's API used here (esbuild comes with tsx; no dependency of its own). */
interface Esbuild {
  build(options: Record<string, unknown>): Promise<{ errors: unknown[]; warnings: unknown[] }>;
}

interface PluginBuild {
  onResolve(
    options: { filter: RegExp },
    callback: (args: { path: string }) => { path: string; external: boolean },
  ): void;
  onLoad(
    options: { filter: RegExp },
    callback: (args: { path: string }) => { contents: string; loader: string } | undefined,
  ): void;
}

function loadEsbuild(): Esbuild {
  const fromTsx = createRequire(createRequire(import.meta.url).resolve('tsx/package.json'));
  return fromTsx('esbuild') as Esbuild;
}

const REQUIRE_HERE = 'createRequire(import.meta.url)';

/** The esbuild plugin: @loch/native stays outside; a source's own require stays its own. */
const lochPlugin = {
  name: 'loch-e2e',
  setup(build: PluginBuild) {
    const native = join(ROOT, 'native/index.js');
    build.onResolve({ filter: /^@loch\/native$/ }, () => ({ path: native, external: true }));
    build.onLoad({ filter: /\/(packages|apps)\/[^/]+\/src\/.*\.ts$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      if (!text.includes(REQUIRE_HERE)) return undefined;
      const own = JSON.stringify(pathToFileURL(args.path).href);
      return { contents: text.replaceAll(REQUIRE_HERE, `createRequire(${own})`), loader: 'ts' };
    });
  },
};

/** Builds the bundle into a new directory; returns its bin.js. */
export async function buildLochBundle(): Promise<{ dir: string; bin: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'loch-e2e-bundle-'));
  const dist = join(dir, 'dist');
  mkdirSync(dist);
  copyFileSync(join(PROXY_DIR, 'package.json'), join(dir, 'package.json'));
  const result = await loadEsbuild().build({
    entryPoints: {
      bin: join(PROXY_DIR, 'src/bin.ts'),
      worker: join(PROXY_DIR, 'src/proxy/worker.ts'),
      'load-thread': join(PROXY_DIR, 'src/config/load-thread.ts'),
      bootstrap: join(ROOT, 'packages/uring-runtime/src/workers/bootstrap.ts'),
    },
    outdir: dist,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: `node${process.versions.node.split('.')[0]}`,
    conditions: ['@loch/source'],
    // Bundled CommonJS dependencies call require(): give ESM output one.
    banner: {
      js: "import { createRequire as __lochRequire } from 'node:module'; const require = __lochRequire(import.meta.url);",
    },
    plugins: [lochPlugin],
    logLevel: 'silent',
  });
  if (result.errors.length > 0) throw new Error(`loch bundle: ${JSON.stringify(result.errors)}`);
  return { dir, bin: join(dist, 'bin.js') };
}

export default async function setup(): Promise<() => void> {
  if (process.env.LOCH_E2E_TSX === '1') return () => undefined;
  const { dir, bin } = await buildLochBundle();
  process.env[BUNDLE_ENV] = bin;
  return () => {
    delete process.env[BUNDLE_ENV];
    rmSync(dir, { recursive: true, force: true });
  };
}
