/**
 * A thrift server's `pseudonymize = { idl, direction, keys, fields, ... }`: its IDL loaded (a
 * bad IDL is an issue naming file and line) and the rest validated as a gateway route's is
 * (gateway/pseudonym-config.ts). Not for serving (pseudonym.ts).
 */
import { resolve } from 'node:path';
import { type IdlDocument, IdlError, loadIdl } from '@loch/gateway';
import type { z } from 'zod';
import type { ConfigIssue } from '../config/load.js';
import type { PseudonymizeSchema } from '../config/schema.js';
import { type PseudonymConfig, pseudonymConfigOf } from '../gateway/pseudonym-config.js';

type PseudonymizeTable = z.infer<typeof PseudonymizeSchema>;

/** The effective pseudonymization of a thrift server, or undefined after pushing issues. */
export function thriftPseudonymOf(
  table: PseudonymizeTable,
  at: string,
  issues: ConfigIssue[],
  baseDir: string,
): PseudonymConfig | undefined {
  if (table.idl === undefined) {
    issues.push({ path: `${at}.idl`, message: 'name the IDL whose fields are pseudonymized' });
    return undefined;
  }
  let idl: IdlDocument;
  try {
    idl = loadIdl(resolve(baseDir, table.idl));
  } catch (e) {
    if (!(e instanceof IdlError)) throw e;
    issues.push({ path: `${at}.idl`, message: e.message });
    return undefined;
  }
  return pseudonymConfigOf(table, idl, at, issues, baseDir);
}
