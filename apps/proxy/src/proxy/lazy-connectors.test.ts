/**
 * The lazily imported upstream connectors (lazy-connectors.ts) when their import fails: the
 * exchange that needed them fails as a connect failure (502, with the import's error as its
 * cause, through the request's own error hook), the worker goes on, and plain http endpoints
 * never wait for an import. A real TLS or HTTP/2 upstream through them is e2e's (https and
 * http2 upstream tests); here the import itself is made to fail (a mock: no real peer can).
 */
import { createRequest } from '@loch/http';
import { ConnectError, type Connector, endpoint } from '@loch/transports';
import type { ByteStream } from '@loch/uring-runtime';
import { describe, expect, it, vi } from 'vitest';
import { isH2NotNegotiated, LazyH2Connector, LazyTlsConnector } from './lazy-connectors.js';

vi.mock('@loch/transports/tls', () => {
  throw new Error('tls code missing');
});
vi.mock('@loch/transports/h2', () => {
  throw new Error('h2 code missing');
});

/** An L4 connector that hands out one stand-in stream per connect and counts them. */
function countingL4(): Connector<ReturnType<typeof endpoint>, ByteStream> & { connects: number } {
  const l4 = {
    connects: 0,
    connect(): Promise<ByteStream> {
      l4.connects++;
      return Promise.resolve({ close: () => Promise.resolve() } as unknown as ByteStream);
    },
  };
  return l4;
}

const plain = endpoint('http://127.0.0.1:1');
const secure = endpoint('https://127.0.0.1:1');

describe('LazyTlsConnector', () => {
  it('passes an http endpoint to the inner connector as it is (no import, no promise of its own)', () => {
    const inner = countingL4();
    const pending = Promise.resolve({} as ByteStream);
    inner.connect = () => pending;
    expect(new LazyTlsConnector(inner).connect(plain)).toBe(pending);
  });

  it('fails an https connect whose TLS code cannot load as ERR_TRANSPORT_TLS_FAILED (502), each time', async () => {
    const inner = countingL4();
    const tls = new LazyTlsConnector(inner);
    for (let i = 0; i < 2; i++) {
      const error = await tls.connect(secure).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConnectError);
      expect(error).toMatchObject({ code: 'ERR_TRANSPORT_TLS_FAILED', status: 502 });
      expect((error as Error).message).toMatch(/cannot load the TLS code/);
    }
    expect(inner.connects).toBe(0);
  });
});

describe('LazyH2Connector', () => {
  it("fails a request whose HTTP/2 code cannot load as a 502 connect failure, through the request's onError", async () => {
    const h2 = new LazyH2Connector(countingL4());
    const seen: unknown[] = [];
    const error = await h2
      .request(plain, createRequest('GET', '/'), {
        onError: (e) => {
          seen.push(e);
          return new Error('mapped', { cause: e });
        },
      })
      .catch((e: unknown) => e);
    expect((error as Error).message).toBe('mapped');
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ code: 'ERR_TRANSPORT_CONNECT_FAILED', status: 502 });
    h2.close();
  });

  it('does not take an error for the ALPN refusal while the HTTP/2 code is not loaded', () => {
    expect(isH2NotNegotiated(new Error('x'))).toBe(false);
  });
});
