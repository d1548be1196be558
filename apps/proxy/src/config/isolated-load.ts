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
import { createWorker, threadEntry } from '@loch/uring-runtime';
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
 * Reads and validates `file` in a thread of its own; resolves once that thread has exited.
 * Rejects with ConfigError (every issue, as loadConfigFile) or ConfigThreadError.
 */
export function loadConfigIsolated(file: string): Promise<LoadedConfig> {
  // load-thread's .js beside this module (dist, the e2e bundle's entries) or its source (tests,
  // `pnpm start`), as @loch/uring-runtime starts its workers.
  const entry = threadEntry(import.meta.url, 'load-thread');
  return new Promise((resolve, reject) => {
    const worker = createWorker(entry.target, {
      eval: entry.eval,
      workerData: { file },
      execArgv: entry.execArgv,
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
