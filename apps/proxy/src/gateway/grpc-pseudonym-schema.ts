/**
 * `pseudonymize = { proto = [...] | descriptor_set = [...], direction, keys, current, fields }`
 * of a proxied HTTP route (gRPC calls; issue 19), the schema side: validated when the config
 * loads (the .proto files parsed by protobufjs or the binary FileDescriptorSets read by
 * @bufbuild/protobuf, every field path checked against them, keys read and checked, something
 * chosen) into a GrpcPseudonymConfig that holds file paths, never keys; and, in a worker, the
 * route's rewriter built from it once per config object (a reload reads the files again).
 * A worker imports this file only when a route pseudonymizes gRPC (grpc-pseudonym.ts), so the
 * parsers stay out of workers that never need them. Not for Thrift (pseudonym-config.ts).
 */
import { resolve } from 'node:path';
import {
  GatewayConfigError,
  GrpcPseudonymRewriter,
  GrpcPseudonymService,
  loadDescriptorSets,
  loadProtoFiles,
  ProtoPseudonymPlan,
  type ProtoSchema,
  type PseudonymDirection,
  type PseudonymFieldRule,
  Pseudonymizer,
  PseudonymKeyring,
  type PseudonymKeySource,
} from '@loch/gateway';
import type { z } from 'zod';
import type { ConfigIssue } from '../config/load.js';
import type { PseudonymizeSchema } from '../config/schema.js';
import { pseudonymFieldsOf, pseudonymKeysOf } from './pseudonym-config.js';

// The service that runs the rewriter around a forwarding, loaded with this side (grpc-pseudonym.ts).
export { GrpcPseudonymService };

type PseudonymizeTable = z.infer<typeof PseudonymizeSchema>;

/** gRPC pseudonymization of a route as a worker builds it. */
export interface GrpcPseudonymConfig {
  /** Absolute .proto files (or FileDescriptorSets, as `schema` says). */
  readonly proto: readonly string[];
  readonly schema: 'proto' | 'descriptor_set';
  /** Every file the schema was read from, imports included (what loch watches). */
  readonly files: readonly string[];
  readonly direction: PseudonymDirection;
  readonly keys: readonly PseudonymKeySource[];
  readonly current: string;
  readonly fields: readonly PseudonymFieldRule[];
  /** Fields with a `[(pii) = "..."]` option count too. */
  readonly annotations: boolean;
  /** The gRPC paths with chosen fields (for `loch check` and /config). */
  readonly methods: readonly string[];
}

/** The route's gRPC pseudonymization, or undefined after pushing issues at `at`. */
export function grpcPseudonymOf(
  table: PseudonymizeTable,
  at: string,
  issues: ConfigIssue[],
  baseDir: string,
): GrpcPseudonymConfig | undefined {
  const start = issues.length;
  if ((table.proto === undefined) === (table.descriptor_set === undefined)) {
    issues.push({
      path: `${at}.proto`,
      message:
        table.proto === undefined
          ? 'name the .proto files or the descriptor_set of the gRPC calls (a thrift route pseudonymizes inside thrift = { ... })'
          : 'give proto or descriptor_set, not both',
    });
    return undefined;
  }
  if (table.idl !== undefined)
    issues.push({ path: `${at}.idl`, message: 'a gRPC route takes proto or descriptor_set, not idl' });
  const schema = table.proto === undefined ? 'descriptor_set' : 'proto';
  const proto = (table.proto ?? table.descriptor_set ?? []).map((f) => resolve(baseDir, f));
  const { keys, keyring } = pseudonymKeysOf(table, at, issues, baseDir);
  const fields = pseudonymFieldsOf(table);
  const annotations = table.annotations ?? true;
  let methods: string[] = [];
  let files: readonly string[] = proto;
  try {
    const loaded = schemaOf(schema, proto);
    files = schema === 'proto' ? loaded.files : proto;
    methods = new ProtoPseudonymPlan(loaded, fields, { annotations }).methods;
    if (methods.length === 0) {
      issues.push({
        path: `${at}.fields`,
        message: 'nothing to pseudonymize: no field is named and no field carries a (pii) option',
      });
    }
  } catch (e) {
    if (!(e instanceof GatewayConfigError)) throw e;
    issues.push({ path: `${at}.fields`, message: e.message });
  }
  if (issues.length > start || keyring === undefined) return undefined;
  return {
    proto,
    schema,
    files,
    direction: table.direction,
    keys,
    current: keyring.current,
    fields,
    annotations,
    methods,
  };
}

function schemaOf(kind: GrpcPseudonymConfig['schema'], files: readonly string[]): ProtoSchema {
  return kind === 'proto' ? loadProtoFiles(files) : loadDescriptorSets(files);
}

const rewriters = new WeakMap<GrpcPseudonymConfig, GrpcPseudonymRewriter>();

/** The rewriter of `config`, made once per config object (reads the schema and key files). */
export function rewriterOf(config: GrpcPseudonymConfig): GrpcPseudonymRewriter {
  let rewriter = rewriters.get(config);
  if (rewriter === undefined) {
    const plan = new ProtoPseudonymPlan(schemaOf(config.schema, config.proto), config.fields, {
      annotations: config.annotations,
    });
    const keyring = PseudonymKeyring.load(config.keys, { current: config.current });
    rewriter = new GrpcPseudonymRewriter(plan, new Pseudonymizer(keyring), config.direction);
    rewriters.set(config, rewriter);
  }
  return rewriter;
}
