/**
 * The `loch` command line: `loch run -c config.toml`, `loch check -c config.toml`, `--help`,
 * `--version`. Parses arguments and hands over to the proxy; not for proxy logic itself.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfigFile } from './config/load.js';
import type { ProxyConfig } from './config/schema.js';
import { certificateWarnings, redactSecrets } from './config/tls.js';

const usage = `loch: the Loch reverse proxy

usage:
  loch run   -c <config.toml|config.json>   run the proxy
  loch check -c <config.toml|config.json>   validate the config and print the effective config
  loch --help | --version

options:
  -c, --config <file>   configuration file (TOML or JSON; Monolake's format is accepted)
  -h, --help            this text
  -v, --version         the version
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/** Prints the effective config as JSON (what `loch check` shows). */
export function describeConfig(config: ProxyConfig): string {
  // Private keys and ticket keys never reach a terminal or a CI log.
  return JSON.stringify(config, redactSecrets, 2);
}

/** Runs the CLI with `argv` (without node and script); resolves with the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let parsed: ReturnType<
    typeof parseArgs<{ options: typeof options; allowPositionals: true; args: string[] }>
  >;
  const options = {
    config: { type: 'string', short: 'c' },
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'v' },
  } as const;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true });
  } catch (err) {
    process.stderr.write(`loch: ${(err as Error).message}\n\n${usage}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`loch ${version()}\n`);
    return 0;
  }
  const command = positionals[0];
  if (command !== 'run' && command !== 'check') {
    process.stderr.write(
      `loch: ${command ? `unknown command "${command}"` : 'no command given'}\n\n${usage}`,
    );
    return 2;
  }
  if (!values.config) {
    process.stderr.write(`loch ${command}: missing -c <config file>\n`);
    return 2;
  }
  let config: ProxyConfig;
  try {
    config = await loadConfigFile(values.config);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
  if (command === 'check') {
    for (const warning of certificateWarnings(config))
      process.stderr.write(`loch check: warning: ${warning}\n`);
    process.stdout.write(`${describeConfig(config)}\n${values.config}: ok\n`);
    return 0;
  }
  const { runProxy } = await import('./proxy/run.js');
  return runProxy(config, values.config);
}
