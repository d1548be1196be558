/**
 * `loch run` reads and validates its config (at start and on every reload) in a short-lived
 * worker thread (load-thread.ts), and its main thread keeps only the result: a plain
 * ProxyConfig, as every proxy worker receives it. Validation needs the config schema (zod), the
 * TOML parser and, for gateway and pseudonymization routes, IDL and protobuf parsers; a module
 * graph cannot be unloaded, so loaded in the main thread they stayed for the process's life
 * (+11.9 MiB of heap over an empty isolate; bench/idle-memory/readings-2026-12-06c.md). The
 * thread's isolate goes when it exits. A bad config throws the same ConfigError, with every
 * issue and where it is, as load.ts's loadConfigFile. Not for `loch check` (a process that
 * exits once it has printed: it validates in its main thread) or for the request path.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ConfigError, type ConfigIssue } from './config-error.js';
import type { ProxyConfig } from './schema.js';

/** A config read and validated, with the other files it read (a change of one reloads). */
export interface LoadedConfig {
  readonly config: ProxyConfig;
  /** Certificates and keys, IDLs and pseudonym keys (absolute paths). */
  readonly files: readonly string[];
}

/** What load-thread.ts posts back: the config, a ConfigError's parts, or another failure. */
export type LoadReply =
  | { readonly ok: true; readonly config: ProxyConfig; readonly files: string[] }
  | { readonly ok: false; readonly source: string; readonly issues: ConfigIssue[] }
  | { readonly ok: false; readonly error: { readonly message: string; readonly stack?: string | undefined } };

/** Thrown when the thread failed other than with a ConfigError (a bug): carries its stack. */
export class ConfigThreadError extends Error {
  override readonly name = 'ConfigThreadError';
  readonly code = 'ERR_LOCH_CONFIG_THREAD';
}

/**
 * How to start load-thread: its .js beside this module (dist, and the e2e bundle's entries), or
 * from the TypeScript sources through tsx's API with the workspace's source condition (tests,
 * `pnpm start`), as @loch/uring-runtime starts its workers from sources.
 */
function threadEntry(): { target: string | URL; eval: boolean; execArgv?: string[] } {
  const own = import.meta.url;
  if (own.endsWith('.js')) return { target: new URL('./load-thread.js', own), eval: false };
  const entry = new URL('./load-thread.ts', own).href;
  const tsxDir = dirname(createRequire(own).resolve('tsx/package.json'));
  const api = pathToFileURL(join(tsxDir, 'dist/esm/api/index.mjs')).href;
  const condition = '--conditions=@loch/source';
  return {
    target: `import(${JSON.stringify(api)}).then((tsx) => tsx.tsImport(${JSON.stringify(entry)}, ${JSON.stringify(entry)})).catch((error) => process.nextTick(() => { throw error; }));`,
    eval: true,
    ...(process.execArgv.includes(condition) ? {} : { execArgv: [...process.execArgv, condition] }),
  };
}

/**
 * Reads and validates `file` in a thread of its own; resolves once that thread has exited.
 * Rejects with ConfigError (every issue, as loadConfigFile) or ConfigThreadError.
 */
export function loadConfigIsolated(file: string): Promise<LoadedConfig> {
  const entry = threadEntry();
  return new Promise((resolve, reject) => {
    const worker = new Worker(entry.target, {
      eval: entry.eval,
      workerData: { file },
      ...(entry.execArgv === undefined ? {} : { execArgv: entry.execArgv }),
    });
    let reply: LoadReply | undefined;
    let failure: Error | undefined;
    worker.once('message', (m: LoadReply) => {
      reply = m;
      // Its answer is all it had to give: gone now, not when its event loop drains.
      void worker.terminate();
    });
    worker.once('error', (error) => {
      failure = error;
    });
    worker.once('exit', (code) => {
      if (reply === undefined)
        reject(
          new ConfigThreadError(
            `reading ${file}: the config thread ${failure === undefined ? `exited with ${code}` : `failed: ${failure.stack ?? failure.message}`}`,
          ),
        );
      else if (reply.ok) resolve({ config: reply.config, files: reply.files });
      else if ('issues' in reply) reject(new ConfigError(reply.source, reply.issues));
      else reject(new ConfigThreadError(`reading ${file}: ${reply.error.stack ?? reply.error.message}`));
    });
  });
}
