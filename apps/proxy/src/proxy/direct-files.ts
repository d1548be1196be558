/**
 * io_uring direct descriptors by default (`runtime.direct_files`, issue 18): the workers' tables
 * (run.ts, at worker start) and which listeners accept into them (worker.ts, at bind). In one
 * place because the default is both: absent the key (and env LOCH_URING_DIRECT_FILES), each
 * worker's ring gets "auto" slots (the soft RLIMIT_NOFILE) and only plain HTTP listeners use them,
 * the case measured on and off (bench/uring-direct/README.md: HTTP/1.1 1 worker, CPU a request
 * 0.975x held, Ir a request 0.981x). Not for the slots themselves (@loch/uring-runtime, README "Direct descriptors").
 */
import type { ProxyConfig } from '../config/schema.js';

/** Whether env LOCH_URING_DIRECT_FILES is set (the runtime reads it when no size is given). */
function envSet(env: NodeJS.ProcessEnv): boolean {
  return env.LOCH_URING_DIRECT_FILES !== undefined && env.LOCH_URING_DIRECT_FILES !== '';
}

/**
 * The `uring.directFiles` the workers start with: the key; absent, undefined when env
 * LOCH_URING_DIRECT_FILES is set (the runtime takes the env's), else "auto". A kernel without
 * direct descriptors (before 6.0) then leaves the rings on descriptors without a warning (the
 * runtime warns of a refused size only when it was asked for by number), and the legacy driver
 * has no ring: both serve as before.
 */
export function workerDirectFiles(
  config: ProxyConfig,
  env: NodeJS.ProcessEnv = process.env,
): number | 'auto' | undefined {
  if (config.runtime.directFiles !== undefined) return config.runtime.directFiles;
  return envSet(env) ? undefined : 'auto';
}

/**
 * Whether a TCP listener of a server of this kind accepts into its worker ring's direct table
 * (TcpListenOptions.direct). By default only plain HTTP ones: a TLS listener keeps descriptors
 * for in-ring TLS (a direct stream refuses attachTls, so the session would be fed from
 * JavaScript), and a Thrift one because its relay was not measured on direct streams. With the
 * key or the env set, every TCP listener does (as before the default). Decided when the listener
 * is bound: a reload that adds TLS to a server keeps its listener as it is.
 */
export function listensDirect(
  config: ProxyConfig,
  kind: 'http' | 'https' | 'thrift',
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  return config.runtime.directFiles !== undefined || envSet(env) || kind === 'http';
}
