/**
 * fast-check arbitraries of typed Thrift values for the conformance and transport suites:
 * a type is drawn first, then a value of that type, so containers stay homogeneous.
 */
import fc from 'fast-check';
import { type ThriftStruct, type ThriftValue, TType } from '../src/index.js';

const scalarTypes: TType[] = [
  TType.BOOL,
  TType.BYTE,
  TType.I16,
  TType.I32,
  TType.I64,
  TType.DOUBLE,
  TType.STRING,
  TType.UUID,
];
const allTypes: TType[] = [...scalarTypes, TType.STRUCT, TType.LIST, TType.SET, TType.MAP];

export function typeArb(depth: number): fc.Arbitrary<TType> {
  return fc.constantFrom(...(depth <= 0 ? scalarTypes : allTypes));
}

export function valueArb(t: TType, depth: number): fc.Arbitrary<ThriftValue> {
  switch (t) {
    case TType.BOOL:
      return fc.boolean();
    case TType.BYTE:
      return fc.integer({ min: -128, max: 127 });
    case TType.I16:
      return fc.integer({ min: -32768, max: 32767 });
    case TType.I32:
      return fc.integer({ min: -2147483648, max: 2147483647 });
    case TType.I64:
      return fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
    case TType.DOUBLE:
      return fc.double();
    case TType.STRING:
      return fc.string({ unit: 'grapheme', maxLength: 40 });
    case TType.UUID:
      return fc.uuid();
    case TType.STRUCT:
      return structArb(depth);
    case TType.LIST:
    case TType.SET:
      return typeArb(depth - 1).chain((elemType) =>
        fc.array(valueArb(elemType, depth - 1), { maxLength: 20 }).map((items) => ({
          kind: t === TType.LIST ? ('list' as const) : ('set' as const),
          elemType,
          items,
        })),
      );
    case TType.MAP:
      return fc.tuple(typeArb(depth - 1), typeArb(depth - 1)).chain(([keyType, valueType]) =>
        fc
          .array(fc.tuple(valueArb(keyType, depth - 1), valueArb(valueType, depth - 1)), {
            minLength: 1,
            maxLength: 6,
          })
          .map((entries) => ({ kind: 'map' as const, keyType, valueType, entries })),
      );
    default:
      throw new Error(`no arbitrary for ${t}`);
  }
}

export function structArb(depth: number): fc.Arbitrary<ThriftStruct> {
  return fc
    .uniqueArray(fc.integer({ min: -32768, max: 32767 }), { maxLength: 6 })
    .chain((ids) =>
      fc
        .tuple(
          ...ids.map((id) =>
            typeArb(depth - 1).chain((type) =>
              valueArb(type, depth - 1).map((value) => ({ id, type, value })),
            ),
          ),
        )
        .map((fields) => ({ kind: 'struct' as const, fields })),
    );
}
