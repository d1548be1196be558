/**
 * `pseudonymize = { direction, keys, current, fields, annotations }` of a gateway route (its
 * route's IDL) or a thrift server (`idl` given): validated when the config loads (keys read
 * from their files and variables and checked, every field path checked against the IDL, the
 * cipher available, something chosen) and turned into the effective PseudonymConfig, which
 * holds where the keys are, never the keys. Workers build their PseudonymRewriter from it
 * (`pseudonymRewriterOf`, once per config object, so a reload reads rotated keys again). Not
 * for serving (gateway/dispatch.ts, thrift/pseudonym.ts).
 */
import { resolve } from 'node:path';
import {
  GatewayConfigError,
  type IdlDocument,
  type PseudonymDirection,
  PseudonymError,
  type PseudonymFieldRule,
  Pseudonymizer,
  PseudonymKeyring,
  type PseudonymKeySource,
  PseudonymPlan,
  PseudonymRewriter,
} from '@loch/gateway/runtime';
import type { z } from 'zod';
import type { ConfigIssue } from '../config/load.js';
import type { PseudonymizeSchema } from '../config/schema.js';

type PseudonymizeTable = z.infer<typeof PseudonymizeSchema>;

/** Pseudonymization as a worker builds it. Holds key sources (file paths, variable names), never keys. */
export interface PseudonymConfig {
  readonly idl: IdlDocument;
  readonly direction: PseudonymDirection;
  /** Files are absolute. */
  readonly keys: readonly PseudonymKeySource[];
  readonly current: string;
  readonly fields: readonly PseudonymFieldRule[];
  readonly annotations: boolean;
  /** The functions with chosen fields, `Service.function` (for `loch check` and /config). */
  readonly functions: readonly string[];
}

/** The effective config of `table` over `idl`, or undefined after pushing issues at `at`. */
export function pseudonymConfigOf(
  table: PseudonymizeTable,
  idl: IdlDocument,
  at: string,
  issues: ConfigIssue[],
  baseDir: string,
): PseudonymConfig | undefined {
  const start = issues.length;
  for (const key of ['proto', 'descriptor_set'] as const) {
    if (table[key] !== undefined)
      issues.push({ path: `${at}.${key}`, message: `a thrift call is described by its IDL, not ${key}` });
  }
  const { keys, keyring } = pseudonymKeysOf(table, at, issues, baseDir);
  const fields = pseudonymFieldsOf(table);
  const annotations = table.annotations ?? true;
  let functions: readonly string[] = [];
  try {
    functions = new PseudonymPlan(idl, { fields, annotations }).functions;
    if (functions.length === 0) {
      issues.push({
        path: `${at}.fields`,
        message: `nothing to pseudonymize: no field is named and ${idl.file} has no (pii) annotation`,
      });
    }
  } catch (e) {
    if (!(e instanceof GatewayConfigError)) throw e;
    issues.push({ path: `${at}.fields`, message: e.message });
  }
  if (issues.length > start || keyring === undefined) return undefined;
  return { idl, direction: table.direction, keys, current: keyring.current, fields, annotations, functions };
}

/**
 * The key sources of `table` (files resolved against `baseDir`) and the keyring they load, or
 * undefined after pushing an issue (messages name the file or variable, never what it holds).
 * Shared by the Thrift and gRPC forms of `pseudonymize`.
 */
export function pseudonymKeysOf(
  table: PseudonymizeTable,
  at: string,
  issues: ConfigIssue[],
  baseDir: string,
): { keys: PseudonymKeySource[]; keyring: PseudonymKeyring | undefined } {
  const keys: PseudonymKeySource[] = table.keys.map((k) => ({
    id: k.id,
    ...(k.file === undefined ? {} : { file: resolve(baseDir, k.file) }),
    ...(k.env === undefined ? {} : { env: k.env }),
  }));
  let keyring: PseudonymKeyring | undefined;
  try {
    keyring = PseudonymKeyring.load(keys, table.current === undefined ? {} : { current: table.current });
  } catch (e) {
    if (!(e instanceof PseudonymError)) throw e;
    issues.push({ path: `${at}.keys`, message: e.message });
  }
  if (keyring !== undefined) {
    try {
      new Pseudonymizer(keyring);
    } catch (e) {
      if (!(e instanceof PseudonymError)) throw e;
      issues.push({ path: at, message: e.message });
      keyring = undefined;
    }
  }
  return { keys, keyring };
}

/** The field rules of `table` (a bare string is a path). */
export function pseudonymFieldsOf(table: PseudonymizeTable): PseudonymFieldRule[] {
  return (table.fields ?? []).map((f) =>
    typeof f === 'string'
      ? { path: f }
      : {
          path: f.path,
          ...(f.format === undefined ? {} : { format: f.format }),
          ...(f.domain === undefined ? {} : { domain: f.domain }),
        },
  );
}

const built = new WeakMap<PseudonymConfig, PseudonymRewriter>();

/**
 * The rewriter of `config`, made once per config object: keys are read (again) here, in the
 * worker, so a reload picks up a rotated key file. Throws PseudonymError when a key cannot be
 * read any more (the config was checked when it loaded).
 */
export function pseudonymRewriterOf(config: PseudonymConfig): PseudonymRewriter {
  let rewriter = built.get(config);
  if (rewriter === undefined) {
    const keyring = PseudonymKeyring.load(config.keys, { current: config.current });
    const plan = new PseudonymPlan(config.idl, { fields: config.fields, annotations: config.annotations });
    rewriter = new PseudonymRewriter(plan, new Pseudonymizer(keyring), config.direction);
    built.set(config, rewriter);
  }
  return rewriter;
}
