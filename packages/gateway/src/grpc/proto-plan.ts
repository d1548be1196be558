/**
 * Which fields of which gRPC messages are pseudonymized, compiled once from protobuf
 * descriptors (protobufjs reflection: a Root loaded from .proto files or a descriptor set):
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

/** Loads .proto files (imports resolved beside them); a bad file is a GatewayConfigError naming it. */
export function loadProtoRoot(files: readonly string[]): protobuf.Root {
  try {
    const root = new protobuf.Root().loadSync([...files], { keepCase: true });
    root.resolveAll();
    return root;
  } catch (e) {
    // protobufjs names the line, not always the file.
    const file = (e as { filename?: string }).filename ?? files.join(', ');
    throw new GatewayConfigError(`${file}: ${(e as Error).message}`);
  }
}

interface Trie {
  rule: PseudonymFieldRule | undefined;
  readonly children: Map<string, Trie>;
}

function fail(path: string, why: string): never {
  throw new GatewayConfigError(`pseudonymize field "${path}": ${why}`);
}

const LEAF_TYPES = new Set(['string', 'bytes']);

/** A compiled plan over a protobuf Root. */
export class ProtoPseudonymPlan {
  readonly #methods = new Map<string, ProtoMethodPlan>();

  /** Throws GatewayConfigError naming a path that does not fit the descriptors. */
  constructor(root: protobuf.Root, fields: readonly (string | PseudonymFieldRule)[]) {
    root.resolveAll();
    const byMethod = new Map<string, { method: protobuf.Method; request: Trie; response: Trie }>();
    for (const entry of fields) {
      const rule = typeof entry === 'string' ? { path: entry } : entry;
      const path = rule.path;
      const parts = path.split('.');
      const side = parts.findIndex((p) => p === 'request' || p === 'response');
      if (side < 2) fail(path, 'expected package.Service.Method.request|response.field...');
      const serviceName = parts.slice(0, side - 1).join('.');
      const methodName = parts[side - 1] as string;
      let service: protobuf.Service | undefined;
      try {
        service = root.lookupService(serviceName);
      } catch {}
      if (service === undefined) fail(path, `no service ${serviceName}`);
      const method = service.methods[methodName];
      if (method === undefined) fail(path, `service ${serviceName} has no method ${methodName}`);
      const names = parts.slice(side + 1);
      if (names.length === 0 || names.some((n) => n === ''))
        fail(path, 'name a field after request or response');
      method.resolve();
      let type: protobuf.Type | null =
        parts[side] === 'request' ? method.resolvedRequestType : method.resolvedResponseType;
      let last: protobuf.Field | undefined;
      for (const name of names) {
        if (type === null) fail(path, `"${name}" follows a ${last?.type ?? 'scalar'}, not a message`);
        const field: protobuf.Field | undefined = type.fields[name];
        if (field === undefined) fail(path, `"${name}" is not a field of ${type.name}`);
        field.resolve();
        last = field;
        type = field.resolvedType instanceof protobuf.Type ? field.resolvedType : null;
      }
      if (last === undefined || !LEAF_TYPES.has(last.type))
        fail(path, `ends at a ${last?.type}: only string and bytes fields can be pseudonymized`);
      const key = `/${service.fullName.replace(/^\./, '')}/${method.name}`;
      let tries = byMethod.get(key);
      if (tries === undefined) {
        tries = {
          method,
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
    for (const [key, { method, request, response }] of byMethod) {
      this.#methods.set(key, {
        path: key,
        request: messagePlan(method.resolvedRequestType as protobuf.Type, request),
        response: messagePlan(method.resolvedResponseType as protobuf.Type, response),
      });
    }
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

function messagePlan(type: protobuf.Type, trie: Trie): ProtoMessagePlan | undefined {
  if (trie.children.size === 0) return undefined;
  const fields = new Map<number, { name: string; node: ProtoNode }>();
  for (const [name, child] of trie.children) {
    const field = type.fields[name] as protobuf.Field;
    let node: ProtoNode | undefined;
    if (child.rule !== undefined) {
      node = {
        kind: 'leaf',
        binary: field.type === 'bytes',
        domain: child.rule.domain ?? child.rule.path,
        format: child.rule.format ?? 'text',
      };
    } else {
      const sub = messagePlan(field.resolvedType as protobuf.Type, child);
      if (sub !== undefined) node = { kind: 'message', plan: sub };
    }
    if (node === undefined) continue;
    // A map field is on the wire a repeated entry message { 1: key, 2: value }.
    if (field instanceof protobuf.MapField)
      node = { kind: 'message', plan: { fields: new Map([[2, { name, node }]]) } };
    fields.set(field.id, { name, node });
  }
  return fields.size === 0 ? undefined : { fields };
}
