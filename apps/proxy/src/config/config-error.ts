/**
 * The error a config that cannot be used throws, with every problem and where it is. A module
 * of its own, without the schema: the main thread of `loch run` validates configs in a
 * short-lived thread (isolated-load.ts) and rebuilds the error here from the issues it sends
 * back, so it never loads zod or the schema parsers. Not for finding the problems (load.ts).
 */

/** One problem in a config file. */
export interface ConfigIssue {
  /** Key path, e.g. `servers.web.listener.value`; empty for the whole file. */
  readonly path: string;
  readonly message: string;
}

/** A config that cannot be used: every issue found, with where it is. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'ERR_LOCH_CONFIG';
  constructor(
    readonly source: string,
    readonly issues: readonly ConfigIssue[],
  ) {
    super(
      `${source}: ${issues.length} error(s)\n${issues.map((i) => `  ${i.path || '(file)'}: ${i.message}`).join('\n')}`,
    );
  }
}
