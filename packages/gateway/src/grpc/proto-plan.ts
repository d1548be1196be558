/**
 * Which fields of which gRPC messages are pseudonymized, compiled once from protobuf
 * descriptors (proto-schema.ts: a binary FileDescriptorSet through @bufbuild/protobuf, or .proto
 * files through protobufjs; one model for both):
 * fields chosen by path, `<package.Service>.<Method>.request.<field>...` or
 * `....response.<field>...`. A segment names a message field; repeated fields are every
 * occurrence and map fields their values, so `...response.users.email` is the email of every
 * user. The last field must be a `string` or `bytes` (or a repeated/map of them). Per method
 * (`/package.Service/Method`, gRPC's :path) the result names only the fields to rewrite and
 * the messages leading to them; proto-rewriter.ts walks it. Not for the cipher or the wire.
 */
import protobuf from 'protobufjs';
import { GatewayConfigError } from '../errors.js';
import type { PseudonymFieldRule } from '../pseudonym/plan.js';
import type { TokenFormat } from '../pseudonym/token-text.js';
import {
  type ProtoFieldDesc,
  type ProtoMessageDesc,
  type ProtoSchema,
  schemaOfRoot,
} from './proto-schema.js';

export { loadProtoRoot } from './proto-schema.js';

/** A string or bytes value to rewrite. */
export interface ProtoLeaf {
  readonly kind: 'leaf';
  readonly binary: boolean;
  readonly domain: string;
  readonly format: TokenFormat;
}

/** A node of a message plan: a value to rewrite, or a message holding some. */
export type ProtoNode = ProtoLeaf | { readonly kind: 'message'; readonly plan: ProtoMessagePlan };

/** The planned fields of a message by field number (every other field is copied). */
export interface ProtoMessagePlan {
  readonly fields: ReadonlyMap<number, { readonly name: string; readonly node: ProtoNode }>;
}

/** The plan of one method. */
export interface ProtoMethodPlan {
  /** gRPC's :path, `/package.Service/Method`. */
  readonly path: string;
  readonly request: ProtoMessagePlan | undefined;
  readonly response: ProtoMessagePlan | undefined;
}

interface Trie {
  rule: PseudonymFieldRule | undefined;
  readonly children: Map<string, Trie>;
}

function fail(path: string, why: string): never {
  throw new GatewayConfigError(`pseudonymize field "${path}": ${why}`);
}

const LEAF_TYPES = new Set(['string', 'bytes']);

/** A compiled plan over a protobuf schema. */
export class ProtoPseudonymPlan {
  readonly #methods = new Map<string, ProtoMethodPlan>();

  readonly #annotations: boolean;
  /** Annotation-only message plans (independent of where the message sits). */
  readonly #annotated = new Map<ProtoMessageDesc, ProtoMessagePlan | undefined>();

  /**
   * `fields` by path over `schema` (loadDescriptorSets, loadProtoFiles, or a protobufjs Root);
   * with `annotations` (default true) also every string/bytes field carrying a `[(pii) = "..."]`
   * option (any package: `(loch.pii)`; `"email"` picks the email form, `(...pii_domain)` the
   * domain, default `package.Message.field`), wherever its message travels.
   * Throws GatewayConfigError naming a path that does not fit the descriptors.
   */
  constructor(
    schema: ProtoSchema | protobuf.Root,
    fields: readonly (string | PseudonymFieldRule)[],
    options: { readonly annotations?: boolean } = {},
  ) {
    this.#annotations = options.annotations ?? true;
    const { services } = schema instanceof protobuf.Root ? schemaOfRoot(schema) : schema;
    const byMethod = new Map<string, { request: Trie; response: Trie }>();
    for (const entry of fields) {
      const rule = typeof entry === 'string' ? { path: entry } : entry;
      const path = rule.path;
      const parts = path.split('.');
      const side = parts.findIndex((p) => p === 'request' || p === 'response');
      if (side < 2) fail(path, 'expected package.Service.Method.request|response.field...');
      const serviceName = parts.slice(0, side - 1).join('.');
      const methodName = parts[side - 1] as string;
      const service = services.get(serviceName);
      if (service === undefined) fail(path, `no service ${serviceName}`);
      const method = service.methods.get(methodName);
      if (method === undefined) fail(path, `service ${serviceName} has no method ${methodName}`);
      const names = parts.slice(side + 1);
      if (names.length === 0 || names.some((n) => n === ''))
        fail(path, 'name a field after request or response');
      let type: ProtoMessageDesc | undefined = parts[side] === 'request' ? method.input : method.output;
      let last: ProtoFieldDesc | undefined;
      for (const name of names) {
        if (type === undefined) fail(path, `"${name}" follows a ${last?.type ?? 'scalar'}, not a message`);
        const field: ProtoFieldDesc | undefined = type.fields.find((f) => f.name === name);
        if (field === undefined) fail(path, `"${name}" is not a field of ${type.name}`);
        last = field;
        type = field.message;
      }
      if (last === undefined || !LEAF_TYPES.has(last.type))
        fail(path, `ends at a ${last?.type}: only string and bytes fields can be pseudonymized`);
      const key = `/${service.fullName}/${method.name}`;
      let tries = byMethod.get(key);
      if (tries === undefined) {
        tries = {
          request: { rule: undefined, children: new Map() },
          response: { rule: undefined, children: new Map() },
        };
        byMethod.set(key, tries);
      }
      let node = parts[side] === 'request' ? tries.request : tries.response;
      for (const name of names) {
        let next = node.children.get(name);
        if (next === undefined) node.children.set(name, (next = { rule: undefined, children: new Map() }));
        node = next;
      }
      if (node.rule !== undefined) fail(path, 'given twice');
      node.rule = rule;
    }
    for (const service of services.values()) {
      for (const method of service.methods.values()) {
        const key = `/${service.fullName}/${method.name}`;
        const tries = byMethod.get(key);
        const request = this.#message(method.input, tries?.request);
        const response = this.#message(method.output, tries?.response);
        if (request !== undefined || response !== undefined)
          this.#methods.set(key, { path: key, request, response });
      }
    }
  }

  /** A message's plan under configured rules (`trie`) and annotations. */
  #message(type: ProtoMessageDesc, trie: Trie | undefined): ProtoMessagePlan | undefined {
    if (trie === undefined || trie.children.size === 0) return this.#annotatedMessage(type);
    const fields = new Map<number, { name: string; node: ProtoNode }>();
    for (const field of type.fields) {
      const child = trie.children.get(field.name);
      let node: ProtoNode | undefined;
      if (child?.rule !== undefined) {
        node = {
          kind: 'leaf',
          binary: field.type === 'bytes',
          domain: child.rule.domain ?? child.rule.path,
          format: child.rule.format ?? 'text',
        };
      } else node = this.#annotatedLeaf(type, field) ?? this.#sub(field, child);
      if (node !== undefined) fields.set(field.number, { name: field.name, node: entryOf(field, node) });
    }
    return fields.size === 0 ? undefined : { fields };
  }

  /** The node of a message-typed field under `trie` (annotations only when undefined). */
  #sub(field: ProtoFieldDesc, trie: Trie | undefined): ProtoNode | undefined {
    if (field.message === undefined) return undefined;
    const plan = this.#message(field.message, trie);
    return plan === undefined ? undefined : { kind: 'message', plan };
  }

  #annotatedLeaf(type: ProtoMessageDesc, field: ProtoFieldDesc): ProtoLeaf | undefined {
    if (!this.#annotations || field.pii === undefined) return undefined;
    if (!LEAF_TYPES.has(field.type)) {
      throw new GatewayConfigError(
        `${type.fullName}.${field.name}: (pii) on a ${field.type} field: only string and bytes fields can be pseudonymized`,
      );
    }
    return {
      kind: 'leaf',
      binary: field.type === 'bytes',
      domain: field.piiDomain ?? `${type.fullName}.${field.name}`,
      format: field.pii === 'email' ? 'email' : 'text',
    };
  }

  /** The annotation-only plan of a message; one that reaches itself is one plan referring to itself. */
  #annotatedMessage(type: ProtoMessageDesc): ProtoMessagePlan | undefined {
    if (!this.#annotations) return undefined;
    if (this.#annotated.has(type)) return this.#annotated.get(type);
    if (!reachesAnnotation(type, new Set())) {
      this.#annotated.set(type, undefined);
      return undefined;
    }
    const fields = new Map<number, { name: string; node: ProtoNode }>();
    const plan: ProtoMessagePlan = { fields };
    this.#annotated.set(type, plan);
    for (const field of type.fields) {
      const node = this.#annotatedLeaf(type, field) ?? this.#sub(field, undefined);
      if (node !== undefined) fields.set(field.number, { name: field.name, node: entryOf(field, node) });
    }
    return plan;
  }

  /** The plan of a gRPC :path (`/package.Service/Method`), if anything of it is chosen. */
  forPath(path: string): ProtoMethodPlan | undefined {
    return this.#methods.get(path);
  }

  /** Every method with chosen fields. */
  get methods(): string[] {
    return [...this.#methods.keys()];
  }
}

function reachesAnnotation(type: ProtoMessageDesc, seen: Set<ProtoMessageDesc>): boolean {
  if (seen.has(type)) return false;
  seen.add(type);
  for (const field of type.fields) {
    if (field.pii !== undefined) return true;
    if (field.message !== undefined && reachesAnnotation(field.message, seen)) return true;
  }
  return false;
}

/** A map field is on the wire a repeated entry message { 1: key, 2: value }. */
function entryOf(field: ProtoFieldDesc, node: ProtoNode): ProtoNode {
  return field.map ? { kind: 'message', plan: { fields: new Map([[2, { name: field.name, node }]]) } } : node;
}
