/**
 * How to start a thread whose entry is a module beside the caller's: the built `.js` when the
 * caller runs from dist (or a bundle's entries), else the TypeScript source through tsx's ESM API
 * with the workspace's `@loch/source` condition (tests, `pnpm start`), so that the thread resolves
 * @loch/* to sources as its parent does. The one place that knows both layouts: start()'s workers
 * and apps/proxy's config thread use it.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { workerExecArgv } from './exec-argv.js';

/** What `new Worker(target, { eval, execArgv })` takes for a sibling entry module. */
export interface ThreadEntry {
  /** The entry's URL, or (from sources) the code that imports it through tsx. */
  readonly target: string | URL;
  readonly eval: boolean;
  /** Undefined: the thread inherits the parent's flags (exec-argv.ts). */
  readonly execArgv: string[] | undefined;
}

const SOURCE_CONDITION = '--conditions=@loch/source';

/**
 * The entry `name` (a file name without its extension) beside the module at `callerUrl` (pass
 * `import.meta.url`). tsx is resolved from the caller, which depends on it when it runs from sources.
 */
export function threadEntry(callerUrl: string, name: string): ThreadEntry {
  if (callerUrl.endsWith('.js'))
    return { target: new URL(`./${name}.js`, callerUrl), eval: false, execArgv: undefined };
  const entry = JSON.stringify(new URL(`./${name}.ts`, callerUrl).href);
  const tsxDir = dirname(createRequire(callerUrl).resolve('tsx/package.json'));
  const api = JSON.stringify(pathToFileURL(join(tsxDir, 'dist/esm/api/index.mjs')).href);
  return {
    target: `import(${api}).then((tsx) => tsx.tsImport(${entry}, ${entry})).catch((error) => process.nextTick(() => { throw error; }));`,
    eval: true,
    execArgv: workerExecArgv([SOURCE_CONDITION]),
  };
}
