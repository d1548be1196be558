/**
 * The resolved form of a Thrift IDL that the converters compile from: typedefs are gone
 * (replaced by what they name), identifiers point at their definitions (structs may refer to
 * themselves), services list their own and inherited functions, and every function has its
 * args and result structs as Thrift puts them on the wire. Not the parser's syntax tree
 * (@creditkarma/thrift-parser's, used only by load.ts) and not a code generator.
 */

/** A base type. */
export type BaseKind = 'bool' | 'byte' | 'i16' | 'i32' | 'i64' | 'double' | 'string' | 'binary';

/** A resolved field or return type. */
export type IdlType =
  | { readonly kind: BaseKind }
  | { readonly kind: 'enum'; readonly def: EnumDef }
  | { readonly kind: 'struct'; readonly def: StructDef }
  | { readonly kind: 'list' | 'set'; readonly elem: IdlType }
  | { readonly kind: 'map'; readonly key: IdlType; readonly value: IdlType };

/** Annotations of a definition or field: `(api.get = "/x")` is `api.get` -> `/x`. */
export type Annotations = ReadonlyMap<string, string>;

/** An enum: names to values and back. */
export interface EnumDef {
  readonly name: string;
  readonly byName: ReadonlyMap<string, number>;
  readonly byValue: ReadonlyMap<number, string>;
}

/** How a field is required. */
export type Requiredness = 'required' | 'optional' | 'default';

/** A struct, union or exception field. */
export interface FieldDef {
  readonly id: number;
  readonly name: string;
  readonly type: IdlType;
  readonly requiredness: Requiredness;
  /** The default value in JSON form (i64 as a string, binary as base64, enum as a name). */
  readonly defaultValue: unknown;
  readonly annotations: Annotations;
}

/** What a struct-like definition is. */
export type StructKind = 'struct' | 'union' | 'exception';

/** A struct, union or exception (fields are filled after every definition exists). */
export interface StructDef {
  readonly name: string;
  readonly kind: StructKind;
  readonly fields: FieldDef[];
  readonly annotations: Annotations;
}

/** A service function with its wire structs. */
export interface FunctionDef {
  readonly name: string;
  /** The service that declares it (an ancestor for inherited functions). */
  readonly service: string;
  readonly oneway: boolean;
  /** The return type; undefined for void. */
  readonly returns: IdlType | undefined;
  /** `<name>_args`: the parameters as fields. */
  readonly args: StructDef;
  /** `<name>_result`: field 0 `success` (absent for void) and the declared exceptions. */
  readonly result: StructDef;
  readonly annotations: Annotations;
}

/** A service with its functions, inherited ones included (a redefinition wins). */
export interface ServiceDef {
  readonly name: string;
  readonly functions: ReadonlyMap<string, FunctionDef>;
  readonly annotations: Annotations;
}

/** A loaded IDL file and its includes. */
export interface IdlDocument {
  /** The root file (absolute path). */
  readonly file: string;
  /** Every file read (root first): what a reload watches. */
  readonly files: readonly string[];
  /** Services by name as the root file spells them (`UserService`, `shared.Base`). */
  readonly services: ReadonlyMap<string, ServiceDef>;
  /** Structs, unions and exceptions by name as the root file spells them. */
  readonly structs: ReadonlyMap<string, StructDef>;
  /** Enums by name as the root file spells them. */
  readonly enums: ReadonlyMap<string, EnumDef>;
}
