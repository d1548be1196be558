/**
 * A ProxyLog whose lines stay in memory, for tests of what the proxy logs (the access log's
 * lines above all). Not a product logger.
 */
import { ProxyLog } from '../src/proxy/log.js';

/** The log and its lines so far (flushed on each read). */
export function logged(): { log: ProxyLog; lines: () => string[] } {
  let text = '';
  const log = new ProxyLog(
    'off',
    '',
    (t) => {
      text += t;
    },
    () => {},
    0,
  );
  return {
    log,
    lines: () => {
      log.flush();
      return text.trimEnd().split('\n').filter(Boolean);
    },
  };
}
