// The connection context (issue 18: memory per idle keep-alive connection): the worker's
// HttpServer makes one per accepted connection and it lives as long as the connection, so it
// holds only the connection keys; the context layer forks it into a whole context per request.
import { describe, expect, it } from 'vitest';
import {
  CertifiedConnectionContext,
  ConnectionContext,
  CxSetStartedAt,
  connectionContext,
  ProxyContext,
} from './context.js';

const peer = { family: 'ipv4', address: '192.0.2.1', port: 40000 } as const;
const local = { family: 'ipv4', address: '127.0.0.1', port: 8080 } as const;
const socket = { localAddress: local };

describe('ConnectionContext', () => {
  it('has a slot per connection key only (4 of the schema 14: 56 B instead of 136 B on Node 20)', () => {
    expect(ConnectionContext.keys).toEqual(['peerAddr', 'socket', 'driver', 'server']);
    const cx = ConnectionContext.empty();
    expect(Object.getOwnPropertyNames(cx)).toHaveLength(4);
    expect(Object.getOwnPropertyNames(ProxyContext.empty())).toHaveLength(ProxyContext.keys.length);
    // Only connections whose client certificate is forwarded carry a slot for it.
    expect(() => (cx as ReturnType<typeof CertifiedConnectionContext.empty>).set('clientCert', 'x')).toThrow(
      expect.objectContaining({ code: 'ERR_CERTAIN_MAP_OUTSIDE_SUBSET' }),
    );
    expect(Object.getOwnPropertyNames(CertifiedConnectionContext.empty())).toHaveLength(5);
  });

  it('a certified connection context forks with its forwarded certificate', () => {
    const cx = CertifiedConnectionContext.empty()
      .set('peerAddr', peer)
      .set('socket', socket)
      .set('driver', 'uring')
      .set('server', { key: 's', scheme: 'https' })
      .set('clientCert', 'Hash=abc');
    const request = cx.fork().set('clientTarget', '/x');
    expect(request.constructor).toBe(ProxyContext.empty().constructor);
    expect(request.get('clientCert')).toBe('Hash=abc');
    expect(request.get('peerAddr')).toBe(peer);
  });

  it('forks into a whole context with the connection entries, as the context layer does per request', () => {
    const cx = ConnectionContext.empty()
      .set('peerAddr', peer)
      .set('socket', socket)
      .set('driver', 'uring')
      .set('server', { key: 's', scheme: 'http' });
    const request = cx.fork().set('clientTarget', '/x').set('startedAt', 1);
    expect(request.constructor).toBe(ProxyContext.empty().constructor);
    expect(request.get('peerAddr')).toBe(peer);
    expect(request.get('clientTarget')).toBe('/x');
    expect(request.has('clientCert')).toBe(false);
    // The connection context never holds a request key: a hook reading one finds it absent.
    expect(cx.maybeGet('request')).toBeUndefined();
    expect(() => (cx as typeof request).set('startedAt', 2)).toThrow(
      expect.objectContaining({ code: 'ERR_CERTAIN_MAP_OUTSIDE_SUBSET' }),
    );
  });

  it('connectionContext, the worker factory through writers, makes the subset the certificate calls for', () => {
    const server = { key: 's', scheme: 'http' } as const;
    const plain = connectionContext(peer, socket, 'uring', server, undefined);
    expect(plain.constructor).toBe(ConnectionContext.empty().constructor);
    expect(Object.getOwnPropertyNames(plain)).toHaveLength(4);
    expect(plain.toJSON()).toEqual({ peerAddr: peer, socket, driver: 'uring', server });
    expect(plain.has('clientCert')).toBe(false);
    // A request key written to it (through a cast) throws, as `set` does: no property is added.
    expect(() => CxSetStartedAt.set(plain, 1)).toThrow(
      expect.objectContaining({ code: 'ERR_CERTAIN_MAP_OUTSIDE_SUBSET', key: 'startedAt' }),
    );
    const certified = connectionContext(peer, socket, 'legacy', server, 'Hash=abc');
    expect(certified.constructor).toBe(CertifiedConnectionContext.empty().constructor);
    expect(certified.maybeGet('clientCert')).toBe('Hash=abc');
    expect(certified.get('driver')).toBe('legacy');
    expect(certified.fork().maybeGet('clientCert')).toBe('Hash=abc');
  });
});
