/**
 * The HTTP/1.1 response writer: a response head and its streamed body onto a connection, with
 * the framing the body implies (Content-Length, chunked, or close-delimited), coalescing the
 * first chunk behind the head when it is at hand. The connection (h1/server-connection.ts) owns
 * the write in flight and its deadline; this file only decides what goes out in which write.
 * Fixed-size answers (head and body in one buffer) are written by the connection itself.
 */
import { type HttpBody, nextNow } from '../body.js';
import { HttpBodyError } from '../errors.js';
import { typedArraySet } from '../internal/typed-array-methods.js';
import { MAX_LENT } from '../internal/write-slab.js';
import type { HttpRequest, HttpResponse } from '../message.js';
import {
  CHUNK_END,
  chunkHeader,
  encodeResponseHeadTo,
  type HeadLender,
  lastChunk,
  type ResponseHeadOptions,
} from './encoder.js';

/**
 * writeStreamBody's answer when the response's last write is in flight and the body's end is
 * still to be seen: the connection's onWritten looks at it (deferTail), then resumes its request
 * loop, which returns meanwhile.
 */
export const DEFERRED = Symbol('deferred');

/**
 * A first body chunk up to this size is copied behind the head (one buffer, a piece of the write
 * slab); larger ones go as a writev of [head, chunk]. The bound keeps head and chunk within one
 * lent piece (MAX_LENT) for heads up to 512 B (a proxied answer's is ~250 B; a larger one gets a
 * buffer of its own from lend, still one write).
 */
const COALESCE_BYTES = MAX_LENT - 512;

/**
 * What the writer needs from its connection. The head (with a first chunk copied behind it) is
 * encoded into memory the connection lends (HeadLender: a piece of its thread's write slab,
 * given back once the write it goes out in completed), and handed to the next write.
 */
export interface ResponseSink extends HeadLender {
  /** Starts one write under the write deadline, not waited for (no write may be in flight). */
  startWrite(out: Uint8Array | Uint8Array[]): void;
  /**
   * The last write is in flight with the body's end unseen: look at it once the write is done
   * (and tell its end: bodyEnded).
   */
  deferTail(it: AsyncIterator<Uint8Array>, body: HttpBody, req: HttpRequest | null, res: HttpResponse): void;
  /** One write, waited for (after the write in flight, if any). */
  send(out: Uint8Array | Uint8Array[]): Promise<void>;
  /**
   * The writer is done with `res`'s body (`req`'s answer; null: the server's own): `bytes` taken
   * from it, `error` set when it did not end cleanly (HttpServerOptions.onBodyEnd). Called once
   * per body by whichever path ends it; never throws.
   */
  bodyEnded(req: HttpRequest | null, res: HttpResponse, bytes: number, error: unknown): void;
}

/**
 * Sends a head and a streamed body. A chunk already at hand when the head is ready (the usual
 * case for a proxied answer that arrived in one read) goes out with the head in one write: up
 * to COALESCE_BYTES it is copied behind the head (one buffer, the head encoded straight into
 * it), above as a writev. When that copied chunk completes the body and the end is at hand too,
 * the one write is left in flight (startWrite) and the result is null: nothing to wait for.
 * Otherwise the rest runs in writeStreamRest. Steps the body can take without waiting skip the
 * promise of `next()`. The head is encoded before any wait (`o` is the server's shared options
 * object). Owns the body: every abrupt exit returns its iterator, and every end of it (the one
 * write, a DEFERRED tail, writeStreamRest, a failure) is told to the sink once (bodyEnded).
 */
export function writeStreamBody(
  conn: ResponseSink,
  req: HttpRequest | null,
  res: HttpResponse,
  o: ResponseHeadOptions,
  body: HttpBody,
  framing: 'length' | 'chunked' | 'eof',
  mayDefer: boolean,
): Promise<void> | null | typeof DEFERRED {
  const it = body[Symbol.asyncIterator]();
  let r: IteratorResult<Uint8Array> | null;
  let out: Uint8Array | Uint8Array[];
  let sent = 0;
  try {
    r = nextNow(it);
    if (r === null || r.done || r.value.length === 0) {
      out = encodeResponseHeadTo(conn, res.status, res.reason, res.headers, o);
    } else {
      const chunk = r.value;
      sent = chunk.length;
      // The step is taken: the chunk goes out with the head (or fails the length below).
      r = null;
      if (framing === 'length' && sent > body.length) {
        out = encodeResponseHeadTo(conn, res.status, res.reason, res.headers, o);
      } else if (sent > COALESCE_BYTES) {
        const head = encodeResponseHeadTo(conn, res.status, res.reason, res.headers, o);
        out = framing === 'chunked' ? [head, chunkHeader(sent), chunk, CHUNK_END] : [head, chunk];
        if (mayDefer && framing === 'length' && sent === body.length) {
          // Likely the whole body; the chunk is lent to the write, so its end is looked at only
          // once the write is done (onWritten), and the request loop resumes from there.
          conn.startWrite(out);
          conn.deferTail(it, body, req, res);
          return DEFERRED;
        }
      } else {
        if (framing === 'chunked') {
          const size = chunkHeader(sent);
          const b = encodeResponseHeadTo(
            conn,
            res.status,
            res.reason,
            res.headers,
            o,
            size.length + sent + 2,
          );
          let pos = b.length - (size.length + sent + 2);
          typedArraySet.call(b, size, pos);
          pos += size.length;
          typedArraySet.call(b, chunk, pos);
          pos += sent;
          b[pos] = 0x0d;
          b[pos + 1] = 0x0a;
          out = b;
        } else {
          const b = encodeResponseHeadTo(conn, res.status, res.reason, res.headers, o, sent);
          typedArraySet.call(b, chunk, b.length - sent);
          out = b;
        }
        // The chunk is copied: the body may move on before the write. When it is complete and
        // its end is at hand, this is the response's only write.
        if (framing === 'chunked' || (framing === 'length' && sent === body.length)) {
          try {
            r = nextNow(it);
          } catch (e) {
            // The chunk in hand was valid: it goes out, then the connection is cut.
            returnIterator(it);
            conn.bodyEnded(req, res, sent, e);
            return sendThenFail(conn, out, e);
          }
          if (r?.done) {
            conn.startWrite(framing === 'chunked' ? [out, lastChunk(body.trailers)] : out);
            conn.bodyEnded(req, res, sent, null);
            return null;
          }
        }
      }
    }
  } catch (e) {
    returnIterator(it);
    conn.bodyEnded(req, res, sent, e);
    throw e;
  }
  return writeStreamRest(conn, req, res, it, r, out, sent, body, framing);
}

/**
 * The waiting part of writeStreamBody: `out` goes first (null: already out), `r` is a step already
 * taken (or null), `sent` the body's bytes taken before. Tells the sink the body's end (bodyEnded).
 */
export async function writeStreamRest(
  conn: ResponseSink,
  req: HttpRequest | null,
  res: HttpResponse,
  it: AsyncIterator<Uint8Array>,
  r: IteratorResult<Uint8Array> | null,
  out: Uint8Array | Uint8Array[] | null,
  sent: number,
  body: HttpBody,
  framing: 'length' | 'chunked' | 'eof',
): Promise<void> {
  let ok = false;
  try {
    if (out !== null) await conn.send(out);
    if (framing === 'length' && sent > body.length) {
      throw new HttpBodyError(
        'ERR_HTTP_BODY_LENGTH_MISMATCH',
        `body announced ${body.length} bytes, produced ${sent}`,
      );
    }
    for (;;) {
      if (r === null) {
        r = nextNow(it);
        if (r === null) r = await it.next();
      }
      if (r.done) break;
      const chunk = r.value;
      r = null;
      if (framing === 'chunked') {
        if (chunk.length === 0) continue;
        sent += chunk.length;
        await conn.send([chunkHeader(chunk.length), chunk, CHUNK_END]);
        continue;
      }
      sent += chunk.length;
      if (framing === 'length' && sent > body.length) break;
      await conn.send(chunk);
    }
    ok = true;
    if (framing === 'chunked') await conn.send(lastChunk(body.trailers));
    else if (framing === 'length' && sent !== body.length) {
      throw new HttpBodyError(
        'ERR_HTTP_BODY_LENGTH_MISMATCH',
        `body announced ${body.length} bytes, produced ${sent}`,
      );
    }
  } catch (e) {
    conn.bodyEnded(req, res, sent, e);
    throw e;
  } finally {
    if (!ok) {
      // Stopped early (a failed write, too many bytes): let the source go, as for-await would.
      try {
        await it.return?.();
      } catch {
        // its own failure changes nothing
      }
    }
  }
  conn.bodyEnded(req, res, sent, null);
}

/** Writes what a failed body produced before failing, then fails with `e` (the connection is cut). */
async function sendThenFail(conn: ResponseSink, out: Uint8Array, e: unknown): Promise<void> {
  await conn.send(out);
  throw e;
}

/** Lets an iterator's source go without waiting (an abrupt exit before any wait). */
export function returnIterator(it: AsyncIterator<Uint8Array>): void {
  try {
    const p = it.return?.();
    if (p !== undefined) p.then(undefined, () => {});
  } catch {
    // its own failure changes nothing
  }
}
