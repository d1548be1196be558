import * as net from 'node:net';
import { createRequest, createResponse, HttpParseError, streamBody } from '@loch/http';
import type { Endpoint, HttpConnector, RequestOptions } from '@loch/transports';
import { afterEach, describe, expect, it } from 'vitest';
import { ProxyContext } from './context.js';
import { compileRoutes } from './route.js';
import { newUpstreamConnector, UpstreamService, UpstreamStreams } from './upstream.js';

const servers: net.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

/** An upstream that reads requests and never answers. */
async function silentUpstream(): Promise<{ port: number; sockets: Set<net.Socket> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.resume();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return { port: (server.address() as net.AddressInfo).port, sockets };
}

describe('UpstreamService', () => {
  it('answers with the client’s own body error at once when the client goes away mid-upload', async () => {
    const upstream = await silentUpstream();
    const router = compileRoutes([
      {
        path: '/',
        host: undefined,
        loadBalancer: 'first',
        stripPrefix: undefined,
        hostHeader: 'preserve',
        upstreams: [
          {
            address: {
              kind: 'tcp',
              host: '127.0.0.1',
              port: upstream.port,
              scheme: 'http',
              authority: `127.0.0.1:${upstream.port}`,
            },
            weight: 1,
            label: 'silent',
          },
        ],
      },
    ]);
    const gone = new HttpParseError(
      'ERR_HTTP_INCOMPLETE_MESSAGE',
      'connection closed inside the request body',
    );
    async function* clientBody() {
      yield Buffer.from('half an upload');
      await new Promise((r) => setTimeout(r, 20));
      throw gone;
    }
    const service = new UpstreamService(
      newUpstreamConnector({ idleTimeout: 1000, streams: new UpstreamStreams() }),
      // The upstream read timeout is far away: the exchange must not wait for it.
      { connect: 2000, read: 60_000 },
    );
    const cx = ProxyContext.empty()
      .set('peerAddr', { family: 'ipv4', address: '127.0.0.1', port: 1 })
      .set('socket', { localAddress: { family: 'ipv4', address: '127.0.0.1', port: 2 } })
      .set('driver', 'legacy')
      .set('server', { key: 'test', scheme: 'http' })
      .set('request', createRequest('PUT', '/up', { headers: { host: 'x' }, body: streamBody(clientBody()) }))
      .set('clientTarget', '/up')
      .set('startedAt', 0)
      .set('route', router.match('x', '/up')!)
      .set('upstreamTarget', '/up');
    await expect(service.call(cx)).rejects.toBe(gone);
    // The half-sent upstream connection is closed, not pooled.
    expect(service.connector.stats()).toMatchObject({ idle: 0, active: 0, created: 1 });
    await expect.poll(() => upstream.sockets.size, { timeout: 5000 }).toBe(0);
    service.connector.close();
  }, 10_000);
});

describe("UpstreamService: a gRPC call's grpc-timeout", () => {
  /** The read timeout the connector is asked for, for one request with these headers. */
  async function readTimeoutFor(
    headers: Record<string, string>,
    read: number,
    method = 'POST',
  ): Promise<number | undefined> {
    const router = compileRoutes([
      {
        path: '/',
        host: undefined,
        loadBalancer: 'first',
        stripPrefix: undefined,
        hostHeader: 'preserve',
        upstreams: [
          {
            address: { kind: 'tcp', host: '127.0.0.1', port: 9, scheme: 'http', authority: '127.0.0.1:9' },
            weight: 1,
            label: 'up',
          },
        ],
      },
    ]);
    let seen: RequestOptions | undefined;
    const connector = {
      request(_key: unknown, _req: unknown, options: RequestOptions) {
        seen = options;
        return Promise.resolve(createResponse(200));
      },
    } as unknown as HttpConnector;
    const service = new UpstreamService(connector, { connect: 2000, read });
    const cx = ProxyContext.empty()
      .set('peerAddr', { family: 'ipv4', address: '127.0.0.1', port: 1 })
      .set('socket', { localAddress: { family: 'ipv4', address: '127.0.0.1', port: 2 } })
      .set('driver', 'legacy')
      .set('server', { key: 'test', scheme: 'http' })
      .set('request', createRequest(method, '/pkg.Svc/Call', { headers: { host: 'x', ...headers } }))
      .set('clientTarget', '/pkg.Svc/Call')
      .set('startedAt', 0)
      .set('route', router.match('x', '/pkg.Svc/Call')!)
      .set('upstreamTarget', '/pkg.Svc/Call');
    await service.call(cx);
    return seen?.readTimeout;
  }
  const grpc = { 'content-type': 'application/grpc' };

  it("is the read timeout when shorter than the route's; a longer or malformed one, or a call that is not gRPC, keeps the route's", async () => {
    expect(await readTimeoutFor({ ...grpc, 'grpc-timeout': '300m' }, 60_000)).toBe(300);
    expect(await readTimeoutFor({ ...grpc, 'grpc-timeout': '2S' }, 0)).toBe(2000);
    expect(await readTimeoutFor({ ...grpc, 'grpc-timeout': '2M' }, 60_000)).toBe(60_000);
    expect(await readTimeoutFor({ ...grpc, 'grpc-timeout': '300s' }, 60_000)).toBe(60_000);
    expect(await readTimeoutFor({ ...grpc, 'grpc-timeout': '123456789m' }, 60_000)).toBe(60_000);
    expect(
      await readTimeoutFor({ 'content-type': 'application/grpc-web', 'grpc-timeout': '300m' }, 60_000),
    ).toBe(60_000);
  });

  it("is read for POSTs only (gRPC calls are POSTs): another method with a gRPC content-type keeps the route's", async () => {
    expect(await readTimeoutFor({ ...grpc, 'grpc-timeout': '300m' }, 60_000, 'POST')).toBe(300);
    for (const method of ['GET', 'PUT', 'post'])
      expect(await readTimeoutFor({ ...grpc, 'grpc-timeout': '300m' }, 60_000, method), method).toBe(60_000);
  });
});

describe('UpstreamService: the connector key and the Host', () => {
  /** The connector key one request with Host `host` is sent with, to an https upstream with `tls`. */
  async function keyFor(tls: Record<string, string>, host: string): Promise<Endpoint> {
    const router = compileRoutes([
      {
        path: '/',
        host: undefined,
        loadBalancer: 'first',
        stripPrefix: undefined,
        hostHeader: 'preserve',
        upstreams: [
          {
            address: {
              kind: 'tcp',
              host: '10.0.0.1',
              port: 8443,
              scheme: 'https',
              authority: '10.0.0.1:8443',
              tls: { verify: true, ca: 'system', serverName: 'up.example', ...tls },
            },
            weight: 1,
            label: 'up',
          },
        ],
      },
    ]);
    let seen: Endpoint | undefined;
    const connector = {
      request(key: Endpoint) {
        seen = key;
        return Promise.resolve(createResponse(200));
      },
    } as unknown as HttpConnector;
    const service = new UpstreamService(connector, { connect: 2000, read: 0 });
    const match = router.match(host, '/')!;
    const cx = ProxyContext.empty()
      .set('peerAddr', { family: 'ipv4', address: '127.0.0.1', port: 1 })
      .set('socket', { localAddress: { family: 'ipv4', address: '127.0.0.1', port: 2 } })
      .set('driver', 'legacy')
      .set('server', { key: 'test', scheme: 'https' })
      .set('request', createRequest('GET', '/', { headers: { host } }))
      .set('clientTarget', '/')
      .set('startedAt', 0)
      .set('route', match)
      .set('upstreamTarget', '/');
    await service.call(cx);
    expect(match.route.endpoints[0]!.sniFromHost).toBe(tls.serverNameFrom === 'host');
    return seen!;
  }

  it('follows the Host for server_name_from = "host" only; otherwise the key is the routed endpoint', async () => {
    const a = await keyFor({ serverNameFrom: 'host' }, 'a.example.com');
    expect(a.tls!.serverName).toBe('a.example.com');
    const b = await keyFor({ serverNameFrom: 'host' }, 'b.example.com:8443');
    expect(b.tls!.serverName).toBe('b.example.com');
    expect(b.id).not.toBe(a.id);
    for (const tls of [{}, { serverNameFrom: 'endpoint' }]) {
      const fixed = await keyFor(tls, 'a.example.com');
      expect(fixed.tls!.serverName).toBe('up.example');
    }
  });
});
