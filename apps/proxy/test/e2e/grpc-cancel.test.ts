/**
 * gRPC streaming lifetimes through `loch run`, end to end on every available driver: a
 * @grpc/grpc-js client (h2c) -> loch -> a @grpc/grpc-js server (h2c, `upstream_http_version =
 * "http2"`). A client's `call.cancel()` mid-stream (server streaming and bidi) reaches the
 * upstream as a cancellation and loch's upstream exchange ends (the server's call sees
 * 'cancelled' and no call stays open); `grpc-timeout` reaches the upstream as the client sent it
 * (README: forwarded as is, not reduced by the time spent in loch); the route's `upstream_read`
 * is an idle timeout for a streaming answer: a stream silent for longer is cut between two
 * messages with trailers `grpc-status: 4` (the upstream's call cancelled too; more cases in
 * grpc-after-head.test.ts), one that keeps sending more often lives as long as it needs.
 */
import { writeFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableDrivers, freePort, type Loch, startLoch, tempDir } from './harness.js';

const drivers = availableDrivers();

const PROTO = `
syntax = "proto3";
package loch.test;
message TickRequest { int32 count = 1; int32 interval_ms = 2; int32 stall_after = 3; int32 stall_ms = 4; }
message Tick { int32 index = 1; string text = 2; }
service Ticker {
  rpc Ticks (TickRequest) returns (stream Tick);
  rpc Chat (stream Tick) returns (stream Tick);
}
service Probe { rpc Ticks (TickRequest) returns (stream Tick); }
`;

interface TickRequest {
  count: number;
  interval_ms: number;
  /** Messages sent before the stall (0: none). */
  stall_after: number;
  stall_ms: number;
}
interface Tick {
  index: number;
  text: string;
}
type TickerClient = grpc.Client & {
  Ticks(
    req: Partial<TickRequest>,
    meta?: grpc.Metadata,
    options?: grpc.CallOptions,
  ): grpc.ClientReadableStream<Tick>;
  Chat(): grpc.ClientDuplexStream<Partial<Tick>, Tick>;
};

/** What the upstream's calls did: started, cancelled by the client (through loch), still open. */
interface Calls {
  started: number;
  cancelled: number;
  open: number;
}

describe.each(drivers)('gRPC streaming lifetimes through loch on the %s driver', (driver) => {
  let loch: Loch;
  let server: grpc.Server;
  let probe: http2.Http2Server;
  /** An h2c upstream allowing 2 streams at once, each an endless gRPC answer until reset. */
  let endless: http2.Http2Server;
  const endlessCount = { sessions: 0, streams: 0, open: 0 };
  /** grpc-timeout values the probe upstream received, in order. */
  const timeouts: (string | undefined)[] = [];
  let client: TickerClient;
  let Ticker: grpc.ServiceClientConstructor;
  let port: number;
  const calls: Calls = { started: 0, cancelled: 0, open: 0 };

  /** Counts a call open until it ends or is cancelled; returns what ends it. */
  function track(call: grpc.ServerWritableStream<unknown, Tick> | grpc.ServerDuplexStream<Tick, Tick>): {
    ended: () => boolean;
    end: () => void;
    onCancel: (f: () => void) => void;
  } {
    calls.started++;
    calls.open++;
    let ended = false;
    const cancelHooks: (() => void)[] = [];
    const end = () => {
      if (ended) return;
      ended = true;
      calls.open--;
    };
    // Counted even after the handler saw the request stream end: node ends a reset stream's
    // readable side before grpc-js reports the cancellation.
    call.on('cancelled', () => {
      calls.cancelled++;
      for (const f of cancelHooks) f();
      end();
    });
    return { ended: () => ended, end, onCancel: (f) => cancelHooks.push(f) };
  }

  beforeAll(async () => {
    const dir = tempDir('loch-grpc-cancel-');
    const file = join(dir, 'ticker.proto');
    writeFileSync(file, PROTO);
    const pkg = grpc.loadPackageDefinition(
      protoLoader.loadSync(file, { keepCase: true, defaults: true }),
    ) as unknown as {
      loch: { test: { Ticker: grpc.ServiceClientConstructor; Probe: grpc.ServiceClientConstructor } };
    };
    Ticker = pkg.loch.test.Ticker;
    server = new grpc.Server();
    server.addService(Ticker.service, {
      Ticks(call: grpc.ServerWritableStream<TickRequest, Tick>) {
        const t = track(call);
        const { count, interval_ms, stall_after, stall_ms } = call.request;
        let i = 0;
        let timer: NodeJS.Timeout | undefined;
        t.onCancel(() => clearTimeout(timer));
        const next = () => {
          if (t.ended()) return;
          if (i === count) {
            call.end();
            t.end();
            return;
          }
          call.write({ index: i, text: 'tick' });
          i++;
          timer = setTimeout(next, stall_after > 0 && i === stall_after ? stall_ms : interval_ms);
        };
        next();
      },
      Chat(call: grpc.ServerDuplexStream<Tick, Tick>) {
        const t = track(call);
        call.on('data', (m: Tick) => {
          if (!t.ended()) call.write({ index: m.index, text: `re: ${m.text}` });
        });
        call.on('end', () => {
          if (t.ended()) return;
          call.end();
          t.end();
        });
      },
    });
    const upPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    // A raw h2c upstream that records the grpc-timeout it received and answers an empty stream.
    probe = http2.createServer();
    probe.on('stream', (stream, headers) => {
      stream.on('error', () => {});
      timeouts.push(headers['grpc-timeout'] as string | undefined);
      stream.resume();
      stream.on('end', () => {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end();
      });
    });
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const probePort = (probe.address() as AddressInfo).port;
    endless = http2.createServer({ settings: { maxConcurrentStreams: 2 } });
    endless.on('session', () => endlessCount.sessions++);
    endless.on('stream', (stream) => {
      endlessCount.streams++;
      endlessCount.open++;
      stream.on('error', () => {});
      stream.resume();
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      const empty = Buffer.from([0, 0, 0, 0, 0]);
      stream.write(empty);
      const timer = setInterval(() => stream.write(empty), 20);
      stream.on('close', () => {
        clearInterval(timer);
        endlessCount.open--;
      });
    });
    await new Promise<void>((r) => endless.listen(0, '127.0.0.1', r));
    const endlessPort = (endless.address() as AddressInfo).port;
    port = await freePort();
    loch = await startLoch(
      dir,
      `
[runtime]
workers = 1

[servers.grpc]
listener = { type = "socket", value = "127.0.0.1:${port}" }
upstream_http_version = "http2"
timeouts = { upstream_read = "800ms", upstream_connect = "2s" }

[[servers.grpc.routes]]
path = "/loch.test.Ticker/"
upstreams = [{ endpoint = "http://127.0.0.1:${upPort}" }]

[[servers.grpc.routes]]
path = "/loch.test.Probe/"
upstreams = [{ endpoint = "http://127.0.0.1:${probePort}" }]

[[servers.grpc.routes]]
path = "/loch.test.Endless/"
upstreams = [{ endpoint = "http://127.0.0.1:${endlessPort}" }]
`,
      { LOCH_DRIVER: driver },
    );
    client = new Ticker(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as TickerClient;
  });

  afterAll(async () => {
    client?.close();
    await loch?.stop();
    server?.forceShutdown();
    await new Promise((r) => probe?.close(r));
    await new Promise((r) => endless?.close(r));
  });

  /** Resolves when no upstream call is open any more (or fails after the poll's timeout). */
  async function settled(): Promise<void> {
    await expect.poll(() => calls.open, { timeout: 5000, interval: 25 }).toBe(0);
  }

  it('server streaming: call.cancel() mid-stream cancels the upstream call, and it ends', async () => {
    await settled();
    const before = { ...calls };
    // 1000 ticks 20 ms apart (20 s): only a cancellation ends it within the test.
    const call = client.Ticks({ count: 1000, interval_ms: 20 });
    const got: Tick[] = [];
    const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    call.on('error', () => {});
    await new Promise<void>((resolve) =>
      call.on('data', (m: Tick) => {
        got.push(m);
        if (got.length === 3) resolve();
      }),
    );
    expect(calls.open - before.open).toBe(1);
    call.cancel();
    expect((await status).code).toBe(grpc.status.CANCELLED);
    await expect.poll(() => calls.cancelled - before.cancelled, { timeout: 5000 }).toBe(1);
    await settled();
    expect(calls.started - before.started).toBe(1);
    expect(got.map((m) => m.index).slice(0, 3)).toEqual([0, 1, 2]);
  });

  it('bidi: call.cancel() after a reply cancels the upstream call, and it ends', async () => {
    await settled();
    const before = { ...calls };
    const call = client.Chat();
    call.on('error', () => {});
    const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    for (let i = 0; i < 3; i++) {
      const reply = new Promise<Tick>((resolve) => call.once('data', resolve));
      call.write({ index: i, text: `m${i}` });
      expect((await reply).text).toBe(`re: m${i}`);
    }
    expect(calls.open - before.open).toBe(1);
    call.cancel();
    expect((await status).code).toBe(grpc.status.CANCELLED);
    await expect.poll(() => calls.cancelled - before.cancelled, { timeout: 5000 }).toBe(1);
    await settled();
  });

  it('many cancelled streams leave no call open upstream, and the session goes on', async () => {
    await settled();
    const before = { ...calls };
    const all = Array.from({ length: 20 }, () => {
      const call = client.Ticks({ count: 1000, interval_ms: 20 });
      call.on('error', () => {});
      return new Promise<void>((resolve) =>
        call.once('data', () => {
          call.cancel();
          resolve();
        }),
      );
    });
    await Promise.all(all);
    await expect.poll(() => calls.cancelled - before.cancelled, { timeout: 5000 }).toBe(20);
    await settled();
    // A call after them is served whole.
    const got = await collect(client.Ticks({ count: 5, interval_ms: 1 }));
    expect(got.status.code).toBe(grpc.status.OK);
    expect(got.messages).toBe(5);
  });

  it("cancelled calls give their stream slots back: 16 calls through an upstream allowing 2 streams, on loch's one session", async () => {
    const generic = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    /** A call cancelled once its first message arrived; resolves with the status the client saw. */
    const cancelledCall = () =>
      new Promise<number>((resolve) => {
        const call = generic.makeServerStreamRequest(
          '/loch.test.Endless/Ticks',
          () => Buffer.alloc(0),
          (b: Buffer) => b,
          {},
          new grpc.Metadata(),
          {},
        );
        call.on('error', () => {});
        call.once('data', () => call.cancel());
        call.on('status', (st) => resolve(st.code));
      });
    try {
      const before = { ...endlessCount };
      // One after another, then 6 at once (4 of them wait for a slot): a slot not given back
      // after a cancel would leave the third call waiting.
      for (let i = 0; i < 10; i++) expect(await cancelledCall()).toBe(grpc.status.CANCELLED);
      const together = await Promise.all(Array.from({ length: 6 }, cancelledCall));
      expect(together).toEqual(Array(6).fill(grpc.status.CANCELLED));
      await expect.poll(() => endlessCount.open, { timeout: 5000 }).toBe(0);
      expect(endlessCount.streams - before.streams).toBe(16);
      expect(endlessCount.sessions - before.sessions).toBeLessThanOrEqual(1);
    } finally {
      generic.close();
    }
  });

  it('grpc-timeout reaches the upstream as the client sent it (forwarded as is)', async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => {});
    try {
      for (const value of ['7S', '2500m', '99999999u']) {
        const status = await new Promise<string | undefined>((resolve, reject) => {
          const req = session.request({
            ':method': 'POST',
            ':path': '/loch.test.Probe/Ticks',
            'content-type': 'application/grpc',
            te: 'trailers',
            'grpc-timeout': value,
          });
          let s: string | undefined;
          req.on('trailers', (t) => {
            s = t['grpc-status'] as string | undefined;
          });
          req.on('data', () => {});
          req.on('end', () => resolve(s));
          req.on('error', reject);
          req.end(Buffer.from([0, 0, 0, 0, 0]));
        });
        expect(status).toBe('0');
        expect(timeouts.at(-1)).toBe(value);
      }
      // Without one, none is invented.
      await new Promise<void>((resolve, reject) => {
        const req = session.request({
          ':method': 'POST',
          ':path': '/loch.test.Probe/Ticks',
          'content-type': 'application/grpc',
          te: 'trailers',
        });
        req.on('data', () => {});
        req.on('end', resolve);
        req.on('error', reject);
        req.end(Buffer.from([0, 0, 0, 0, 0]));
      });
      expect(timeouts.at(-1)).toBeUndefined();
    } finally {
      session.close();
    }
  });

  it("a grpc-js client's deadline reaches the upstream as its grpc-timeout", async () => {
    const probeClient = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      const deadline = Date.now() + 30_000;
      const stream = probeClient.makeServerStreamRequest(
        '/loch.test.Probe/Ticks',
        () => Buffer.alloc(0),
        (b: Buffer) => b,
        {},
        new grpc.Metadata(),
        { deadline },
      );
      await new Promise<void>((resolve) => {
        stream.on('data', () => {});
        stream.on('status', () => resolve());
        stream.on('error', () => {});
      });
      const sent = timeouts.at(-1);
      expect(sent).toMatch(/^\d{1,8}[HMSmun]$/);
      const unit = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 }[sent!.at(-1)!]!;
      const ms = Number(sent!.slice(0, -1)) * unit;
      // What grpc-js computed from the deadline when it sent the call: at most 30 s, and not cut
      // to anything like loch's upstream_read (800 ms).
      expect(ms).toBeLessThanOrEqual(30_000);
      expect(ms).toBeGreaterThan(10_000);
    } finally {
      probeClient.close();
    }
  });

  it('a streaming answer silent for longer than upstream_read is cut, and the upstream call cancelled', async () => {
    await settled();
    const before = { ...calls };
    // One message, then 5 s of silence (upstream_read is 800 ms), then the rest.
    const got = await collect(client.Ticks({ count: 3, interval_ms: 1, stall_after: 1, stall_ms: 5000 }));
    expect(got.messages).toBe(1);
    // After the response head was passed on, between two messages, loch ends the stream with
    // trailers (README): grpc-js reports DEADLINE_EXCEEDED, not INTERNAL from a reset.
    expect(got.status.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await expect.poll(() => calls.cancelled - before.cancelled, { timeout: 5000 }).toBe(1);
    await settled();
  });

  it('on the wire, the idle cut after the head and a whole message is a trailers HEADERS frame with END_STREAM, grpc-status 4', async () => {
    await settled();
    const before = { ...calls };
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => {});
    try {
      const { status, data, rstCode, trailers } = await new Promise<{
        status: unknown;
        data: number;
        rstCode: number;
        trailers: http2.IncomingHttpHeaders | null;
      }>((resolve) => {
        const req = session.request({
          ':method': 'POST',
          ':path': '/loch.test.Ticker/Ticks',
          'content-type': 'application/grpc',
          te: 'trailers',
        });
        let status: unknown;
        let data = 0;
        let trailers: http2.IncomingHttpHeaders | null = null;
        req.on('response', (h) => {
          status = h[':status'];
        });
        req.on('data', (b: Buffer) => {
          data += b.length;
        });
        req.on('trailers', (t) => {
          trailers = t;
        });
        req.on('error', () => {});
        req.on('close', () => resolve({ status, data, rstCode: req.rstCode, trailers }));
        // TickRequest { count: 3, interval_ms: 1, stall_after: 1, stall_ms: 5000 }, length-prefixed.
        req.end(Buffer.from([0, 0, 0, 0, 9, 0x08, 3, 0x10, 1, 0x18, 1, 0x20, 0x88, 0x27]));
      });
      expect(status).toBe(200);
      // One message: Tick { index: 0, text: "tick" } is 5 + 8 octets (protobufjs writes index 0).
      expect(data).toBe(13);
      expect(trailers).not.toBeNull();
      expect(trailers!['grpc-status']).toBe('4');
      expect(trailers!['grpc-message']).toContain('upstream_read (800 ms)');
      // Ended by END_STREAM, not reset.
      expect(rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
      await expect.poll(() => calls.cancelled - before.cancelled, { timeout: 5000 }).toBe(1);
      await settled();
    } finally {
      session.close();
    }
  });

  it('a streaming answer sending more often than upstream_read lives longer than it in total', async () => {
    await settled();
    // 10 messages 250 ms apart: 2.5 s in all, three times upstream_read, never idle for 800 ms.
    const got = await collect(client.Ticks({ count: 10, interval_ms: 250 }));
    expect(got.status.code).toBe(grpc.status.OK);
    expect(got.messages).toBe(10);
  });
});

/** Reads a server stream to its end: the messages and the final status. */
function collect(
  call: grpc.ClientReadableStream<Tick>,
): Promise<{ messages: number; status: grpc.StatusObject }> {
  return new Promise((resolve) => {
    let messages = 0;
    call.on('data', () => messages++);
    call.on('error', () => {});
    call.on('status', (status) => resolve({ messages, status }));
  });
}
