/**
 * Applies a ProtoPseudonymPlan to protobuf messages on the wire and to gRPC's length-prefixed
 * message streams. A message is walked field by field (tag, wire type): fields the plan does not
 * name are copied as they came without decoding; a chosen string/bytes is replaced by its token
 * (or a token by its value); a chosen sub-message is rewritten and its length prefix
 * recomputed (protobuf, unlike Thrift, prefixes every sub-message with its length). A message
 * with nothing chosen in it is returned as it is (the same array). Fails closed like the Thrift
 * rewriter: a chosen field with another wire type, a bad token or truncated bytes throw a
 * PseudonymError naming the path (`user.email`).
 *
 * GrpcMessageStream turns a DATA byte stream (5-byte prefix: compressed flag, big-endian length;
 * messages may span chunks and chunks hold several) into rewritten, re-prefixed messages,
 * unary or streaming alike. Compressed messages (grpc-encoding) are refused, never passed.
 * Not for HTTP/2 or routing: a gRPC proxy feeds request and response bodies through it.
 */
import { PseudonymError } from '../pseudonym/errors.js';
import type { PseudonymDirection } from '../pseudonym/message-rewriter.js';
import type { Pseudonymizer } from '../pseudonym/pseudonymizer.js';
import type { ProtoLeaf, ProtoMessagePlan, ProtoMethodPlan, ProtoPseudonymPlan } from './proto-plan.js';

// ignoreBOM: a value's leading U+FEFF is part of it (the default decoder drops it: another
// value's token, and a changed value restored).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

function within(e: unknown, segment: string): never {
  if (e instanceof PseudonymError) e.segments.push(segment);
  throw e;
}

function malformed(why: string): never {
  throw new PseudonymError('ERR_PSEUDONYM_MESSAGE', `not a protobuf message: ${why}`);
}

/** Reads a varint at `pos` (up to 64 bits, as a number: lengths and tags fit). */
function varint(b: Uint8Array, pos: number, end: number): [value: number, next: number] {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) malformed('truncated varint');
    const byte = b[pos++] as number;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return [value, pos];
    scale *= 128;
  }
  return malformed('varint longer than 10 bytes');
}

function varintBytes(n: number): Uint8Array {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Uint8Array.from(out);
}

/** Skips a group's fields up to its end tag (deprecated wire types 3/4). */
function skipGroup(b: Uint8Array, pos: number, end: number, depth: number): number {
  if (depth > 64) malformed('nested deeper than 64');
  for (;;) {
    const [tag, p] = varint(b, pos, end);
    const wire = tag & 7;
    if (wire === 4) return p;
    pos = skipValue(b, p, end, wire, depth);
  }
}

function skipValue(b: Uint8Array, pos: number, end: number, wire: number, depth: number): number {
  switch (wire) {
    case 0:
      return varint(b, pos, end)[1];
    case 1:
      pos += 8;
      break;
    case 2: {
      const [len, p] = varint(b, pos, end);
      pos = p + len;
      break;
    }
    case 3:
      return skipGroup(b, pos, end, depth + 1);
    case 5:
      pos += 4;
      break;
    default:
      malformed(`wire type ${wire}`);
  }
  if (pos > end) malformed('truncated field');
  return pos;
}

/** Rewrites protobuf messages of one plan in one direction. */
export class ProtoMessageRewriter {
  constructor(private readonly pseudonymizer: Pseudonymizer) {}

  /**
   * `b[start, end)` rewritten by `plan` (`seal`: values to tokens, else tokens to values); `b`
   * itself when nothing in the range changed.
   */
  message(
    b: Uint8Array,
    plan: ProtoMessagePlan,
    seal: boolean,
    start = 0,
    end = b.length,
    depth = 0,
  ): Uint8Array {
    if (depth > 64) malformed('nested deeper than 64');
    let pieces: Uint8Array[] | undefined;
    let copied = start;
    let pos = start;
    while (pos < end) {
      const [tag, afterTag] = varint(b, pos, end);
      const wire = tag & 7;
      const number = Math.floor(tag / 8);
      const f = plan.fields.get(number);
      if (f === undefined) {
        pos = skipValue(b, afterTag, end, wire, depth);
        continue;
      }
      let replaced: Uint8Array | undefined;
      try {
        if (wire !== 2) {
          throw new PseudonymError(
            'ERR_PSEUDONYM_MESSAGE',
            `wire type ${wire} where a length-delimited field belongs: a chosen field is never forwarded unrewritten`,
          );
        }
        const [len, body] = varint(b, afterTag, end);
        pos = body + len;
        if (pos > end) malformed('truncated field');
        const inner =
          f.node.kind === 'leaf'
            ? this.#leaf(f.node, b.subarray(body, pos), seal)
            : this.message(b, f.node.plan, seal, body, pos, depth + 1);
        // `b` itself back: nothing in the sub-message changed.
        if (inner !== b) replaced = inner;
      } catch (e) {
        within(e, f.name);
      }
      if (replaced !== undefined) {
        pieces ??= [];
        pieces.push(b.subarray(copied, afterTag), varintBytes(replaced.length), replaced);
        copied = pos;
      }
    }
    if (pieces === undefined) return b;
    pieces.push(b.subarray(copied, end));
    let total = 0;
    for (const p of pieces) total += p.length;
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of pieces) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  #leaf(leaf: ProtoLeaf, raw: Uint8Array, seal: boolean): Uint8Array {
    const p = this.pseudonymizer;
    if (seal) {
      if (leaf.binary) return encoder.encode(p.pseudonymizeBytes(leaf.domain, raw, leaf.format));
      let text: string;
      try {
        text = utf8.decode(raw);
      } catch {
        throw new PseudonymError('ERR_PSEUDONYM_VALUE', `${leaf.domain}: the string is not UTF-8`);
      }
      return encoder.encode(p.pseudonymize(leaf.domain, text, leaf.format));
    }
    const token = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('latin1');
    return leaf.binary ? p.revealBytes(leaf.domain, token) : encoder.encode(p.reveal(leaf.domain, token));
  }
}

/** A method's plan and a direction: rewrites its request and response messages. */
export class GrpcPseudonymRewriter {
  readonly #messages: ProtoMessageRewriter;

  constructor(
    readonly plan: ProtoPseudonymPlan,
    pseudonymizer: Pseudonymizer,
    readonly direction: PseudonymDirection,
  ) {
    this.#messages = new ProtoMessageRewriter(pseudonymizer);
  }

  /** The plan of a gRPC :path, or undefined (nothing to rewrite: pass the call as it is). */
  forPath(path: string): ProtoMethodPlan | undefined {
    return this.plan.forPath(path);
  }

  /** A request message of `method` as it goes upstream. */
  request(method: ProtoMethodPlan, message: Uint8Array): Uint8Array {
    if (method.request === undefined) return message;
    return this.#messages.message(message, method.request, this.direction === 'upstream');
  }

  /** A response message of `method` as it goes back to the client. */
  response(method: ProtoMethodPlan, message: Uint8Array): Uint8Array {
    if (method.response === undefined) return message;
    return this.#messages.message(message, method.response, this.direction === 'downstream');
  }
}

/**
 * A gRPC message stream (one direction of one call) rewritten message by message: `push` a
 * DATA chunk, get the re-prefixed messages completed by it (possibly none); `end` checks that
 * no message was left incomplete.
 */
export class GrpcMessageStream {
  #pending: Uint8Array = new Uint8Array(0);

  constructor(
    private readonly rewrite: (message: Uint8Array) => Uint8Array,
    /** Largest message accepted (gRPC's default receive limit is 4 MiB). */
    private readonly maxMessageSize = 4 * 1024 * 1024,
  ) {}

  push(chunk: Uint8Array): Uint8Array[] {
    let buf = chunk;
    if (this.#pending.length > 0) {
      buf = new Uint8Array(this.#pending.length + chunk.length);
      buf.set(this.#pending);
      buf.set(chunk, this.#pending.length);
    }
    const out: Uint8Array[] = [];
    let pos = 0;
    while (buf.length - pos >= 5) {
      const flag = buf[pos] as number;
      const len =
        (buf[pos + 1] as number) * 2 ** 24 +
        (((buf[pos + 2] as number) << 16) | ((buf[pos + 3] as number) << 8) | (buf[pos + 4] as number));
      if (flag !== 0) {
        throw new PseudonymError(
          'ERR_PSEUDONYM_MESSAGE',
          flag === 1
            ? 'a compressed gRPC message (grpc-encoding) cannot be pseudonymized: disable compression on this route'
            : `bad gRPC message flag ${flag}`,
        );
      }
      if (len > this.maxMessageSize)
        throw new PseudonymError(
          'ERR_PSEUDONYM_MESSAGE',
          `a gRPC message of ${len} bytes exceeds ${this.maxMessageSize}`,
        );
      if (buf.length - pos - 5 < len) break;
      const message = this.rewrite(buf.subarray(pos + 5, pos + 5 + len));
      const framed = new Uint8Array(5 + message.length);
      framed[1] = (message.length >>> 24) & 0xff;
      framed[2] = (message.length >>> 16) & 0xff;
      framed[3] = (message.length >>> 8) & 0xff;
      framed[4] = message.length & 0xff;
      framed.set(message, 5);
      out.push(framed);
      pos += 5 + len;
    }
    this.#pending = buf.slice(pos);
    return out;
  }

  end(): void {
    if (this.#pending.length > 0)
      throw new PseudonymError(
        'ERR_PSEUDONYM_MESSAGE',
        `the stream ended inside a gRPC message (${this.#pending.length} bytes)`,
      );
  }
}
