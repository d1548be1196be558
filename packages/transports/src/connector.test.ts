import { type ByteStream, RuntimeError } from '@loch/uring-runtime';
import { describe, expect, it } from 'vitest';
import {
  type ConnectOptions,
  type Connector,
  connectError,
  TcpConnector,
  UnifiedL4Connector,
  UnixConnector,
} from './connector.js';
import { AbortedError, ConnectError, InvalidAddressError } from './errors.js';
import { endpoint } from './key.js';

class Recorder<K> implements Connector<K, ByteStream> {
  readonly calls: [K, ConnectOptions | undefined][] = [];
  readonly stream = {} as ByteStream;
  async connect(key: K, options?: ConnectOptions): Promise<ByteStream> {
    this.calls.push([key, options]);
    return this.stream;
  }
}

describe('connectError', () => {
  it('maps refused to 502, timeout to 504, other errnos to 502, and aborts', () => {
    const refused = connectError(new RuntimeError('ECONNREFUSED', 'connect'), 'h:1', undefined);
    expect(refused).toBeInstanceOf(ConnectError);
    expect(refused).toMatchObject({
      code: 'ERR_TRANSPORT_CONNECT_REFUSED',
      status: 502,
      phase: 'connect',
      address: 'h:1',
    });
    expect(refused.cause).toBeInstanceOf(RuntimeError);
    expect(connectError(new RuntimeError('ETIMEDOUT', 'connect'), 'h:1', undefined)).toMatchObject({
      code: 'ERR_TRANSPORT_CONNECT_TIMEOUT',
      status: 504,
    });
    expect(connectError(new RuntimeError('ENOENT', 'connect'), 'unix:/x', undefined)).toMatchObject({
      code: 'ERR_TRANSPORT_CONNECT_FAILED',
      status: 502,
    });
    const aborted = connectError(new RuntimeError('ECANCELED', 'connect'), 'h:1', AbortSignal.abort('why'));
    expect(aborted).toBeInstanceOf(AbortedError);
    expect(aborted.cause).toBe('why');
  });
});

describe('UnifiedL4Connector', () => {
  it('routes by the key address to the TCP or Unix connector it is built from', async () => {
    const tcp = new Recorder<{ host: string; port: number }>();
    const unix = new Recorder<{ path: string }>();
    const l4 = new UnifiedL4Connector({ tcpConnector: tcp, unixConnector: unix });
    const signal = new AbortController().signal;
    expect(await l4.connect(endpoint('http://10.0.0.1:81'), { signal, timeout: 5 })).toBe(tcp.stream);
    expect(await l4.connect(endpoint('unix:/s.sock'))).toBe(unix.stream);
    expect(tcp.calls[0]![0]).toMatchObject({ host: '10.0.0.1', port: 81 });
    expect(tcp.calls[0]![1]).toEqual({ signal, timeout: 5 });
    expect(unix.calls[0]![0]).toMatchObject({ path: '/s.sock' });
  });

  it('takes URLs, address strings and L4Address objects as well', async () => {
    const tcp = new Recorder<{ host: string; port: number }>();
    const unix = new Recorder<{ path: string }>();
    const l4 = new UnifiedL4Connector({ tcpConnector: tcp, unixConnector: unix });
    await l4.connect('http://127.0.0.1:8080/x');
    await l4.connect('https://example.com');
    await l4.connect('[::1]:9');
    await l4.connect('tcp://h:7');
    await l4.connect({ kind: 'tcp', host: 'h', port: 6 });
    await l4.connect('unix:/a.sock');
    await l4.connect('/b.sock');
    await l4.connect('http://unix:/c.sock:/');
    expect(tcp.calls.map(([k]) => `${k.host}:${k.port}`)).toEqual([
      '127.0.0.1:8080',
      'example.com:443',
      '::1:9',
      'h:7',
      'h:6',
    ]);
    expect(unix.calls.map(([k]) => k.path)).toEqual(['/a.sock', '/b.sock', '/c.sock']);
    await expect(l4.connect('ftp://x')).rejects.toBeInstanceOf(InvalidAddressError);
    await expect(l4.connect('nonsense')).rejects.toBeInstanceOf(InvalidAddressError);
  });

  it('TCP and Unix connectors refuse a key of the other kind, and a pre-aborted signal', async () => {
    await expect(new TcpConnector().connect(endpoint('unix:/s.sock'))).rejects.toBeInstanceOf(
      InvalidAddressError,
    );
    await expect(new UnixConnector().connect(endpoint('http://h:1'))).rejects.toBeInstanceOf(
      InvalidAddressError,
    );
    await expect(
      new TcpConnector().connect({ host: '127.0.0.1', port: 1 }, { signal: AbortSignal.abort() }),
    ).rejects.toBeInstanceOf(AbortedError);
  });
});
