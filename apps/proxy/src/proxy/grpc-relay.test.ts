import {
  createResponse,
  Http2SessionError,
  Http2StreamResetError,
  type HttpBody,
  HttpConnectionError,
  HttpTimeoutError,
  streamBody,
} from '@loch/http';
import { AbortedError, ReadError } from '@loch/transports';
import { describe, expect, it } from 'vitest';
import { GrpcRelayBody, GrpcStatus, grpcFailureAfterHead, relayGrpcResponse } from './grpc-status.js';

const READ = { name: 'upstream_read', ms: 800 };

/** A gRPC message: flag 0, 32-bit big-endian length, `n` payload bytes. */
function message(n: number): Uint8Array {
  const m = new Uint8Array(5 + n);
  new DataView(m.buffer).setUint32(1, n);
  m.fill(0x61, 5);
  return m;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The bytes in chunks of the given sizes. */
function split(bytes: Uint8Array, sizes: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  for (const s of sizes) {
    out.push(bytes.subarray(at, at + s));
    at += s;
  }
  if (at < bytes.length) out.push(bytes.subarray(at));
  return out;
}

/** A stream body yielding `chunks`, then failing with `error`. */
function failingAfter(chunks: Uint8Array[], error: unknown): HttpBody {
  return streamBody(
    (async function* () {
      for (const c of chunks) yield c;
      throw error;
    })(),
  );
}

const readTimeout = () =>
  new ReadError('ERR_TRANSPORT_READ_TIMEOUT', 'body', 'read timed out waiting for the body', {
    cause: new HttpTimeoutError('body', 800),
  });
const readFailed = (cause: unknown) =>
  new ReadError('ERR_TRANSPORT_READ_FAILED', 'body', 'HTTP/2 exchange failed', { cause });

/** Reads a body to its end: the bytes, or the error it threw. */
async function drain(body: HttpBody): Promise<{ bytes: number; error: unknown }> {
  let bytes = 0;
  try {
    for await (const c of body) bytes += c.length;
  } catch (error) {
    return { bytes, error };
  }
  return { bytes, error: null };
}

describe('GrpcRelayBody', () => {
  it('ends with grpc-status 4 trailers when a read timeout comes between two messages, however the chunks split them', async () => {
    const bytes = concat(message(0), message(3), message(300));
    for (const sizes of [[bytes.length], [1, 1, 1, 1, 1, 1], [3, 4, 5], [5, 3, 2, 9]]) {
      const body = new GrpcRelayBody(failingAfter(split(bytes, sizes), readTimeout()), READ);
      const { bytes: n, error } = await drain(body);
      expect(error, String(sizes)).toBeNull();
      expect(n).toBe(bytes.length);
      expect(body.trailers?.get('grpc-status')).toBe('4');
      expect(body.trailers?.get('grpc-message')).toContain('upstream_read (800 ms)');
      // Ended: a further read is the end again.
      expect((await body.next()).done).toBe(true);
    }
  });

  it('rethrows the failure mid-message (prefix or payload begun), where trailers would truncate a message', async () => {
    const bytes = concat(message(2), message(10));
    for (const cut of [8, 9, 11, 12, 14, bytes.length - 1]) {
      const error = readTimeout();
      const body = new GrpcRelayBody(failingAfter([bytes.subarray(0, cut)], error), READ);
      expect((await drain(body)).error, `cut at ${cut}`).toBe(error);
      expect(body.trailers).toBeNull();
    }
  });

  it('maps the failure: upstream RST_STREAM codes as gRPC does, a lost connection UNAVAILABLE', async () => {
    const rst = (code: number) => readFailed(new Http2StreamResetError(1, code, 'peer'));
    const cases: [unknown, number][] = [
      [readTimeout(), GrpcStatus.DEADLINE_EXCEEDED],
      [rst(0x2), GrpcStatus.INTERNAL],
      [rst(0x0), GrpcStatus.INTERNAL],
      [rst(0x8), GrpcStatus.CANCELLED],
      [rst(0x7), GrpcStatus.UNAVAILABLE],
      [rst(0xb), GrpcStatus.RESOURCE_EXHAUSTED],
      [rst(0xc), GrpcStatus.PERMISSION_DENIED],
      [readFailed(new HttpConnectionError('ERR_HTTP_CONNECTION_CLOSED', 'closed')), GrpcStatus.UNAVAILABLE],
      [readFailed(new Http2SessionError(0x2, 'server', 'GOAWAY')), GrpcStatus.UNAVAILABLE],
      [readFailed(Object.assign(new Error('reset'), { code: 'ECONNRESET' })), GrpcStatus.UNAVAILABLE],
      // This client reset the stream for a rule the upstream broke.
      [readFailed(new Http2StreamResetError(1, 0x1, 'server')), GrpcStatus.INTERNAL],
      [new Error('something else'), GrpcStatus.INTERNAL],
    ];
    for (const [error, status] of cases) {
      expect(grpcFailureAfterHead(error, READ)?.status, String((error as Error).message)).toBe(status);
      const body = new GrpcRelayBody(failingAfter([message(1)], error), READ);
      expect((await drain(body)).error).toBeNull();
      expect(body.trailers?.get('grpc-status')).toBe(String(status));
    }
    // Names the code, percent-encoded where needed.
    expect(grpcFailureAfterHead(rst(0x2), READ)?.message).toContain('INTERNAL_ERROR');
  });

  it("rethrows a failure that is the client's own (aborted exchange)", async () => {
    const error = new AbortedError('ERR_TRANSPORT_ABORTED', 'body', 'exchange aborted');
    const body = new GrpcRelayBody(failingAfter([message(1)], error), READ);
    expect((await drain(body)).error).toBe(error);
  });

  it('passes the upstream trailers and every chunk through untouched when nothing fails', async () => {
    const chunks = [message(4), message(0)];
    const source = streamBody(chunks);
    const body = new GrpcRelayBody(source, READ);
    const seen: Uint8Array[] = [];
    for await (const c of body) seen.push(c);
    expect(seen).toEqual(chunks);
    expect(seen[0]).toBe(chunks[0]);
    expect(body.trailers).toBe(source.trailers);
  });

  it('takes steps without waiting where its source can (nextNow), watching those too', () => {
    const body = new GrpcRelayBody(streamBody([message(2)]), READ);
    const it = body[Symbol.asyncIterator]() as GrpcRelayBody;
    const r = it.nextNow();
    if (r !== null) {
      expect(r.done).toBe(false);
      expect(body.atBoundary).toBe(true);
    }
  });
});

describe('relayGrpcResponse', () => {
  const answer = (status: number, type: string | undefined, body: HttpBody) =>
    createResponse(status, { headers: type === undefined ? [] : [['content-type', type]], body });

  it('watches a 200 gRPC answer with a streamed body only', () => {
    expect(relayGrpcResponse(answer(200, 'application/grpc', streamBody([])), READ).body).toBeInstanceOf(
      GrpcRelayBody,
    );
    expect(
      relayGrpcResponse(answer(200, 'application/grpc+proto', streamBody([])), READ).body,
    ).toBeInstanceOf(GrpcRelayBody);
    for (const res of [
      answer(503, 'application/grpc', streamBody([])),
      answer(200, 'text/html', streamBody([])),
      answer(200, 'application/grpc-web', streamBody([])),
      answer(200, undefined, streamBody([])),
      answer(200, 'application/grpc', streamBody([], { length: 5 })),
    ]) {
      const body = res.body;
      expect(relayGrpcResponse(res, READ).body).toBe(body);
    }
  });
});
