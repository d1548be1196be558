/**
 * gRPC through `loch run`, end to end on every available driver: a @grpc/grpc-js client (h2c to
 * loch's listener) -> loch -> a @grpc/grpc-js server (h2c upstream, `upstream_http_version =
 * "http2"`). Unary and server-streaming calls, metadata both ways, an error status relayed as the
 * server's grpc-status/grpc-message trailers, and a deadline (grpc-timeout) that ends a call the
 * server does not answer in time as DEADLINE_EXCEEDED.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableDrivers, freePort, type Loch, startLoch, tempDir } from './harness.js';

const drivers = availableDrivers();

const PROTO = `
syntax = "proto3";
package loch.test;
message EchoRequest { string text = 1; int32 count = 2; int32 delay_ms = 3; }
message EchoReply { string text = 1; int32 index = 2; }
service Echo {
  rpc Say (EchoRequest) returns (EchoReply);
  rpc Repeat (EchoRequest) returns (stream EchoReply);
  rpc Collect (stream EchoRequest) returns (EchoReply);
  rpc Chat (stream EchoRequest) returns (stream EchoReply);
}
`;

interface EchoRequest {
  text: string;
  count: number;
  delay_ms: number;
}
interface EchoReply {
  text: string;
  index: number;
}
type EchoClient = grpc.Client & {
  Say(
    req: Partial<EchoRequest>,
    meta: grpc.Metadata,
    options: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, reply?: EchoReply) => void,
  ): grpc.ClientUnaryCall;
  Repeat(req: Partial<EchoRequest>, meta?: grpc.Metadata): grpc.ClientReadableStream<EchoReply>;
  Collect(
    cb: (err: grpc.ServiceError | null, reply?: EchoReply) => void,
  ): grpc.ClientWritableStream<Partial<EchoRequest>>;
  Chat(): grpc.ClientDuplexStream<Partial<EchoRequest>, EchoReply>;
};

function loadService(dir: string): grpc.GrpcObject {
  const file = join(dir, 'echo.proto');
  writeFileSync(file, PROTO);
  return grpc.loadPackageDefinition(protoLoader.loadSync(file, { keepCase: true, defaults: true }));
}

describe.each(drivers)('grpc-js client -> loch (h2c) -> grpc-js server (h2c) on the %s driver', (driver) => {
  let loch: Loch;
  let server: grpc.Server;
  let client: EchoClient;

  beforeAll(async () => {
    const dir = tempDir('loch-grpc-');
    const pkg = loadService(dir) as unknown as {
      loch: { test: { Echo: grpc.ServiceClientConstructor } };
    };
    const Echo = pkg.loch.test.Echo;
    server = new grpc.Server();
    server.addService(Echo.service, {
      Say(call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) {
        const text = call.request.text;
        if (text === 'fail') {
          cb({ code: grpc.status.FAILED_PRECONDITION, details: 'no such thing' } as grpc.ServiceError);
          return;
        }
        const reply = (): void => {
          const meta = new grpc.Metadata();
          meta.set('x-seen-by', String(call.metadata.get('x-client')[0] ?? ''));
          call.sendMetadata(meta);
          cb(null, { text: `hello ${text}`, index: 0 });
        };
        if (call.request.delay_ms > 0) setTimeout(reply, call.request.delay_ms);
        else reply();
      },
      Collect(call: grpc.ServerReadableStream<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) {
        const texts: string[] = [];
        call.on('data', (r: EchoRequest) => texts.push(r.text));
        call.on('end', () => cb(null, { text: texts.join(','), index: texts.length }));
      },
      Chat(call: grpc.ServerDuplexStream<EchoRequest, EchoReply>) {
        let i = 0;
        call.on('data', (r: EchoRequest) => call.write({ text: `re: ${r.text}`, index: i++ }));
        call.on('end', () => call.end());
      },
      Repeat(call: grpc.ServerWritableStream<EchoRequest, EchoReply>) {
        for (let i = 0; i < call.request.count; i++) call.write({ text: call.request.text, index: i });
        call.end();
      },
    });
    const upPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) =>
        err ? reject(err) : resolve(port),
      ),
    );
    const port = await freePort();
    loch = await startLoch(
      dir,
      `
[runtime]
workers = 1

[servers.grpc]
listener = { type = "socket", value = "127.0.0.1:${port}" }
upstream_http_version = "http2"

[[servers.grpc.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upPort}" }]
`,
      { LOCH_DRIVER: driver },
    );
    client = new Echo(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as EchoClient;
  });

  afterAll(async () => {
    client?.close();
    await loch?.stop();
    server?.forceShutdown();
  });

  function say(
    req: Partial<EchoRequest>,
    options: grpc.CallOptions = {},
    meta = new grpc.Metadata(),
  ): Promise<{ err: grpc.ServiceError | null; reply?: EchoReply; headers?: grpc.Metadata }> {
    return new Promise((resolve) => {
      let headers: grpc.Metadata | undefined;
      const call = client.Say(req, meta, options, (err, reply) =>
        resolve({ err, ...(reply ? { reply } : {}), ...(headers ? { headers } : {}) }),
      );
      call.on('metadata', (m) => {
        headers = m;
      });
    });
  }

  it('a unary call, with metadata both ways', async () => {
    const meta = new grpc.Metadata();
    meta.set('x-client', 'vitest');
    const r = await say({ text: 'loch' }, {}, meta);
    expect(r.err).toBeNull();
    expect(r.reply).toEqual({ text: 'hello loch', index: 0 });
    expect(r.headers?.get('x-seen-by')).toEqual(['vitest']);
  });

  it('a server-streaming call', async () => {
    const got: EchoReply[] = [];
    await new Promise<void>((resolve, reject) => {
      const call = client.Repeat({ text: 'tick', count: 50 });
      call.on('data', (r: EchoReply) => got.push(r));
      call.on('end', resolve);
      call.on('error', reject);
    });
    expect(got.length).toBe(50);
    expect(got.map((r) => r.index)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('a client-streaming call', async () => {
    const reply = await new Promise<EchoReply>((resolve, reject) => {
      const call = client.Collect((err, r) => (err ? reject(err) : resolve(r!)));
      for (let i = 0; i < 30; i++) call.write({ text: `p${i}` });
      call.end();
    });
    expect(reply.index).toBe(30);
    expect(reply.text).toBe(Array.from({ length: 30 }, (_, i) => `p${i}`).join(','));
  });

  it('a bidirectional call: each message answered before the next is sent', async () => {
    const call = client.Chat();
    const replies: EchoReply[] = [];
    const next = (): Promise<EchoReply> =>
      new Promise((resolve, reject) => {
        call.once('data', resolve);
        call.once('error', reject);
      });
    for (let i = 0; i < 10; i++) {
      const answer = next();
      call.write({ text: `m${i}` });
      replies.push(await answer);
    }
    call.end();
    await new Promise<void>((resolve) => call.on('end', resolve).resume());
    expect(replies.map((r) => r.text)).toEqual(Array.from({ length: 10 }, (_, i) => `re: m${i}`));
  });

  it("the server's error status is relayed (grpc-status, grpc-message)", async () => {
    const r = await say({ text: 'fail' });
    expect(r.err?.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(r.err?.details).toBe('no such thing');
  });

  it('a deadline (grpc-timeout) ends a call the server answers too late', async () => {
    const r = await say({ text: 'slow', delay_ms: 2000 }, { deadline: Date.now() + 200 });
    expect(r.err?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    // The connection and the upstream session go on.
    const after = await say({ text: 'again' });
    expect(after.reply?.text).toBe('hello again');
  });

  it('20 concurrent unary calls', async () => {
    const all = await Promise.all(Array.from({ length: 20 }, (_, i) => say({ text: `n${i}` })));
    expect(all.map((r) => r.reply?.text)).toEqual(Array.from({ length: 20 }, (_, i) => `hello n${i}`));
  });
});
