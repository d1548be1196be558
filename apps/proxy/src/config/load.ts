/**
 * The config API with every part of validation loaded (validate.ts imports its TLS and schema
 * parts by use): parseConfig and validateConfig validate any config synchronously, for
 * @loch/proxy's exports, `loch check` and tests. `loch run` validates in a thread of its own
 * (load-thread.ts), which uses validate.ts directly and so loads only the parts its config
 * needs. Not for anything but that registration.
 */
import * as schemaPart from './schema-parsers.js';
import * as tlsPart from './tls.js';
import { useConfigParts } from './validate.js';

useConfigParts(tlsPart, schemaPart);

export {
  ConfigError,
  type ConfigIssue,
  loadConfigFile,
  parseThriftUpstream,
  parseWithParts as parseConfig,
  validateWithParts as validateConfig,
} from './validate.js';
