/**
 * The thread isolated-load.ts starts to read and validate one config file: it loads the config
 * schema (zod) and the TOML parser that `loch run`'s main thread must not keep, and the IDL and
 * schema parsers and the TLS checks only when the config has what they check (validate.ts),
 * answers with the effective config (or the issues) and the files the config reads, and exits,
 * taking its isolate with it. Not for anything else: no I/O but the reads validation does.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ConfigError } from './config-error.js';
import type { LoadReply } from './isolated-load.js';
import { tlsFiles } from './tls-view.js';
import { loadConfigFile, loadedSchemaPart } from './validate.js';

async function load(file: string): Promise<LoadReply> {
  try {
    const config = await loadConfigFile(file);
    // Without the schema part the config has no gateway route or pseudonymization: no such files.
    const gatewayFiles = loadedSchemaPart()?.gatewayFiles(config) ?? [];
    return { ok: true, config, files: [...tlsFiles(config), ...gatewayFiles] };
  } catch (error) {
    if (error instanceof ConfigError) return { ok: false, source: error.source, issues: [...error.issues] };
    const e = error as Error;
    return { ok: false, error: { message: String(e?.message ?? e), stack: e?.stack } };
  }
}

parentPort!.postMessage(await load((workerData as { file: string }).file));
