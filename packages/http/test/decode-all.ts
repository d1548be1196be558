/**
 * Test support: drives a decoder over a whole input split into pieces and collects every
 * message (head, body bytes, trailers) or the error. Not used by the package itself.
 */

import type { HttpParseError } from '../src/errors.js';
import {
  DecodeEvent,
  RequestDecoder,
  type RequestDecoderOptions,
  ResponseDecoder,
} from '../src/h1/decoder.js';

export interface Decoded {
  head: {
    method?: string;
    target?: string;
    status?: number;
    reason?: string;
    version: string;
    headers: [string, string][];
  };
  body: string;
  trailers: [string, string][] | null;
  framing: string;
  keepAlive: boolean;
}

export interface DecodeResult {
  messages: Decoded[];
  error: HttpParseError | null;
  /** True when the input ended inside a message (no error thrown because finish() was not called). */
  partial: boolean;
}

const latin1 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

/** Splits `input` at the given cut points (sorted, unique, inside the input). */
export function split(input: Uint8Array, cuts: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const c of [...cuts, input.length]) {
    if (c <= prev || c > input.length) continue;
    // copy each piece so views into it cannot alias other pieces
    out.push(input.slice(prev, c));
    prev = c;
  }
  if (prev < input.length) out.push(input.slice(prev));
  return out;
}

export function decode(
  kind: 'request' | 'response',
  pieces: Uint8Array[] | string,
  opts: {
    limits?: RequestDecoderOptions;
    eof?: boolean;
    /** Method of the request every response answers. */
    method?: string;
    /** Methods of the requests the final (non-1xx) responses answer, in order; then `method`. */
    methods?: readonly string[];
  } = {},
): DecodeResult {
  const list = typeof pieces === 'string' ? [Buffer.from(pieces, 'latin1')] : pieces;
  const d = kind === 'request' ? new RequestDecoder(opts.limits) : new ResponseDecoder(opts.limits);
  let finals = 0;
  const expectNext = () => {
    const m = opts.methods?.[finals] ?? opts.method;
    if (d instanceof ResponseDecoder) d.expectResponseTo(m ?? 'GET');
  };
  expectNext();
  const messages: Decoded[] = [];
  let cur: Decoded | null = null;
  let body: string[] = [];
  const onEvent = (ev: number): boolean => {
    if (ev === DecodeEvent.Head) {
      const m = d.message as unknown as Record<string, unknown> & {
        headers: Iterable<[string, string]>;
        version: string;
      };
      cur = {
        head: {
          ...(m.method !== undefined ? { method: m.method as string, target: m.target as string } : {}),
          ...(m.status !== undefined ? { status: m.status as number, reason: m.reason as string } : {}),
          version: m.version,
          headers: [...m.headers],
        },
        body: '',
        trailers: null,
        framing: d.framing,
        keepAlive: d.keepAlive,
      };
      body = [];
    } else if (ev === DecodeEvent.Data) {
      body.push(latin1(d.data));
    } else if (ev === DecodeEvent.End) {
      cur!.body = body.join('');
      cur!.trailers = d.trailers ? [...d.trailers] : null;
      messages.push(cur!);
      // An interim (1xx) response answers the same request as the next one.
      if ((cur!.head.status ?? 200) >= 200) {
        finals++;
        expectNext();
      }
      cur = null;
    } else return false;
    return true;
  };
  try {
    for (const piece of list) {
      d.feed(piece);
      while (onEvent(d.poll()));
    }
    if (opts.eof) onEvent(d.finish());
  } catch (e) {
    if ((e as { name?: string }).name === 'HttpParseError')
      return { messages, error: e as HttpParseError, partial: false };
    throw e;
  }
  return { messages, error: null, partial: cur !== null || !d.idle };
}
