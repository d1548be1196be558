import { createRequest, HttpHeaders } from '@loch/http';
import { describe, expect, it } from 'vitest';
import {
  GrpcStatus,
  grpcErrorResponse,
  grpcStatusOf,
  grpcTimeoutMs,
  isGrpcRequest,
  percentEncodeGrpcMessage,
} from './grpc-status.js';

const withType = (type?: string) =>
  createRequest('POST', '/pkg.Svc/Call', {
    headers: type === undefined ? [] : [['content-type', type]],
  });

describe('isGrpcRequest', () => {
  it('takes application/grpc alone, with a codec suffix or parameters, in any case', () => {
    for (const t of [
      'application/grpc',
      'application/grpc+proto',
      'application/grpc+json',
      'Application/GRPC',
      'application/grpc; charset=utf-8',
      'application/grpc;x=1',
    ]) {
      expect(isGrpcRequest(withType(t)), t).toBe(true);
    }
  });

  it('refuses gRPC-Web, look-alikes and requests without a content-type', () => {
    for (const t of [
      undefined,
      '',
      'application/grp',
      'application/grpc-web',
      'application/grpcx',
      'text/plain',
    ]) {
      expect(isGrpcRequest(withType(t)), String(t)).toBe(false);
    }
  });
});

describe('grpcStatusOf', () => {
  it("maps loch's codes as Envoy maps its local replies", () => {
    expect(grpcStatusOf(404, 'ERR_LOCH_NO_ROUTE')).toBe(GrpcStatus.UNIMPLEMENTED);
    expect(grpcStatusOf(502, 'ERR_LOCH_UPSTREAM_REFUSED')).toBe(GrpcStatus.UNAVAILABLE);
    expect(grpcStatusOf(502, 'ERR_LOCH_UPSTREAM_RESET')).toBe(GrpcStatus.UNAVAILABLE);
    expect(grpcStatusOf(504, 'ERR_LOCH_UPSTREAM_CONNECT_TIMEOUT')).toBe(GrpcStatus.UNAVAILABLE);
    expect(grpcStatusOf(504, 'ERR_LOCH_UPSTREAM_TIMEOUT')).toBe(GrpcStatus.DEADLINE_EXCEEDED);
    expect(grpcStatusOf(413, 'ERR_HTTP_BODY_TOO_LARGE')).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
    expect(grpcStatusOf(502, 'ERR_LOCH_UPSTREAM_PROTOCOL')).toBe(GrpcStatus.UNAVAILABLE);
    expect(grpcStatusOf(503, 'ERR_SOMETHING')).toBe(GrpcStatus.UNAVAILABLE);
    expect(grpcStatusOf(431, 'ERR_HTTP_HEADERS_TOO_LARGE')).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
    expect(grpcStatusOf(401, 'X')).toBe(GrpcStatus.UNAUTHENTICATED);
    expect(grpcStatusOf(403, 'X')).toBe(GrpcStatus.PERMISSION_DENIED);
  });

  it('answers INTERNAL for anything else', () => {
    expect(grpcStatusOf(500, 'ERR_LOCH_INTERNAL')).toBe(GrpcStatus.INTERNAL);
    expect(grpcStatusOf(400, 'ERR_LOCH_BAD_PATH')).toBe(GrpcStatus.INTERNAL);
    expect(grpcStatusOf(405, 'ERR_LOCH_METHOD_NOT_ALLOWED')).toBe(GrpcStatus.INTERNAL);
  });
});

describe('percentEncodeGrpcMessage', () => {
  it('keeps printable ASCII and encodes %, controls and UTF-8 bytes', () => {
    expect(percentEncodeGrpcMessage('504 ERR_LOCH_UPSTREAM_TIMEOUT')).toBe('504 ERR_LOCH_UPSTREAM_TIMEOUT');
    expect(percentEncodeGrpcMessage('100%')).toBe('100%25');
    expect(percentEncodeGrpcMessage('a\r\nb')).toBe('a%0D%0Ab');
    expect(percentEncodeGrpcMessage('caf\u00e9 \u2713')).toBe('caf%C3%A9 %E2%9C%93');
    expect(decodeURIComponent(percentEncodeGrpcMessage('x%y \u00e9\n'))).toBe('x%y \u00e9\n');
  });
});

describe('grpcErrorResponse', () => {
  it('is a trailers-only answer: 200, application/grpc, grpc-status and grpc-message, no body', () => {
    const res = grpcErrorResponse(504, 'ERR_LOCH_UPSTREAM_TIMEOUT', '504 ERR_LOCH_UPSTREAM_TIMEOUT');
    expect(res.status).toBe(200);
    expect(res.body.kind).toBe('empty');
    expect(res.headers).toBeInstanceOf(HttpHeaders);
    expect([...res.headers]).toEqual([
      ['content-type', 'application/grpc'],
      ['grpc-status', '4'],
      ['grpc-message', '504 ERR_LOCH_UPSTREAM_TIMEOUT'],
    ]);
  });
});

describe('grpcTimeoutMs', () => {
  it('reads 1 to 8 digits and a case-sensitive unit, rounding up to whole ms', () => {
    expect(grpcTimeoutMs('1H')).toBe(3_600_000);
    expect(grpcTimeoutMs('2M')).toBe(120_000);
    expect(grpcTimeoutMs('3S')).toBe(3000);
    expect(grpcTimeoutMs('250m')).toBe(250);
    expect(grpcTimeoutMs('1500u')).toBe(2);
    expect(grpcTimeoutMs('99999999n')).toBe(100);
    expect(grpcTimeoutMs('00000300m')).toBe(300);
  });

  it('a zero or sub-millisecond deadline is 1 ms, never 0 (which would mean no timeout)', () => {
    expect(grpcTimeoutMs('0m')).toBe(1);
    expect(grpcTimeoutMs('1n')).toBe(1);
  });

  it('ignores absent and malformed values', () => {
    for (const v of [
      undefined,
      '',
      'm',
      '5',
      '123456789m',
      '5s',
      '5x',
      '-5m',
      '5 m',
      ' 5m',
      '5.5S',
      '5mm',
      'abcm',
    ]) {
      expect(grpcTimeoutMs(v), String(v)).toBeUndefined();
    }
  });
});
