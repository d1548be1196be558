/**
 * gRPC calls that loch fails itself, end to end on every available driver: a @grpc/grpc-js
 * client (h2c) -> loch -> a @grpc/grpc-js server (h2c). Each failure must reach the client as
 * the gRPC status Envoy would give (apps/proxy/src/proxy/grpc-status.ts), carried by a
 * trailers-only answer, instead of a bare HTTP 502/504 that grpc-js can only report as
 * UNAVAILABLE/UNKNOWN with "Received HTTP status code ...": an upstream that refuses
 * (UNAVAILABLE), one that resets (UNAVAILABLE), one that does not speak HTTP/2 (UNAVAILABLE),
 * one too slow for upstream_read
 * (DEADLINE_EXCEEDED), no route (UNIMPLEMENTED), a request body over max_body_size
 * (RESOURCE_EXHAUSTED). The wire shape is checked with node:http2. A call whose grpc-timeout
 * is shorter than the route's upstream_read ends at its own deadline: DEADLINE_EXCEEDED from
 * loch, and the upstream's call is cancelled.
 */
import { writeFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableDrivers, freePort, type Loch, resettingUpstream, startLoch, tempDir } from './harness.js';

const drivers = availableDrivers();

// One method per service: loch routes by path, and a gRPC path is /<package>.<Service>/<Method>.
const PROTO = `
syntax = "proto3";
package loch.test;
message EchoRequest { string text = 1; int32 delay_ms = 2; }
message EchoReply { string text = 1; }
service Live { rpc Say (EchoRequest) returns (EchoReply); }
service Down { rpc Say (EchoRequest) returns (EchoReply); }
service Resetting { rpc Say (EchoRequest) returns (EchoReply); }
service Garbled { rpc Say (EchoRequest) returns (EchoReply); }
service Small { rpc Say (EchoRequest) returns (EchoReply); }
service Unrouted { rpc Say (EchoRequest) returns (EchoReply); }
service Patient { rpc Say (EchoRequest) returns (EchoReply); }
`;

interface EchoRequest {
  text: string;
  delay_ms: number;
}
interface EchoReply {
  text: string;
}
type SayClient = grpc.Client & {
  Say(
    req: Partial<EchoRequest>,
    cb: (err: grpc.ServiceError | null, reply?: EchoReply) => void,
  ): grpc.ClientUnaryCall;
};
type Services = Record<
  'Live' | 'Down' | 'Resetting' | 'Garbled' | 'Small' | 'Unrouted' | 'Patient',
  grpc.ServiceClientConstructor
>;

describe.each(drivers)('gRPC calls loch fails itself get a grpc-status, on the %s driver', (driver) => {
  let loch: Loch;
  let server: grpc.Server;
  let resetting: Awaited<ReturnType<typeof resettingUpstream>>;
  let garbled: net.Server;
  let port: number;
  /** A server whose upstream_read (10 s) outlasts the slow upstream: only grpc-timeout ends a call early. */
  let patientPort: number;
  /** Settles the next Patient call's outcome: cancelled (true) or answered by the upstream (false). */
  let settlePatient: (cancelled: boolean) => void = () => {};
  let patient: http2.Http2Server;
  let svc: Services;
  const clients: grpc.Client[] = [];

  beforeAll(async () => {
    const dir = tempDir('loch-grpc-errors-');
    const file = join(dir, 'echo.proto');
    writeFileSync(file, PROTO);
    const pkg = grpc.loadPackageDefinition(
      protoLoader.loadSync(file, { keepCase: true, defaults: true }),
    ) as unknown as {
      loch: { test: Services };
    };
    svc = pkg.loch.test;
    const say = (call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) => {
      const reply = () => cb(null, { text: `hello ${call.request.text}` });
      if (call.request.delay_ms > 0) setTimeout(reply, call.request.delay_ms);
      else reply();
    };
    server = new grpc.Server();
    server.addService(svc.Live.service, { Say: say });
    server.addService(svc.Small.service, { Say: say });
    // A gRPC server that does not enforce deadlines itself (grpc-js' would answer
    // DEADLINE_EXCEEDED on its own): it answers every call after 5 s unless the call is reset.
    patient = http2.createServer();
    patient.on('stream', (stream) => {
      stream.on('error', () => {});
      stream.resume();
      const timer = setTimeout(() => {
        settlePatient(false);
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(Buffer.from([0, 0, 0, 0, 0]));
      }, 5000);
      stream.on('close', () => {
        if (stream.headersSent) return;
        clearTimeout(timer);
        settlePatient(true);
      });
    });
    await new Promise<void>((r) => patient.listen(0, '127.0.0.1', r));
    const patientUpPort = (patient.address() as net.AddressInfo).port;
    const upPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    resetting = await resettingUpstream();
    // Answers the HTTP/2 preface as an HTTP/1.1 server would: not HTTP/2 at all.
    garbled = net.createServer((sock) => {
      sock.on('error', () => {});
      sock.once('data', () => sock.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n'));
    });
    await new Promise<void>((r) => garbled.listen(0, '127.0.0.1', r));
    const garbledPort = (garbled.address() as net.AddressInfo).port;
    const downPort = await freePort();
    port = await freePort();
    patientPort = await freePort();
    loch = await startLoch(
      dir,
      `
[runtime]
workers = 1

[servers.grpc]
listener = { type = "socket", value = "127.0.0.1:${port}" }
upstream_http_version = "http2"
timeouts = { upstream_read = "400ms", upstream_connect = "2s" }

[[servers.grpc.routes]]
path = "/loch.test.Live/"
upstreams = [{ endpoint = "http://127.0.0.1:${upPort}" }]

[[servers.grpc.routes]]
path = "/loch.test.Small/"
max_body_size = 64
upstreams = [{ endpoint = "http://127.0.0.1:${upPort}" }]

[[servers.grpc.routes]]
path = "/loch.test.Down/"
upstreams = [{ endpoint = "http://127.0.0.1:${downPort}" }]

[[servers.grpc.routes]]
path = "/loch.test.Resetting/"
upstreams = [{ endpoint = "http://127.0.0.1:${resetting.port}" }]

[[servers.grpc.routes]]
path = "/loch.test.Garbled/"
upstreams = [{ endpoint = "http://127.0.0.1:${garbledPort}" }]

[servers.patient]
listener = { type = "socket", value = "127.0.0.1:${patientPort}" }
upstream_http_version = "http2"
timeouts = { upstream_read = "10s", upstream_connect = "2s" }

[[servers.patient.routes]]
path = "/loch.test.Patient/"
upstreams = [{ endpoint = "http://127.0.0.1:${patientUpPort}" }]
`,
      { LOCH_DRIVER: driver },
    );
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await loch?.stop();
    server?.forceShutdown();
    await resetting?.close();
    await new Promise((r) => garbled?.close(r));
    await new Promise((r) => patient?.close(r));
  });

  function call(
    service: keyof Services,
    req: Partial<EchoRequest>,
  ): Promise<{ err: grpc.ServiceError | null; reply?: EchoReply }> {
    const client = new svc[service](
      `127.0.0.1:${port}`,
      grpc.credentials.createInsecure(),
    ) as unknown as SayClient;
    clients.push(client);
    return new Promise((resolve) => {
      client.Say(req, (err, reply) => resolve({ err, ...(reply ? { reply } : {}) }));
    });
  }

  it('a call that reaches its upstream is answered (the routes work)', async () => {
    const r = await call('Live', { text: 'a' });
    expect(r.err).toBeNull();
    expect(r.reply?.text).toBe('hello a');
  });

  it('a refused upstream: UNAVAILABLE, with loch reason in grpc-message', async () => {
    const r = await call('Down', { text: 'a' });
    expect(r.err?.code).toBe(grpc.status.UNAVAILABLE);
    expect(r.err?.details).toBe('502 ERR_LOCH_UPSTREAM_REFUSED');
  });

  it('an upstream that resets the connection: UNAVAILABLE', async () => {
    const r = await call('Resetting', { text: 'a' });
    expect(r.err?.code).toBe(grpc.status.UNAVAILABLE);
    expect(r.err?.details).toMatch(/^502 ERR_LOCH_UPSTREAM_/);
  });

  it('an upstream that does not speak HTTP/2 (protocol error): UNAVAILABLE', async () => {
    const r = await call('Garbled', { text: 'a' });
    expect(r.err?.code).toBe(grpc.status.UNAVAILABLE);
    expect(r.err?.details).toMatch(/^502 ERR_LOCH_UPSTREAM_/);
  });

  it('an upstream slower than upstream_read: DEADLINE_EXCEEDED', async () => {
    const r = await call('Live', { text: 'slow', delay_ms: 3000 });
    expect(r.err?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(r.err?.details).toBe('504 ERR_LOCH_UPSTREAM_TIMEOUT');
  });

  /** Expects the next Patient call's outcome at the upstream. */
  function nextPatientOutcome(): Promise<boolean> {
    return new Promise((resolve) => {
      settlePatient = resolve;
    });
  }

  it('a grpc-timeout shorter than upstream_read: loch answers DEADLINE_EXCEEDED at the deadline and cancels the upstream call', async () => {
    const outcome = nextPatientOutcome();
    const session = http2.connect(`http://127.0.0.1:${patientPort}`);
    try {
      // A raw client has no deadline of its own: the answer can only be loch's.
      const headers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        const req = session.request({
          ':method': 'POST',
          ':path': '/loch.test.Patient/Say',
          'content-type': 'application/grpc',
          te: 'trailers',
          'grpc-timeout': '300m',
        });
        let head: http2.IncomingHttpHeaders = {};
        req.on('response', (h) => {
          head = h;
        });
        req.on('trailers', (t) => {
          head = { ...head, ...t };
        });
        req.on('data', () => {});
        req.on('end', () => resolve(head));
        req.on('error', reject);
        // EchoRequest { text: "a" }, length-prefixed; the upstream would answer after 5 s.
        req.end(Buffer.from([0, 0, 0, 0, 3, 0x0a, 0x01, 0x61]));
      });
      expect(headers['grpc-status']).toBe('4');
      expect(headers['grpc-message']).toBe('504 ERR_LOCH_UPSTREAM_TIMEOUT');
      expect(await outcome).toBe(true);
    } finally {
      session.close();
    }
  });

  it('a grpc-js client deadline shorter than a slow upstream: DEADLINE_EXCEEDED, the upstream call cancelled', async () => {
    const outcome = nextPatientOutcome();
    const client = new svc.Patient(
      `127.0.0.1:${patientPort}`,
      grpc.credentials.createInsecure(),
    ) as unknown as SayClient & {
      Say(
        req: Partial<EchoRequest>,
        options: grpc.CallOptions,
        cb: (err: grpc.ServiceError | null, reply?: EchoReply) => void,
      ): grpc.ClientUnaryCall;
    };
    clients.push(client);
    const err = await new Promise<grpc.ServiceError | null>((resolve) => {
      client.Say({ text: 'a' }, { deadline: Date.now() + 300 }, (e) => resolve(e));
    });
    expect(err?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(await outcome).toBe(true);
  });

  it('no route: UNIMPLEMENTED', async () => {
    const r = await call('Unrouted', { text: 'a' });
    expect(r.err?.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(r.err?.details).toBe('404 ERR_LOCH_NO_ROUTE');
  });

  it('a request body over max_body_size: RESOURCE_EXHAUSTED', async () => {
    const r = await call('Small', { text: 'x'.repeat(1000), delay_ms: 3000 });
    expect(r.err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(r.err?.details).toBe('413 ERR_HTTP_BODY_TOO_LARGE');
  });

  it('on the wire: HTTP 200 and one HEADERS block with END_STREAM (trailers-only), no DATA', async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const { headers, data, ended } = await new Promise<{
        headers: http2.IncomingHttpHeaders;
        data: number;
        ended: boolean;
      }>((resolve, reject) => {
        const req = session.request({
          ':method': 'POST',
          ':path': '/loch.test.Unrouted/Say',
          'content-type': 'application/grpc+proto',
          te: 'trailers',
        });
        let headers: http2.IncomingHttpHeaders = {};
        let data = 0;
        req.on('response', (h, flags) => {
          headers = h;
          // END_STREAM on the response HEADERS frame.
          if ((flags & 0x1) === 0) reject(new Error('HEADERS without END_STREAM'));
        });
        req.on('data', (d: Buffer) => {
          data += d.length;
        });
        req.on('end', () => resolve({ headers, data, ended: true }));
        req.on('error', reject);
        req.end(Buffer.from([0, 0, 0, 0, 0]));
      });
      expect(ended).toBe(true);
      expect(headers[':status']).toBe(200);
      expect(headers['content-type']).toBe('application/grpc');
      expect(headers['grpc-status']).toBe('12');
      expect(headers['grpc-message']).toBe('404 ERR_LOCH_NO_ROUTE');
      expect(data).toBe(0);
    } finally {
      session.close();
    }
  });

  it('a plain (non-gRPC) request still gets the plain-text HTTP error', async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const status = await new Promise<number | undefined>((resolve, reject) => {
        const req = session.request({ ':path': '/nowhere' });
        req.on('response', (h) => resolve(h[':status']));
        req.on('error', reject);
        req.end();
      });
      expect(status).toBe(404);
    } finally {
      session.close();
    }
  });
});
