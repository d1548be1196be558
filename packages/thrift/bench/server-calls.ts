/**
 * CPU per call of the server path a proxy runs, in process and with a fixed call count (no
 * timing assertions, no network): a client writes framed binary calls one at a time over an
 * in-memory stream pair, the ThriftServer reads each with the proxy's timeouts armed (keepalive
 * and message), and its handler answers the call's own payload (bytes relayed unchanged, as
 * loch relays a reply). Prints user and system microseconds per call for each payload size,
 * with the handler keeping each call's bytes and with it releasing them (request.release(), as
 * loch does once a call was forwarded: the reader then reuses its buffer instead of allocating
 * as many bytes as it receives).
 * Run: pnpm --filter @loch/thrift exec tsx --conditions=@loch/source bench/server-calls.ts [calls]
 */
import {
  encodeFrame,
  MessageType,
  type ThriftRecvChunk,
  type ThriftRecvTarget,
  ThriftServer,
  type ThriftServerStream,
  type ThriftWriteTarget,
} from '../src/index.js';
import { BinaryWriter } from '../src/protocol/binary.js';
import { TType } from '../src/types.js';

/** One direction of an in-memory connection: chunks handed to the reader as they are written. */
class Pipe {
  private queue: Uint8Array[] = [];
  private waiter: ((c: ThriftRecvChunk | null) => void) | undefined;
  /** A recvTo() waiting (told at a microtask, as the runtime tells its targets). */
  private target: ThriftRecvTarget | undefined;
  ended = false;
  push(bytes: Uint8Array): void {
    const w = this.waiter;
    const t = this.target;
    if (w !== undefined) {
      this.waiter = undefined;
      w({ bytes, release() {} });
    } else if (t !== undefined) {
      this.target = undefined;
      queueMicrotask(() => t.onRecv({ bytes, release() {} }, undefined));
    } else this.queue.push(bytes);
  }
  end(): void {
    this.ended = true;
    const w = this.waiter;
    this.waiter = undefined;
    w?.(null);
    const t = this.target;
    this.target = undefined;
    if (t !== undefined) queueMicrotask(() => t.onRecv(null, undefined));
  }
  recvTo(target: ThriftRecvTarget): void {
    const b = this.queue.shift();
    if (b !== undefined) queueMicrotask(() => target.onRecv({ bytes: b, release() {} }, undefined));
    else if (this.ended) queueMicrotask(() => target.onRecv(null, undefined));
    else this.target = target;
  }
  recv(): Promise<ThriftRecvChunk | null> {
    const b = this.queue.shift();
    if (b !== undefined) return Promise.resolve({ bytes: b, release() {} });
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }
}

/**
 * A stream end: reads `inbound`, writes (one copied chunk per writev, as a socket delivers) to
 * `outbound`; the promise forms for the client (and a promise-driven server), the callback forms
 * (results at a microtask, as the runtime delivers them) for a callback-driven one.
 */
class End implements ThriftServerStream {
  closed = false;
  constructor(
    private readonly inbound: Pipe,
    private readonly outbound: Pipe,
  ) {}
  recv(): Promise<ThriftRecvChunk | null> {
    return this.inbound.recv();
  }
  recvTo(target: ThriftRecvTarget): void {
    this.inbound.recvTo(target);
  }
  writeTo(one: Uint8Array | readonly Uint8Array[], target: ThriftWriteTarget): void {
    const data = one instanceof Uint8Array ? [one] : one;
    void this.writev(data);
    queueMicrotask(() => target.onWritten(undefined));
  }
  writev(bufs: readonly Uint8Array[]): Promise<number> {
    let n = 0;
    for (const b of bufs) n += b.byteLength;
    const out = new Uint8Array(n);
    let at = 0;
    for (const b of bufs) {
      out.set(b, at);
      at += b.byteLength;
    }
    this.outbound.push(out);
    return Promise.resolve(n);
  }
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.outbound.end();
    this.inbound.end();
  }
}

function call(size: number): Uint8Array {
  const w = new BinaryWriter();
  w.writeMessageBegin('echo', MessageType.CALL, 1);
  w.writeStructBegin();
  w.writeFieldBegin(TType.STRING, 1);
  w.writeString('x'.repeat(size));
  w.writeFieldStop();
  w.writeStructEnd();
  return encodeFrame({ framing: 'framed', protocol: 'binary' }, w.finishCopy());
}

async function run(
  size: number,
  calls: number,
  release: boolean,
  async: boolean,
): Promise<{ user: number; system: number }> {
  const up = new Pipe();
  const down = new Pipe();
  const client = new End(down, up);
  const server = new ThriftServer(
    {
      call: (req) => {
        if (release) req.release?.();
        const reply = { payload: req.frame.payload };
        return async ? Promise.resolve(reply) : reply;
      },
    },
    {
      idleTimeout: 60_000,
      readTimeout: 30_000,
    },
  );
  const served = server.handleConnection(new End(up, down));
  const frame = call(size);
  const once = async (): Promise<void> => {
    client.writev([frame]);
    let got = 0;
    while (got < frame.byteLength) {
      const c = await client.recv();
      if (c === null) throw new Error('closed');
      got += c.bytes.byteLength;
    }
  };
  for (let i = 0; i < 2000; i++) await once();
  const before = process.cpuUsage();
  for (let i = 0; i < calls; i++) await once();
  const used = process.cpuUsage(before);
  await client.close();
  await served;
  return { user: used.user / calls, system: used.system / calls };
}

const calls = Number(process.argv[2] ?? 200_000);
for (const async of [false, true]) {
  for (const size of [32, 10240]) {
    for (const release of [false, true]) {
      const r = await run(size, calls, release, async);
      console.log(
        `${async ? 'async' : 'sync '} ${size} B, ${release ? 'released' : 'kept    '}: ${calls} calls, user ${r.user.toFixed(2)} us/call, system ${r.system.toFixed(2)} us/call`,
      );
    }
  }
}
