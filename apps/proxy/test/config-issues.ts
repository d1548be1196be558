/**
 * The issues a config text has, as `loch check` would list them: [] when parseConfig accepts it,
 * ConfigError's issues when it refuses it, any other error thrown on. The one copy for the config
 * tests (src/config, src/health, test/gateway, test/thrift). Not a test file.
 */
import { ConfigError, type ConfigIssue, parseConfig } from '../src/config/load.js';

export function configIssues(text: string, source?: string): readonly ConfigIssue[] {
  try {
    parseConfig(text, source);
  } catch (error) {
    if (error instanceof ConfigError) return error.issues;
    throw error;
  }
  return [];
}
