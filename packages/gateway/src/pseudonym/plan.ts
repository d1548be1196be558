/**
 * Which fields of which Thrift messages are pseudonymized, compiled once from an IDL: fields
 * chosen by IDL path in configuration (`UserService.getUser.result.success.email`) and fields
 * annotated in the IDL (`2: string email (pii = "email")`). The result is, per service
 * function, a tree over the args and result structs that names only the fields to rewrite and
 * the structs and containers leading to them; a message rewriter (message-rewriter.ts) walks it
 * and skips everything else. Not for the cipher (pseudonymizer.ts) or the bytes.
 *
 * Paths: `<Service>.<function>.args.<field>...` or `<Service>.<function>.result.<field>...`
 * (`success` is the return value, a declared exception's field name its fields). A segment
 * names a struct field; lists and sets are crossed to their elements and maps to their values,
 * so `result.success.users.email` is the email of every user of a `list<User>`. The last field
 * must be a string or binary (or a container of them).
 */
import type { TType } from '@loch/thrift';
import { ttypeOf } from '../codec/json-to-thrift.js';
import { GatewayConfigError } from '../errors.js';
import type { FieldDef, FunctionDef, IdlDocument, IdlType, StructDef } from '../idl/model.js';
import type { TokenFormat } from './token-text.js';

/** A field chosen by configuration. */
export interface PseudonymFieldRule {
  /** `Service.function.args.<field>...` or `Service.function.result.<field>...`. */
  readonly path: string;
  /** Token form (default 'text'; 'email' keeps an email an email). */
  readonly format?: TokenFormat;
  /**
   * The name bound into the token (its associated data; default the path). Fields that share a
   * domain give the same token for the same value, so a token of one can be passed as the other.
   */
  readonly domain?: string;
}

/** What a plan is compiled from, besides the IDL. */
export interface PseudonymPlanOptions {
  /** Fields by IDL path (a string is `{ path }`). */
  readonly fields?: readonly (string | PseudonymFieldRule)[];
  /**
   * Include fields annotated `(pii = "...")` (default true). The value `"email"` picks the email
   * form; `(pii.domain = "...")` names the domain (default `<Struct>.<field>`, so every message
   * carrying that struct gives joinable tokens).
   */
  readonly annotations?: boolean;
}

/** A string or binary value to rewrite. */
export interface PseudonymLeaf {
  readonly kind: 'leaf';
  readonly binary: boolean;
  /** The associated-data name of the token. */
  readonly domain: string;
  readonly format: TokenFormat;
}

/** A node of a plan: a value to rewrite, or a struct/container holding some. */
export type PlanNode =
  | PseudonymLeaf
  | { readonly kind: 'struct'; readonly plan: StructPlan }
  | { readonly kind: 'list' | 'set'; readonly elemType: TType; readonly elem: PlanNode }
  | {
      readonly kind: 'map';
      readonly keyType: TType;
      readonly valueType: TType;
      readonly value: PlanNode;
    };

/** One planned field of a struct. */
export interface PlannedField {
  readonly name: string;
  /** Its wire type: anything else on the wire is refused (ERR_PSEUDONYM_MESSAGE). */
  readonly type: TType;
  readonly node: PlanNode;
}

/** The planned fields of a struct by field id (others are skipped). */
export interface StructPlan {
  readonly fields: ReadonlyMap<number, PlannedField>;
}

/** The plan of one service function: its args and result structs (undefined: nothing there). */
export interface FunctionPlan {
  readonly service: string;
  readonly function: string;
  readonly args: StructPlan | undefined;
  readonly result: StructPlan | undefined;
}

/**
 * `forMessage` of a bare method name that several services declare with different plans, or of
 * a multiplexed name whose service the IDL does not have while the method has chosen fields.
 */
export const AMBIGUOUS_METHOD = Symbol('ambiguous method');

interface Trie {
  rule: PseudonymFieldRule | undefined;
  readonly children: Map<string, Trie>;
}

function failRule(path: string, why: string): never {
  throw new GatewayConfigError(`pseudonymize field "${path}": ${why}`);
}

function newTrie(): Trie {
  return { rule: undefined, children: new Map() };
}

/** The type inside lists, sets and map values. */
function innermost(t: IdlType): IdlType {
  while (t.kind === 'list' || t.kind === 'set' || t.kind === 'map') t = t.kind === 'map' ? t.value : t.elem;
  return t;
}

function isLeafType(t: IdlType): boolean {
  const inner = innermost(t);
  return inner.kind === 'string' || inner.kind === 'binary';
}

/** A compiled plan over one IDL. */
export class PseudonymPlan {
  /** By message name: `Service:function`, and the bare function name. */
  readonly #byName = new Map<string, FunctionPlan | typeof AMBIGUOUS_METHOD>();
  readonly #annotations: boolean;
  /** Annotation-only struct plans (independent of where the struct sits). */
  readonly #annotated = new Map<StructDef, StructPlan | undefined>();
  /** Annotation-only function plans, shared by the services inheriting the function. */
  readonly #annotatedFns = new Map<FunctionDef, FunctionPlan | undefined>();
  /** Every planned function, as `Service.function`. */
  readonly functions: readonly string[];

  /** Throws GatewayConfigError naming a path that does not fit the IDL. */
  constructor(
    readonly idl: IdlDocument,
    options: PseudonymPlanOptions = {},
  ) {
    this.#annotations = options.annotations ?? true;
    const rules = new Map<string, Map<string, { args: Trie; result: Trie }>>();
    for (const entry of options.fields ?? []) {
      const rule = typeof entry === 'string' ? { path: entry } : entry;
      this.#addRule(rules, rule);
    }
    const planned: string[] = [];
    const bare = new Map<string, Set<FunctionPlan>>();
    for (const [serviceName, service] of idl.services) {
      for (const [fnName, fn] of service.functions) {
        const tries = rules.get(serviceName)?.get(fnName);
        const plan =
          tries === undefined
            ? this.#annotatedFunction(serviceName, fn)
            : this.#function(serviceName, fn, tries.args, tries.result);
        if (plan === undefined) continue;
        planned.push(`${serviceName}.${fnName}`);
        this.#byName.set(`${serviceName}:${fnName}`, plan);
        // A multiplexed client names an included service by its own name (`Base`, not `shared.Base`).
        const dot = serviceName.lastIndexOf('.');
        if (dot >= 0 && !this.#byName.has(`${serviceName.slice(dot + 1)}:${fnName}`))
          this.#byName.set(`${serviceName.slice(dot + 1)}:${fnName}`, plan);
        let set = bare.get(fnName);
        if (set === undefined) bare.set(fnName, (set = new Set()));
        set.add(plan);
      }
    }
    for (const [fnName, plans] of bare) {
      // A bare name another service declares without a plan is ambiguous too: fail closed.
      let declaring = 0;
      for (const service of idl.services.values()) if (service.functions.has(fnName)) declaring++;
      const only = plans.size === 1 ? [...plans][0] : undefined;
      const unambiguous =
        only !== undefined && (declaring === 1 || this.#sameFunctionEverywhere(fnName, only));
      this.#byName.set(fnName, unambiguous ? (only as FunctionPlan) : AMBIGUOUS_METHOD);
    }
    this.functions = planned;
  }

  /** The plan of a message name (`getUser` or `UserService:getUser`); undefined: nothing to do. */
  forMessage(name: string): FunctionPlan | typeof AMBIGUOUS_METHOD | undefined {
    const plan = this.#byName.get(name);
    if (plan !== undefined) return plan;
    // `Other:getUser` where no service `Other` is in the IDL but getUser has chosen fields: a
    // client must not slip a chosen value past by naming a service the plan does not know.
    const colon = name.indexOf(':');
    return colon >= 0 && this.#byName.has(name.slice(colon + 1)) ? AMBIGUOUS_METHOD : undefined;
  }

  /** The plan of a function of a service, if it has one. */
  forFunction(service: string, fn: string): FunctionPlan | undefined {
    const plan = this.#byName.get(`${service}:${fn}`);
    return plan === AMBIGUOUS_METHOD ? undefined : plan;
  }

  /** Whether every service declaring `fnName` shares the one plan (an inherited, annotation-only function). */
  #sameFunctionEverywhere(fnName: string, plan: FunctionPlan): boolean {
    for (const [serviceName, service] of this.idl.services) {
      if (service.functions.has(fnName) && this.#byName.get(`${serviceName}:${fnName}`) !== plan)
        return false;
    }
    return true;
  }

  #addRule(rules: Map<string, Map<string, { args: Trie; result: Trie }>>, rule: PseudonymFieldRule): void {
    const path = rule.path;
    if (rule.domain !== undefined && rule.domain === '') failRule(path, 'domain must not be empty');
    // Service names may hold dots (`shared.Base`): the longest one the path starts with.
    let serviceName: string | undefined;
    for (const name of this.idl.services.keys()) {
      if (path.startsWith(`${name}.`) && (serviceName === undefined || name.length > serviceName.length))
        serviceName = name;
    }
    if (serviceName === undefined) {
      failRule(
        path,
        `no service of ${this.idl.file} starts it (expected Service.function.args|result.field...; services: ${[...this.idl.services.keys()].join(', ')})`,
      );
    }
    const service = this.idl.services.get(serviceName);
    const [fnName, side, ...fields] = path.slice(serviceName.length + 1).split('.');
    const fn = service?.functions.get(fnName ?? '');
    if (fn === undefined) failRule(path, `service ${serviceName} has no function "${fnName}"`);
    if (side !== 'args' && side !== 'result')
      failRule(path, `"${side ?? ''}" after the function: expected args or result`);
    if (fields.length === 0 || fields.some((f) => f === ''))
      failRule(path, 'name a field after args or result');
    let t: IdlType = { kind: 'struct', def: side === 'args' ? fn.args : fn.result };
    for (const name of fields) {
      const inner = innermost(t);
      if (inner.kind !== 'struct') failRule(path, `"${name}" follows a ${inner.kind}, not a struct`);
      const field = inner.def.fields.find((f) => f.name === name);
      if (field === undefined) {
        const what =
          inner.def === fn.args
            ? `${fnName}'s arguments`
            : inner.def === fn.result
              ? `${fnName}'s result`
              : inner.def.name;
        failRule(path, `"${name}" is not a field of ${what}`);
      }
      t = field.type;
    }
    if (!isLeafType(t))
      failRule(
        path,
        `ends at a ${innermost(t).kind}: only string and binary fields (or containers of them) can be pseudonymized`,
      );
    let byFn = rules.get(serviceName);
    if (byFn === undefined) rules.set(serviceName, (byFn = new Map()));
    let tries = byFn.get(fnName as string);
    if (tries === undefined) byFn.set(fnName as string, (tries = { args: newTrie(), result: newTrie() }));
    let node = side === 'args' ? tries.args : tries.result;
    for (const name of fields) {
      let next = node.children.get(name);
      if (next === undefined) node.children.set(name, (next = newTrie()));
      node = next;
    }
    if (node.rule !== undefined) failRule(path, 'given twice');
    node.rule = rule;
  }

  #annotatedFunction(serviceName: string, fn: FunctionDef): FunctionPlan | undefined {
    if (this.#annotatedFns.has(fn)) return this.#annotatedFns.get(fn);
    const args = this.#annotatedStruct(fn.args);
    const result = this.#annotatedStruct(fn.result);
    const plan =
      args === undefined && result === undefined
        ? undefined
        : { service: serviceName, function: fn.name, args, result };
    this.#annotatedFns.set(fn, plan);
    return plan;
  }

  #function(serviceName: string, fn: FunctionDef, args: Trie, result: Trie): FunctionPlan | undefined {
    const a = this.#struct(fn.args, args);
    const r = this.#struct(fn.result, result);
    return a === undefined && r === undefined
      ? undefined
      : { service: serviceName, function: fn.name, args: a, result: r };
  }

  /** A struct's plan under configured rules (`trie`) and annotations. */
  #struct(def: StructDef, trie: Trie | undefined): StructPlan | undefined {
    if (trie === undefined || trie.children.size === 0) return this.#annotatedStruct(def);
    const fields = new Map<number, PlannedField>();
    for (const f of def.fields) {
      const child = trie.children.get(f.name);
      const node =
        child?.rule !== undefined
          ? this.#leaves(f.type, {
              kind: 'leaf',
              binary: innermost(f.type).kind === 'binary',
              domain: child.rule.domain ?? child.rule.path,
              format: child.rule.format ?? 'text',
            })
          : (this.#annotatedLeaf(def, f) ?? this.#node(f.type, child));
      if (node !== undefined) fields.set(f.id, { name: f.name, type: ttypeOf(f.type), node });
    }
    return fields.size === 0 ? undefined : { fields };
  }

  /** The node of a value of type `t` under `trie` (annotations only when undefined). */
  #node(t: IdlType, trie: Trie | undefined): PlanNode | undefined {
    switch (t.kind) {
      case 'struct': {
        const plan = this.#struct(t.def, trie);
        return plan === undefined ? undefined : { kind: 'struct', plan };
      }
      case 'list':
      case 'set': {
        const elem = this.#node(t.elem, trie);
        return elem === undefined ? undefined : { kind: t.kind, elemType: ttypeOf(t.elem), elem };
      }
      case 'map': {
        const value = this.#node(t.value, trie);
        return value === undefined
          ? undefined
          : { kind: 'map', keyType: ttypeOf(t.key), valueType: ttypeOf(t.value), value };
      }
      default:
        return undefined;
    }
  }

  /** `leaf` wrapped in the containers of `t`. */
  #leaves(t: IdlType, leaf: PseudonymLeaf): PlanNode {
    switch (t.kind) {
      case 'list':
      case 'set':
        return { kind: t.kind, elemType: ttypeOf(t.elem), elem: this.#leaves(t.elem, leaf) };
      case 'map':
        return {
          kind: 'map',
          keyType: ttypeOf(t.key),
          valueType: ttypeOf(t.value),
          value: this.#leaves(t.value, leaf),
        };
      default:
        return leaf;
    }
  }

  /** The leaf of an annotated field, when annotations count and `f` carries `pii`. */
  #annotatedLeaf(def: StructDef, f: FieldDef): PlanNode | undefined {
    if (!this.#annotations) return undefined;
    const pii = f.annotations.get('pii');
    if (pii === undefined) return undefined;
    if (!isLeafType(f.type)) {
      throw new GatewayConfigError(
        `${def.name}.${f.name}: (pii) on a ${innermost(f.type).kind} field: only string and binary fields (or containers of them) can be pseudonymized`,
      );
    }
    const domain = f.annotations.get('pii.domain') ?? `${def.name}.${f.name}`;
    if (domain === '') throw new GatewayConfigError(`${def.name}.${f.name}: (pii.domain) must not be empty`);
    return this.#leaves(f.type, {
      kind: 'leaf',
      binary: innermost(f.type).kind === 'binary',
      domain,
      format: pii === 'email' ? 'email' : 'text',
    });
  }

  /**
   * The annotation-only plan of a struct, shared wherever the struct sits; a struct that
   * reaches itself (User.manager: User) is one plan referring to itself.
   */
  #annotatedStruct(def: StructDef): StructPlan | undefined {
    if (!this.#annotations) return undefined;
    if (this.#annotated.has(def)) return this.#annotated.get(def);
    if (!this.#reachesAnnotation(def, new Set())) {
      this.#annotated.set(def, undefined);
      return undefined;
    }
    const fields = new Map<number, PlannedField>();
    const plan: StructPlan = { fields };
    this.#annotated.set(def, plan);
    for (const f of def.fields) {
      const node = this.#annotatedLeaf(def, f) ?? this.#node(f.type, undefined);
      if (node !== undefined) fields.set(f.id, { name: f.name, type: ttypeOf(f.type), node });
    }
    return plan;
  }

  #reachesAnnotation(def: StructDef, seen: Set<StructDef>): boolean {
    if (seen.has(def)) return false;
    seen.add(def);
    for (const f of def.fields) {
      if (f.annotations.has('pii')) return true;
      const inner = innermost(f.type);
      if (inner.kind === 'struct' && this.#reachesAnnotation(inner.def, seen)) return true;
    }
    return false;
  }
}
