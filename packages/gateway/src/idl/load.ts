/**
 * Loads a .thrift file and its includes with @creditkarma/thrift-parser (a kept parser: this
 * package writes none) and resolves it into the model of model.ts: typedefs followed, names
 * resolved across includes (`shared.Base`), enums numbered, constants and defaults turned into
 * their JSON form, services flattened with their ancestors' functions. Every problem is an
 * IdlError naming the file and line. Not for converting values (codec/) or routing (service/).
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import {
  type Annotations as AstAnnotations,
  type ConstValue,
  createParser,
  createScanner,
  type EnumDefinition,
  type FieldDefinition,
  type FunctionType,
  type ServiceDefinition,
  SyntaxType,
  type ThriftError,
  type TypedefDefinition,
} from '@creditkarma/thrift-parser';
import { IdlError } from '../errors.js';
import type {
  Annotations,
  BaseKind,
  EnumDef,
  FieldDef,
  FunctionDef,
  IdlDocument,
  IdlType,
  Requiredness,
  ServiceDef,
  StructDef,
  StructKind,
} from './model.js';

/** How to load an IDL. */
export interface LoadIdlOptions {
  /** Reads a file (default: node:fs, UTF-8). Tests and embedders pass their own. */
  readonly readFile?: (path: string) => string;
}

type Definition =
  | { readonly kind: 'struct'; readonly def: StructDef; readonly fields: readonly FieldDefinition[] }
  | { readonly kind: 'enum'; readonly def: EnumDef }
  | { readonly kind: 'typedef'; readonly node: TypedefDefinition }
  | {
      readonly kind: 'const';
      readonly type: FunctionType;
      readonly value: ConstValue;
      readonly line: number;
    };

/** One file's names. */
interface Scope {
  readonly file: string;
  readonly includes: Map<string, Scope>;
  readonly defs: Map<string, Definition>;
  readonly services: Map<string, ServiceDefinition>;
  readonly resolvedServices: Map<string, ServiceDef>;
}

const BASE: Partial<Record<SyntaxType, BaseKind>> = {
  [SyntaxType.BoolKeyword]: 'bool',
  [SyntaxType.ByteKeyword]: 'byte',
  [SyntaxType.I8Keyword]: 'byte',
  [SyntaxType.I16Keyword]: 'i16',
  [SyntaxType.I32Keyword]: 'i32',
  [SyntaxType.I64Keyword]: 'i64',
  [SyntaxType.DoubleKeyword]: 'double',
  [SyntaxType.StringKeyword]: 'string',
  [SyntaxType.BinaryKeyword]: 'binary',
};

const EMPTY_ANNOTATIONS: Annotations = new Map();

function annotationsOf(node: { annotations?: AstAnnotations | undefined }): Annotations {
  const list = node.annotations?.annotations;
  if (list === undefined || list.length === 0) return EMPTY_ANNOTATIONS;
  const out = new Map<string, string>();
  for (const a of list) out.set(a.name.value, a.value?.value ?? '');
  return out;
}

/** Parses one file's text; the first syntax error becomes an IdlError. */
function parseText(file: string, text: string) {
  let first: ThriftError | undefined;
  const stop = new Error('stop');
  const onError = (e: ThriftError): void => {
    first ??= e;
    throw stop;
  };
  try {
    // The scanner and parser are used directly: the package's parse() prints errors to the console.
    const tokens = createScanner(text, onError).scan();
    const doc = createParser(tokens, onError).parse();
    if (first === undefined) return doc;
  } catch (e) {
    if (e !== stop) throw new IdlError('ERR_GATEWAY_IDL_SYNTAX', file, 0, (e as Error).message, { cause: e });
  }
  const err = first as ThriftError;
  throw new IdlError('ERR_GATEWAY_IDL_SYNTAX', file, err.loc.start.line, err.message);
}

/** Loads `file` and everything it includes. */
export function loadIdl(file: string, options: LoadIdlOptions = {}): IdlDocument {
  return new IdlLoader(options.readFile ?? ((p) => readFileSync(p, 'utf8'))).load(resolve(file));
}

class IdlLoader {
  private readonly scopes = new Map<string, Scope>();
  private readonly loading = new Set<string>();
  private readonly files: string[] = [];

  constructor(private readonly readFile: (path: string) => string) {}

  load(file: string): IdlDocument {
    const root = this.scope(file, file, 0);
    for (const scope of this.scopes.values()) this.fillStructs(scope);
    const services = new Map<string, ServiceDef>();
    const structs = new Map<string, StructDef>();
    const enums = new Map<string, EnumDef>();
    const publish = (scope: Scope, prefix: string): void => {
      for (const name of scope.services.keys()) services.set(prefix + name, this.service(scope, name, 0));
      for (const [name, d] of scope.defs) {
        if (d.kind === 'struct') structs.set(prefix + name, d.def);
        else if (d.kind === 'enum') enums.set(prefix + name, d.def);
      }
    };
    publish(root, '');
    for (const [alias, scope] of root.includes) publish(scope, `${alias}.`);
    return { file, files: this.files, services, structs, enums };
  }

  private scope(file: string, from: string, line: number): Scope {
    const known = this.scopes.get(file);
    if (known !== undefined) return known;
    if (this.loading.has(file)) {
      throw new IdlError('ERR_GATEWAY_IDL_RESOLVE', from, line, `include cycle through ${file}`);
    }
    let text: string;
    try {
      text = this.readFile(file);
    } catch (e) {
      throw new IdlError(
        'ERR_GATEWAY_IDL_READ',
        from === file ? file : from,
        line,
        `cannot read ${file}: ${(e as Error).message}`,
        { cause: e },
      );
    }
    this.loading.add(file);
    this.files.push(file);
    const doc = parseText(file, text);
    const scope: Scope = {
      file,
      includes: new Map(),
      defs: new Map(),
      services: new Map(),
      resolvedServices: new Map(),
    };
    const define = (name: string, d: Definition, at: number): void => {
      if (scope.defs.has(name) || scope.services.has(name)) {
        throw new IdlError('ERR_GATEWAY_IDL_RESOLVE', file, at, `${name} is defined twice`);
      }
      scope.defs.set(name, d);
    };
    for (const node of doc.body) {
      const at = node.loc.start.line;
      switch (node.type) {
        case SyntaxType.IncludeDefinition: {
          const path = resolve(dirname(file), node.path.value);
          const alias = basename(node.path.value).replace(/\.thrift$/, '');
          scope.includes.set(alias, this.scope(path, file, at));
          break;
        }
        case SyntaxType.StructDefinition:
        case SyntaxType.UnionDefinition:
        case SyntaxType.ExceptionDefinition: {
          const kind: StructKind =
            node.type === SyntaxType.StructDefinition
              ? 'struct'
              : node.type === SyntaxType.UnionDefinition
                ? 'union'
                : 'exception';
          const def: StructDef = {
            name: node.name.value,
            kind,
            fields: [],
            annotations: annotationsOf(node),
          };
          define(node.name.value, { kind: 'struct', def, fields: node.fields }, at);
          break;
        }
        case SyntaxType.EnumDefinition:
          define(node.name.value, { kind: 'enum', def: this.enumDef(file, node) }, at);
          break;
        case SyntaxType.TypedefDefinition:
          define(node.name.value, { kind: 'typedef', node }, at);
          break;
        case SyntaxType.ConstDefinition:
          define(
            node.name.value,
            { kind: 'const', type: node.fieldType, value: node.initializer, line: at },
            at,
          );
          break;
        case SyntaxType.ServiceDefinition:
          if (scope.defs.has(node.name.value) || scope.services.has(node.name.value)) {
            throw new IdlError('ERR_GATEWAY_IDL_RESOLVE', file, at, `${node.name.value} is defined twice`);
          }
          scope.services.set(node.name.value, node);
          break;
        default:
          break; // namespaces and cpp_include say nothing about the wire
      }
    }
    this.loading.delete(file);
    this.scopes.set(file, scope);
    return scope;
  }

  private enumDef(file: string, node: EnumDefinition): EnumDef {
    const byName = new Map<string, number>();
    const byValue = new Map<number, string>();
    let next = 0;
    for (const m of node.members) {
      const value = m.initializer === null ? next : Number(m.initializer.value.value);
      if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) {
        throw new IdlError(
          'ERR_GATEWAY_IDL_INVALID',
          file,
          m.loc.start.line,
          `enum value ${m.name.value} is not an i32`,
        );
      }
      byName.set(m.name.value, value);
      if (!byValue.has(value)) byValue.set(value, m.name.value);
      next = value + 1;
    }
    return { name: node.name.value, byName, byValue };
  }

  /** Finds the definition a (possibly include-qualified) name refers to. */
  private lookup(scope: Scope, name: string, line: number): { scope: Scope; def: Definition } {
    const local = scope.defs.get(name);
    if (local !== undefined) return { scope, def: local };
    const dot = name.indexOf('.');
    if (dot > 0) {
      const inc = scope.includes.get(name.slice(0, dot));
      if (inc !== undefined) {
        const def = inc.defs.get(name.slice(dot + 1));
        if (def !== undefined) return { scope: inc, def };
      }
    }
    throw new IdlError('ERR_GATEWAY_IDL_RESOLVE', scope.file, line, `unknown type ${name}`);
  }

  /** Resolves a field type; typedefs are followed (a typedef cycle is an error). */
  private type(scope: Scope, node: FunctionType, depth = 0): IdlType {
    const line = node.loc.start.line;
    const base = BASE[node.type];
    if (base !== undefined) return { kind: base };
    switch (node.type) {
      case SyntaxType.ListType:
        return { kind: 'list', elem: this.type(scope, node.valueType, depth) };
      case SyntaxType.SetType:
        return { kind: 'set', elem: this.type(scope, node.valueType, depth) };
      case SyntaxType.MapType:
        return {
          kind: 'map',
          key: this.type(scope, node.keyType, depth),
          value: this.type(scope, node.valueType, depth),
        };
      case SyntaxType.Identifier: {
        if (depth > 64)
          throw new IdlError('ERR_GATEWAY_IDL_RESOLVE', scope.file, line, `typedef cycle at ${node.value}`);
        const found = this.lookup(scope, node.value, line);
        const d = found.def;
        if (d.kind === 'struct') return { kind: 'struct', def: d.def };
        if (d.kind === 'enum') return { kind: 'enum', def: d.def };
        if (d.kind === 'typedef') return this.type(found.scope, d.node.definitionType, depth + 1);
        throw new IdlError(
          'ERR_GATEWAY_IDL_RESOLVE',
          scope.file,
          line,
          `${node.value} is a constant, not a type`,
        );
      }
      default:
        throw new IdlError('ERR_GATEWAY_IDL_INVALID', scope.file, line, 'void is not a field type');
    }
  }

  private fields(scope: Scope, nodes: readonly FieldDefinition[], owner: string): FieldDef[] {
    const out: FieldDef[] = [];
    const ids = new Set<number>();
    const names = new Set<string>();
    let auto = -1;
    for (const f of nodes) {
      const line = f.loc.start.line;
      const id = f.fieldID === null ? auto-- : f.fieldID.value;
      if (ids.has(id))
        throw new IdlError(
          'ERR_GATEWAY_IDL_INVALID',
          scope.file,
          line,
          `${owner}: field id ${id} used twice`,
        );
      if (names.has(f.name.value)) {
        throw new IdlError(
          'ERR_GATEWAY_IDL_INVALID',
          scope.file,
          line,
          `${owner}: field ${f.name.value} defined twice`,
        );
      }
      ids.add(id);
      names.add(f.name.value);
      const type = this.type(scope, f.fieldType);
      const requiredness: Requiredness = f.requiredness ?? 'default';
      const defaultValue =
        f.defaultValue === null ? undefined : this.constValue(scope, type, f.defaultValue, 0);
      out.push({ id, name: f.name.value, type, requiredness, defaultValue, annotations: annotationsOf(f) });
    }
    return out;
  }

  private fillStructs(scope: Scope): void {
    for (const d of scope.defs.values()) {
      if (d.kind === 'struct') d.def.fields.push(...this.fields(scope, d.fields, d.def.name));
    }
  }

  /** A constant in its JSON form (what the JSON writer accepts), checked against its type. */
  private constValue(scope: Scope, type: IdlType, node: ConstValue, depth: number): unknown {
    const line = node.loc.start.line;
    const bad = (why: string): never => {
      throw new IdlError('ERR_GATEWAY_IDL_INVALID', scope.file, line, why);
    };
    if (depth > 64) bad('constant nested too deeply');
    if (node.type === SyntaxType.Identifier) {
      // An enum member (`Status.ACTIVE`, or bare `ACTIVE` for an enum-typed field) or a constant.
      if (type.kind === 'enum') {
        const member = node.value.slice(node.value.lastIndexOf('.') + 1);
        if (type.def.byName.has(member)) return member;
      }
      const found = this.lookup(scope, node.value, line);
      if (found.def.kind !== 'const') {
        const dot = node.value.lastIndexOf('.');
        const holder = dot > 0 ? this.lookup(scope, node.value.slice(0, dot), line).def : undefined;
        if (holder?.kind === 'enum') {
          const v = holder.def.byName.get(node.value.slice(dot + 1));
          if (v !== undefined) return type.kind === 'enum' ? (type.def.byValue.get(v) ?? v) : v;
        }
        bad(`${node.value} is not a constant`);
      }
      const c = found.def as Extract<Definition, { kind: 'const' }>;
      return this.constValue(found.scope, type, c.value, depth + 1);
    }
    switch (type.kind) {
      case 'bool':
        if (node.type === SyntaxType.BooleanLiteral) return node.value;
        if (node.type === SyntaxType.IntConstant) return Number(node.value.value) !== 0;
        return bad('expected a bool');
      case 'byte':
      case 'i16':
      case 'i32':
      case 'i64': {
        if (node.type !== SyntaxType.IntConstant) return bad(`expected an ${type.kind}`);
        const v = BigInt(node.value.value);
        const bits = type.kind === 'byte' ? 8 : type.kind === 'i16' ? 16 : type.kind === 'i32' ? 32 : 64;
        if (BigInt.asIntN(bits, v) !== v) bad(`${v} does not fit ${type.kind}`);
        return type.kind === 'i64' ? v.toString() : Number(v);
      }
      case 'double':
        if (node.type === SyntaxType.IntConstant || node.type === SyntaxType.DoubleConstant) {
          return Number(node.value.value);
        }
        return bad('expected a double');
      case 'string':
        if (node.type === SyntaxType.StringLiteral) return node.value;
        return bad('expected a string');
      case 'binary':
        if (node.type === SyntaxType.StringLiteral) return Buffer.from(node.value, 'utf8').toString('base64');
        return bad('expected a string');
      case 'enum': {
        if (node.type !== SyntaxType.IntConstant) return bad(`expected a ${type.def.name}`);
        const name = type.def.byValue.get(Number(node.value.value));
        return name ?? bad(`${node.value.value} is not a ${type.def.name}`);
      }
      case 'list':
      case 'set':
        if (node.type !== SyntaxType.ConstList) return bad(`expected a ${type.kind}`);
        return node.elements.map((e) => this.constValue(scope, type.elem, e, depth + 1));
      case 'map': {
        if (node.type !== SyntaxType.ConstMap) return bad('expected a map');
        const out: Record<string, unknown> = {};
        for (const p of node.properties) {
          const k = this.constValue(scope, type.key, p.name, depth + 1);
          out[typeof k === 'string' ? k : JSON.stringify(k)] = this.constValue(
            scope,
            type.value,
            p.initializer,
            depth + 1,
          );
        }
        return out;
      }
      case 'struct': {
        if (node.type !== SyntaxType.ConstMap) return bad(`expected a ${type.def.name}`);
        const out: Record<string, unknown> = {};
        for (const p of node.properties) {
          if (p.name.type !== SyntaxType.StringLiteral) bad('struct constant keys are field names');
          const name = (p.name as { value: string }).value;
          const f = type.def.fields.find((x) => x.name === name);
          if (f === undefined) return bad(`${type.def.name} has no field ${name}`);
          out[name] = this.constValue(scope, f.type, p.initializer, depth + 1);
        }
        return out;
      }
    }
  }

  /** A service with its ancestors' functions (its own win). */
  private service(scope: Scope, name: string, line: number): ServiceDef {
    const done = scope.resolvedServices.get(name);
    if (done !== undefined) return done;
    let owner = scope;
    let node = scope.services.get(name);
    const dot = name.indexOf('.');
    if (node === undefined && dot > 0) {
      const inc = scope.includes.get(name.slice(0, dot));
      if (inc !== undefined) {
        owner = inc;
        node = inc.services.get(name.slice(dot + 1));
      }
    }
    if (node === undefined)
      throw new IdlError('ERR_GATEWAY_IDL_RESOLVE', scope.file, line, `unknown service ${name}`);
    if (owner !== scope) return this.service(owner, node.name.value, line);
    const functions = new Map<string, FunctionDef>();
    if (node.extends !== null) {
      if (node.extends.value === name) {
        throw new IdlError(
          'ERR_GATEWAY_IDL_RESOLVE',
          scope.file,
          node.loc.start.line,
          `${name} extends itself`,
        );
      }
      const parent = this.service(scope, node.extends.value, node.extends.loc.start.line);
      for (const [n, f] of parent.functions) functions.set(n, f);
    }
    for (const f of node.functions) {
      const fline = f.loc.start.line;
      const args: StructDef = {
        name: `${f.name.value}_args`,
        kind: 'struct',
        fields: this.fields(scope, f.fields, `${node.name.value}.${f.name.value}`),
        annotations: EMPTY_ANNOTATIONS,
      };
      const throws = this.fields(scope, f.throws, `${node.name.value}.${f.name.value} throws`);
      for (const t of throws) {
        if (t.type.kind !== 'struct' || t.type.def.kind !== 'exception') {
          throw new IdlError(
            'ERR_GATEWAY_IDL_INVALID',
            scope.file,
            fline,
            `${f.name.value} throws ${t.name}, which is not an exception`,
          );
        }
      }
      const returns =
        f.returnType.type === SyntaxType.VoidKeyword ? undefined : this.type(scope, f.returnType);
      if (f.oneway && (returns !== undefined || throws.length > 0)) {
        throw new IdlError(
          'ERR_GATEWAY_IDL_INVALID',
          scope.file,
          fline,
          `oneway ${f.name.value} must return void and throw nothing`,
        );
      }
      const resultFields: FieldDef[] = [];
      if (returns !== undefined) {
        resultFields.push({
          id: 0,
          name: 'success',
          type: returns,
          requiredness: 'optional',
          defaultValue: undefined,
          annotations: EMPTY_ANNOTATIONS,
        });
      }
      for (const t of throws) resultFields.push({ ...t, requiredness: 'optional' });
      functions.set(f.name.value, {
        name: f.name.value,
        service: node.name.value,
        oneway: f.oneway,
        returns,
        args,
        result: {
          name: `${f.name.value}_result`,
          kind: 'union',
          fields: resultFields,
          annotations: EMPTY_ANNOTATIONS,
        },
        annotations: annotationsOf(f),
      });
    }
    const def: ServiceDef = { name: node.name.value, functions, annotations: annotationsOf(node) };
    scope.resolvedServices.set(name, def);
    return def;
  }
}
