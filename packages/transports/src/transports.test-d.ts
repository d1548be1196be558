import type { HttpStream } from '@loch/http';
import type { ByteStream } from '@loch/uring-runtime';
import { describe, expectTypeOf, it } from 'vitest';
import {
  type ConnectOptions,
  type Connector,
  TcpConnector,
  UnifiedL4Connector,
  UnixConnector,
} from './connector.js';
import type { HttpConnection } from './http-connection.js';
import { HttpConnector } from './http-connector.js';
import type { Endpoint } from './key.js';

/** A TLS connector as the TLS issue will add it: wraps any L4 connector, reads sni/alpn from the key. */
class FakeTlsConnector<K extends Endpoint> implements Connector<K, ByteStream> {
  constructor(readonly inner: Connector<K, ByteStream>) {}
  async connect(key: K, options?: ConnectOptions): Promise<ByteStream> {
    const stream = await this.inner.connect(key, options);
    void key.tls?.serverName;
    void key.tls?.alpn;
    return stream;
  }
}

describe('connector stacking', () => {
  it('HttpConnector takes any L4 connector of Endpoint keys, and a TLS layer between them', () => {
    new HttpConnector(new UnifiedL4Connector());
    new HttpConnector(new TcpConnector());
    new HttpConnector(new UnixConnector());
    const https = new HttpConnector(new FakeTlsConnector(new UnifiedL4Connector()));
    expectTypeOf(https.connect).returns.resolves.toEqualTypeOf<HttpConnection<Endpoint>>();
    expectTypeOf<ByteStream>().toExtend<HttpStream>();
  });

  it('HttpConnector is itself a Connector, so it stacks too', () => {
    expectTypeOf<HttpConnector>().toExtend<Connector<Endpoint, HttpConnection>>();
  });

  it('keys carry what later connectors need', () => {
    expectTypeOf<Endpoint['tls']>().toEqualTypeOf<
      | {
          readonly serverName: string;
          readonly alpn: readonly string[];
          readonly verify: boolean;
          readonly ca: string;
        }
      | undefined
    >();
    // @ts-expect-error an L4 connector of another key type does not fit
    new HttpConnector<Endpoint>({ connect: async (_k: { port: string }) => ({}) as ByteStream });
  });
});
