/**
 * Applies a PseudonymPlan to encoded Thrift messages: walks the args struct of a call or the
 * result struct of a reply along the plan, skipping every field the plan does not name without
 * decoding it, and replaces each planned string or binary by its token (or a token by its
 * value) in a new message; the message header and every other byte are copied as they came.
 * Binary and compact messages alike (neither has a length around a struct, so only the
 * rewritten values' own length prefixes change; the framing is computed from the new payload).
 * A message with nothing planned is returned as it is (the same array).
 *
 * Direction: `upstream` means the upstream side holds tokens (calls are pseudonymized on the
 * way up, replies revealed on the way back); `downstream` means the clients hold tokens (calls
 * are revealed, replies pseudonymized). Not for framing, routing or the cipher.
 */
import {
  createReader,
  createWriter,
  MessageType,
  type ProtocolName,
  type ProtocolReader,
  type ProtocolWriter,
  TType,
} from '@loch/thrift';
import { PseudonymError } from './errors.js';
import {
  AMBIGUOUS_METHOD,
  type FunctionPlan,
  type PlanNode,
  type PseudonymLeaf,
  type PseudonymPlan,
  type StructPlan,
} from './plan.js';
import type { Pseudonymizer } from './pseudonymizer.js';

/** Which side of the rewriter holds tokens. */
export type PseudonymDirection = 'upstream' | 'downstream';

// ignoreBOM: a value's leading U+FEFF is part of it (the default decoder drops it: another
// value's token, and a changed value restored).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

/** Rethrows `e` with one more path segment when it is a PseudonymError. */
function within(e: unknown, segment: string): never {
  if (e instanceof PseudonymError) e.segments.push(segment);
  throw e;
}

interface Splice {
  readonly start: number;
  readonly end: number;
  readonly bytes: Uint8Array;
}

/** Rewrites one protocol's messages (a reader and writer reused; synchronous, so one of each serves). */
class ProtocolRewriter {
  readonly reader: ProtocolReader;
  readonly writer: ProtocolWriter;
  /** Splices of the message being rewritten, in order. */
  readonly splices: Splice[] = [];
  seal = false;

  constructor(
    protocol: ProtocolName,
    private readonly pseudonymizer: Pseudonymizer,
  ) {
    this.reader = createReader(protocol);
    this.writer = createWriter(protocol);
  }

  rewrite(payload: Uint8Array, plan: StructPlan): Uint8Array {
    this.splices.length = 0;
    this.struct(plan);
    const splices = this.splices;
    if (splices.length === 0) return payload;
    const w = this.writer.reset();
    let at = 0;
    for (const s of splices) {
      w.writeRaw(payload.subarray(at, s.start));
      w.writeBinary(s.bytes);
      at = s.end;
    }
    w.writeRaw(payload.subarray(at));
    splices.length = 0;
    return w.finishCopy();
  }

  private struct(plan: StructPlan): void {
    const r = this.reader;
    r.readStructBegin();
    for (;;) {
      const type = r.readFieldBegin();
      if (type === TType.STOP) break;
      const f = plan.fields.get(r.fieldId);
      if (f === undefined) r.skip(type);
      else {
        try {
          if (type !== f.type) this.wrongType(f.type, type);
          this.value(f.node);
        } catch (e) {
          within(e, f.name);
        }
      }
      r.readFieldEnd();
    }
    r.readStructEnd();
  }

  private value(node: PlanNode): void {
    const r = this.reader;
    switch (node.kind) {
      case 'leaf':
        this.leaf(node);
        return;
      case 'struct':
        this.struct(node.plan);
        return;
      case 'list':
      case 'set': {
        const n = node.kind === 'set' ? r.readSetBegin() : r.readListBegin();
        if (n > 0 && r.elemType !== node.elemType) this.wrongType(node.elemType, r.elemType);
        for (let i = 0; i < n; i++) {
          try {
            this.value(node.elem);
          } catch (e) {
            within(e, `[${i}]`);
          }
        }
        if (node.kind === 'set') r.readSetEnd();
        else r.readListEnd();
        return;
      }
      case 'map': {
        const n = r.readMapBegin();
        if (n > 0 && (r.keyType !== node.keyType || r.valueType !== node.valueType))
          this.wrongType(node.valueType, r.valueType);
        for (let i = 0; i < n; i++) {
          r.skip(node.keyType);
          try {
            this.value(node.value);
          } catch (e) {
            within(e, `[${i}]`);
          }
        }
        r.readMapEnd();
        return;
      }
    }
  }

  private leaf(leaf: PseudonymLeaf): void {
    const r = this.reader;
    const start = r.pos;
    const raw = r.readBinary();
    const p = this.pseudonymizer;
    let out: Uint8Array;
    if (this.seal) {
      let token: string;
      if (leaf.binary) token = p.pseudonymizeBytes(leaf.domain, raw, leaf.format);
      else {
        let text: string;
        try {
          text = utf8.decode(raw);
        } catch {
          throw new PseudonymError('ERR_PSEUDONYM_VALUE', `${leaf.domain}: the string is not UTF-8`);
        }
        token = p.pseudonymize(leaf.domain, text, leaf.format);
      }
      out = encoder.encode(token);
    } else {
      // A token is ASCII; latin1 maps any other byte to a character no token holds.
      const token = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('latin1');
      out = leaf.binary ? p.revealBytes(leaf.domain, token) : encoder.encode(p.reveal(leaf.domain, token));
    }
    this.splices.push({ start, end: r.pos, bytes: out });
  }

  private wrongType(want: TType, got: TType): never {
    throw new PseudonymError(
      'ERR_PSEUDONYM_MESSAGE',
      `wire type ${got} where the IDL has ${want}: a chosen field is never forwarded unrewritten`,
    );
  }
}

/** A plan, a pseudonymizer and a direction: rewrites calls and replies. */
export class PseudonymRewriter {
  readonly #byProtocol = new Map<ProtocolName, ProtocolRewriter>();

  constructor(
    readonly plan: PseudonymPlan,
    readonly pseudonymizer: Pseudonymizer,
    readonly direction: PseudonymDirection,
  ) {}

  /**
   * A CALL or ONEWAY message as it goes upstream. Throws PseudonymError (its `segments` the
   * path within the arguments, e.g. `user.email`) for a token that does not open, a value that
   * cannot be sealed, a chosen field of another wire type, or an ambiguous bare method name;
   * ThriftProtocolError for bytes that are not a message.
   */
  call(protocol: ProtocolName, payload: Uint8Array, fn?: FunctionPlan): Uint8Array {
    return this.#rewrite(protocol, payload, false, fn);
  }

  /**
   * A REPLY message as it goes back to the caller (EXCEPTION messages pass as they are). `fn`,
   * when the caller knows the function (a gateway route), is used instead of the message name.
   */
  reply(protocol: ProtocolName, payload: Uint8Array, fn?: FunctionPlan): Uint8Array {
    return this.#rewrite(protocol, payload, true, fn);
  }

  /** Whether the message name `name` has anything planned (or is refused as ambiguous). */
  plans(name: string): boolean {
    return this.plan.forMessage(name) !== undefined;
  }

  #rewrite(protocol: ProtocolName, payload: Uint8Array, isReply: boolean, known?: FunctionPlan): Uint8Array {
    let rw = this.#byProtocol.get(protocol);
    if (rw === undefined)
      this.#byProtocol.set(protocol, (rw = new ProtocolRewriter(protocol, this.pseudonymizer)));
    const r = rw.reader.reset(payload);
    const header = r.readMessageBegin();
    const wanted = isReply
      ? MessageType.REPLY
      : header.type === MessageType.ONEWAY
        ? MessageType.ONEWAY
        : MessageType.CALL;
    if (header.type !== wanted) return payload;
    const fn = known ?? this.plan.forMessage(header.name);
    if (fn === undefined) return payload;
    if (fn === AMBIGUOUS_METHOD) {
      throw new PseudonymError(
        'ERR_PSEUDONYM_MESSAGE',
        header.name.includes(':')
          ? `"${header.name}": the IDL has no such service, and the method has chosen fields`
          : `"${header.name}" is a function of several services of the IDL: call it as "Service:${header.name}"`,
      );
    }
    const plan = isReply ? fn.result : fn.args;
    if (plan === undefined) return payload;
    // Upstream holds tokens: seal on the way up, open on the way back; downstream the reverse.
    rw.seal = (this.direction === 'upstream') !== isReply;
    return rw.rewrite(payload, plan);
  }
}
