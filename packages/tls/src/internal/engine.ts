/**
 * The TLS engine of @loch/native for this thread, loaded once. Not for anything else: contexts
 * and streams take it from here so a missing engine is one typed error in one place.
 */
import { loadTls, type NativeTls } from '@loch/native';
import { TlsConfigError } from '../errors.js';

let engine: NativeTls | undefined;

/** This thread's engine; throws TlsConfigError (ERR_LOCH_TLS_UNAVAILABLE) when it cannot load. */
export function tlsEngine(): NativeTls {
  if (engine !== undefined) return engine;
  const loaded = loadTls();
  if ('error' in loaded) {
    throw new TlsConfigError(
      `the TLS engine of @loch/native is not available: ${loaded.error}`,
      'ERR_LOCH_TLS_UNAVAILABLE',
    );
  }
  engine = loaded.tls;
  return engine;
}
