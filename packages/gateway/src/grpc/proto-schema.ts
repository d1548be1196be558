/**
 * The protobuf schema the gRPC pseudonymization plan reads (proto-plan.ts), one model for both
 * inputs: a binary FileDescriptorSet (`protoc --include_imports --descriptor_set_out=x.binpb`,
 * `buf build -o x.binpb`) read through @bufbuild/protobuf's registry, and .proto files parsed by
 * protobufjs (@bufbuild/protobuf has no .proto compiler: that is protoc or the buf CLI, native
 * programs a config load should not need). Each adapter gives services, methods and messages with
 * only what a field path needs: names, numbers, string/bytes/message kinds, maps, and the
 * `(pii)` / `(pii_domain)` options. Messages keep their identity (one object per message type),
 * so the plan can key recursive messages by them. Not for encoding or decoding messages.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import {
  createFileRegistry,
  type DescExtension,
  type DescField,
  type DescMessage,
  type FileRegistry,
  fromBinary,
  getExtension,
  hasExtension,
  ScalarType,
} from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import protobuf from 'protobufjs';
import { GatewayConfigError } from '../errors.js';

/** A field as a path sees it. */
export interface ProtoFieldDesc {
  readonly name: string;
  readonly number: number;
  /** `string`, `bytes`, the message's name, or another scalar's name (`int64`); of the value for maps. */
  readonly type: string;
  /** The message a `message` (or repeated / map-valued message) field holds. */
  readonly message: ProtoMessageDesc | undefined;
  /** A map field: on the wire a repeated entry message { 1: key, 2: value }. */
  readonly map: boolean;
  /** The `(pii)` option's value (any package: `(loch.pii)`), if set. */
  readonly pii: string | undefined;
  /** The `(pii_domain)` option's value, if set. */
  readonly piiDomain: string | undefined;
}

export interface ProtoMessageDesc {
  /** `package.Message`, no leading dot. */
  readonly fullName: string;
  readonly name: string;
  readonly fields: readonly ProtoFieldDesc[];
}

export interface ProtoMethodDesc {
  readonly name: string;
  readonly input: ProtoMessageDesc;
  readonly output: ProtoMessageDesc;
}

export interface ProtoServiceDesc {
  /** `package.Service`, no leading dot. */
  readonly fullName: string;
  readonly methods: ReadonlyMap<string, ProtoMethodDesc>;
}

/** Every service of some protobuf files, with the messages they reach. */
export interface ProtoSchema {
  readonly services: ReadonlyMap<string, ProtoServiceDesc>;
  /** The files read (imports and dependencies too): what to watch for a reload. */
  readonly files: readonly string[];
}

// ---------------------------------------------------------------- descriptor sets

/**
 * Reads binary FileDescriptorSets (several are merged; each must hold its imports, as
 * `protoc --include_imports` writes). A file that cannot be read or is not a complete descriptor
 * set is a GatewayConfigError naming it.
 */
export function loadDescriptorSets(files: readonly string[]): ProtoSchema {
  const registries: FileRegistry[] = [];
  for (const file of files) {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(file);
    } catch (e) {
      throw new GatewayConfigError(`${file}: ${(e as Error).message}`);
    }
    try {
      registries.push(createFileRegistry(fromBinary(FileDescriptorSetSchema, bytes)));
    } catch (e) {
      throw new GatewayConfigError(`${file}: not a complete FileDescriptorSet: ${(e as Error).message}`);
    }
  }
  let registry: FileRegistry;
  try {
    registry = registries.length === 1 ? (registries[0] as FileRegistry) : createFileRegistry(...registries);
  } catch (e) {
    throw new GatewayConfigError(`${files.join(', ')}: ${(e as Error).message}`);
  }
  return schemaOfRegistry(registry, files);
}

/** The schema of a @bufbuild/protobuf registry. */
export function schemaOfRegistry(registry: FileRegistry, files: readonly string[] = []): ProtoSchema {
  // Options are extensions of google.protobuf.FieldOptions; any package's `pii` counts.
  const pii: DescExtension[] = [];
  const piiDomain: DescExtension[] = [];
  for (const type of registry) {
    if (type.kind !== 'extension' || type.extendee.typeName !== 'google.protobuf.FieldOptions') continue;
    if (type.name === 'pii') pii.push(type);
    else if (type.name === 'pii_domain') piiDomain.push(type);
  }
  const optionOf = (field: DescField, extensions: readonly DescExtension[]): string | undefined => {
    const options = field.proto.options;
    if (options === undefined) return undefined;
    for (const ext of extensions) {
      if (hasExtension(options, ext)) return String(getExtension(options, ext));
    }
    return undefined;
  };
  const messages = new Map<DescMessage, ProtoMessageDesc>();
  const messageOf = (desc: DescMessage): ProtoMessageDesc => {
    let out = messages.get(desc);
    if (out !== undefined) return out;
    const fields: ProtoFieldDesc[] = [];
    out = { fullName: desc.typeName, name: desc.name, fields };
    messages.set(desc, out);
    for (const field of desc.fields) {
      const message = field.message === undefined ? undefined : messageOf(field.message);
      fields.push({
        name: field.name,
        number: field.number,
        type: message?.name ?? (field.scalar === undefined ? 'enum' : scalarName(field.scalar)),
        message,
        map: field.fieldKind === 'map',
        pii: optionOf(field, pii),
        piiDomain: optionOf(field, piiDomain),
      });
    }
    return out;
  };
  const services = new Map<string, ProtoServiceDesc>();
  for (const type of registry) {
    if (type.kind !== 'service') continue;
    const methods = new Map<string, ProtoMethodDesc>();
    for (const m of type.methods)
      methods.set(m.name, { name: m.name, input: messageOf(m.input), output: messageOf(m.output) });
    services.set(type.typeName, { fullName: type.typeName, methods });
  }
  return { services, files };
}

function scalarName(scalar: ScalarType): string {
  return (ScalarType[scalar] ?? 'scalar').toLowerCase();
}

// ---------------------------------------------------------------- .proto files (protobufjs)

const DESCRIPTOR_PROTO = 'google/protobuf/descriptor.proto';

/**
 * Loads .proto files (imports resolved beside them; google/protobuf's well-known files and
 * descriptor.proto, which option extensions import, built in); a bad file is a
 * GatewayConfigError naming it.
 */
export function loadProtoRoot(files: readonly string[]): protobuf.Root {
  // protobufjs bundles descriptor.proto pre-parsed but does not resolve imports of it by itself.
  const common = protobuf.common as unknown as Record<string, unknown>;
  if (common[DESCRIPTOR_PROTO] === undefined)
    protobuf.common(
      DESCRIPTOR_PROTO,
      createRequire(import.meta.url)('protobufjs/google/protobuf/descriptor.json'),
    );
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

/** Loads .proto files as a schema; `files` of the result lists the imports read too. */
export function loadProtoFiles(files: readonly string[]): ProtoSchema {
  return schemaOfRoot(loadProtoRoot(files));
}

/** The schema of a protobufjs Root (`[(pii)]` options need no extension declaration there). */
export function schemaOfRoot(root: protobuf.Root): ProtoSchema {
  root.resolveAll();
  const messages = new Map<protobuf.Type, ProtoMessageDesc>();
  const messageOf = (type: protobuf.Type): ProtoMessageDesc => {
    let out = messages.get(type);
    if (out !== undefined) return out;
    const fields: ProtoFieldDesc[] = [];
    out = { fullName: type.fullName.replace(/^\./, ''), name: type.name, fields };
    messages.set(type, out);
    for (const field of type.fieldsArray) {
      field.resolve();
      const message = field.resolvedType instanceof protobuf.Type ? messageOf(field.resolvedType) : undefined;
      const pii = rootOptionOf(field, 'pii');
      const piiDomain = rootOptionOf(field, 'pii_domain');
      fields.push({
        name: field.name,
        number: field.id,
        type: field.type,
        message,
        map: field instanceof protobuf.MapField,
        pii: pii === undefined ? undefined : String(pii),
        piiDomain: piiDomain === undefined ? undefined : String(piiDomain),
      });
    }
    return out;
  };
  const services = new Map<string, ProtoServiceDesc>();
  for (const service of servicesOf(root)) {
    const methods = new Map<string, ProtoMethodDesc>();
    for (const m of service.methodsArray) {
      m.resolve();
      methods.set(m.name, {
        name: m.name,
        input: messageOf(m.resolvedRequestType as protobuf.Type),
        output: messageOf(m.resolvedResponseType as protobuf.Type),
      });
    }
    const fullName = service.fullName.replace(/^\./, '');
    services.set(fullName, { fullName, methods });
  }
  // Built-in files (google/protobuf/*) are not on disk.
  const common = protobuf.common as unknown as Record<string, unknown>;
  return { services, files: root.files.filter((f) => common[f] === undefined) };
}

/** A field's option `(pii)` or `(anything.pii)` (and the same for `pii_domain`). */
function rootOptionOf(field: protobuf.Field, name: string): unknown {
  const options = field.options;
  if (options === undefined) return undefined;
  for (const key in options) {
    if (key === `(${name})` || (key.endsWith(`.${name})`) && key.startsWith('('))) return options[key];
  }
  return undefined;
}

/** Every service of a Root, nested namespaces included. */
function servicesOf(ns: protobuf.NamespaceBase): protobuf.Service[] {
  const out: protobuf.Service[] = [];
  for (const nested of ns.nestedArray) {
    if (nested instanceof protobuf.Service) out.push(nested);
    if (nested instanceof protobuf.Namespace || nested instanceof protobuf.Type)
      out.push(...servicesOf(nested));
  }
  return out;
}
