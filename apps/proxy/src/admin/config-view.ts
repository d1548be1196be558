/**
 * The effective config as the admin listener's `/config` shows it: the very text `loch check`
 * prints (cli.ts describeConfig: secrets redacted), and its version, a hash of that text, so two
 * loch processes (or a process and a file checked in CI) can be compared by one short string.
 * Not for loading or validating configs (config/).
 */
import { createHash } from 'node:crypto';
import { describeConfig } from '../cli.js';
import type { ProxyConfig } from '../config/schema.js';

/** The effective config and its version. */
export interface ConfigView {
  /** JSON, as `loch check` prints it. */
  readonly text: string;
  /** The first 16 hex digits of the text's SHA-256. */
  readonly version: string;
}

/** The view of `config`. */
export function configView(config: ProxyConfig): ConfigView {
  const text = describeConfig(config);
  return { text, version: createHash('sha256').update(text).digest('hex').slice(0, 16) };
}
