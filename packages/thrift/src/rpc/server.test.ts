/**
 * ThriftServer.serve() on a listener that fails the way a worker out of descriptors does: the
 * failures are reported and accepting backs off instead of spinning; close() ends it. A scripted
 * listener, because a real one cannot be made to fail with EMFILE on demand. And the memory
 * contract of handleConnection over a scripted connection: released calls let the reader reuse
 * its buffer, replies are released once written.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { echoCall } from '../../test/echo-call.js';
import { withTargetForms } from '../../test/target-forms.js';
import { BinaryWriter } from '../protocol/binary.js';
import { createReader } from '../protocol/factory.js';
import { encodeFrame } from '../transport/codec.js';
import { MessageType, TType } from '../types.js';
import { FrameReader } from './frame-reader.js';
import { createReply, type ThriftHandler, ThriftServer } from './server.js';
import type {
  ThriftListener,
  ThriftRecvChunk,
  ThriftRecvTarget,
  ThriftServerStream,
  ThriftStream,
  ThriftWriteTarget,
} from './stream.js';

class FailingListener implements ThriftListener<ThriftServerStream> {
  accepts = 0;
  private pending: ((e: unknown) => void) | null = null;

  constructor(private failures: number) {}

  accept(): Promise<ThriftServerStream> {
    this.accepts++;
    if (this.failures > 0) {
      this.failures--;
      return Promise.reject(Object.assign(new Error('accept: too many open files'), { code: 'EMFILE' }));
    }
    return new Promise((_, reject) => {
      this.pending = reject;
    });
  }

  async close(): Promise<void> {
    this.pending?.(Object.assign(new Error('accept cancelled'), { code: 'ECANCELED' }));
  }
}

describe('ThriftServer.serve', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('reports accept failures and backs off instead of spinning; close() ends the loop', async () => {
    const errors: unknown[] = [];
    const server = new ThriftServer({ call: () => undefined }, { onConnectionError: (e) => errors.push(e) });
    const listener = new FailingListener(1000);
    const serving = server.serve(listener);
    await vi.advanceTimersByTimeAsync(1_000);
    // Back-off 10, 20, 40 ... 640 ms: 7 accepts in the first 1000 ms (a spinning loop makes 1000).
    expect(listener.accepts).toBe(7);
    expect(errors).toHaveLength(7);
    expect((errors[0] as { code: string }).code).toBe('EMFILE');
    await server.close();
    await vi.advanceTimersByTimeAsync(1_000);
    await serving;
    expect(listener.accepts).toBe(7);
  });

  it('a listener closed by close() ends serve() without an error', async () => {
    const errors: unknown[] = [];
    const server = new ThriftServer({ call: () => undefined }, { onConnectionError: (e) => errors.push(e) });
    const listener = new FailingListener(0);
    const serving = server.serve(listener);
    await vi.advanceTimersByTimeAsync(0);
    await server.close();
    await serving;
    expect(errors).toEqual([]);
    expect(server.connections).toBe(0);
  });
});

/** A connection that delivers `input` in `chunk`-byte pieces and keeps what is written. */
function connection(input: Uint8Array, chunk: number, failWrites = false) {
  let at = 0;
  const written: Uint8Array[] = [];
  const s: ThriftStream & { written: Uint8Array[] } = {
    written,
    closed: false,
    async recv() {
      if (at >= input.byteLength) return null;
      const bytes = input.slice(at, at + chunk);
      at += chunk;
      return { bytes, release: () => {} };
    },
    async writev(bufs) {
      if (failWrites) throw new Error('connection reset');
      for (const b of bufs) written.push(b.slice());
      return bufs.reduce((n, b) => n + b.byteLength, 0);
    },
    async close() {
      (s as { closed: boolean }).closed = true;
    },
  };
  return withTargetForms(s);
}

/** `count` framed binary calls of `echo(1: string text)`, texts of `size` bytes. */
function calls(count: number, size: number): { bytes: Uint8Array; texts: string[] } {
  const texts = Array.from({ length: count }, (_, i) => `${i}`.padEnd(size, 'x'));
  const frames = texts.map((text, i) => echoCall(text, i));
  return { bytes: Buffer.concat(frames), texts };
}

/** Echoes the text; records the memory each call's payload lives in. */
function echo(memory: Set<ArrayBufferLike>, release: boolean, lend?: () => void): ThriftHandler {
  return {
    call(request) {
      memory.add(request.frame.payload.buffer);
      const r = request.reader();
      r.readFieldBegin();
      const text = r.readString();
      if (release) request.release?.();
      const reply = createReply(request, (w) => {
        w.writeStructBegin();
        w.writeFieldBegin(TType.STRING, 0);
        w.writeString(text);
        w.writeFieldStop();
        w.writeStructEnd();
      });
      return lend === undefined ? reply : { ...reply, release: lend };
    },
  };
}

/** The texts of the replies written on `stream`. */
async function repliesOf(stream: { written: Uint8Array[] }): Promise<string[]> {
  const reader = new FrameReader(connection(Buffer.concat(stream.written), 4096));
  const texts: string[] = [];
  for (let f = await reader.next(); f !== null; f = await reader.next()) {
    const r = createReader(f.protocol).reset(f.payload);
    expect(r.readMessageBegin().type).toBe(MessageType.REPLY);
    r.readStructBegin();
    r.readFieldBegin();
    texts.push(r.readString());
  }
  return texts;
}

describe('ThriftServer frame memory', () => {
  it('receives the next calls into the same memory once a handler released a call and its reply is written', async () => {
    // 200 calls of 1 KiB: 200 KiB, more than three of the reader's 64 KiB buffers.
    const { bytes, texts } = calls(200, 1000);
    const released = new Set<ArrayBufferLike>();
    const stream = connection(bytes, 1500);
    await new ThriftServer(echo(released, true)).handleConnection(stream);
    expect(await repliesOf(stream)).toEqual(texts);
    expect(released.size).toBe(1);

    // Without release() every byte goes to new memory, as before.
    const kept = new Set<ArrayBufferLike>();
    const other = connection(bytes, 1500);
    await new ThriftServer(echo(kept, false)).handleConnection(other);
    expect(await repliesOf(other)).toEqual(texts);
    expect(kept.size).toBeGreaterThan(3);
  });

  it("reads a call's message header as the reader does: name, type and seq id of strict and old-style headers, and maxStringLength on the name", async () => {
    const names: string[] = [];
    const seqIds: number[] = [];
    const handler: ThriftHandler = {
      call(request) {
        names.push(request.header.name);
        seqIds.push(request.header.seqId);
        expect(request.header.type).toBe(MessageType.CALL);
        const r = request.reader();
        r.readFieldBegin();
        expect(r.readString()).toBe('text');
        return createReply(request, (w) => {
          w.writeStructBegin();
          w.writeFieldStop();
          w.writeStructEnd();
        });
      },
    };
    // Strict headers (the writer's), then an old-style one (name first): both read alike.
    const old = new BinaryWriter({ strictWrite: false });
    old.writeMessageBegin('echo', MessageType.CALL, 7);
    old.writeStructBegin();
    old.writeFieldBegin(TType.STRING, 1);
    old.writeString('text');
    old.writeFieldStop();
    old.writeStructEnd();
    const bytes = Buffer.concat([
      echoCall('text', 5),
      echoCall('text', -3),
      encodeFrame({ framing: 'framed', protocol: 'binary' }, old.finishCopy()),
    ]);
    // (An old-style payload starts with the name's length: its protocol is configured, not sniffed.)
    await new ThriftServer(handler, { protocol: 'binary' }).handleConnection(connection(bytes, 4096));
    expect(names).toEqual(['echo', 'echo', 'echo']);
    expect(seqIds).toEqual([5, -3, 7]);
    // A name longer than maxStringLength is refused, whichever way the header is read.
    const errors: unknown[] = [];
    names.length = 0;
    await new ThriftServer(handler, {
      maxStringLength: 3,
      onConnectionError: (e) => errors.push(e),
    }).handleConnection(connection(echoCall('text', 1), 4096));
    expect(names).toEqual([]);
    expect((errors[0] as { code?: string }).code).toBe('ERR_THRIFT_SIZE_LIMIT');
  });

  it('never overwrites the bytes of a call that was not released, whatever later calls release', async () => {
    // Call 0 keeps its frame (not released); every later call is released.
    const { bytes } = calls(200, 1000);
    let kept: Uint8Array | undefined;
    let copy: Uint8Array | undefined;
    const handler: ThriftHandler = {
      call(request) {
        if (request.header.seqId === 0) {
          kept = request.frame.payload;
          copy = kept.slice();
        } else request.release?.();
        return createReply(request, (w) => {
          w.writeStructBegin();
          w.writeFieldStop();
          w.writeStructEnd();
        });
      },
    };
    await new ThriftServer(handler).handleConnection(connection(bytes, 1500));
    expect(kept).toEqual(copy);
  });

  it("calls a reply's release once it is written, and after a failed write only once the stream is closed", async () => {
    const { bytes } = calls(3, 10);
    let lent = 0;
    const ok = connection(bytes, 1500);
    await new ThriftServer(echo(new Set(), false, () => lent++)).handleConnection(ok);
    expect(ok.written.length).toBeGreaterThan(0);
    expect(lent).toBe(3);

    // Every reply handed to the server is released (a relay's may hold a receive buffer of the
    // runtime's pool), but a failed write's only once no operation of the stream is pending.
    for (const pipelined of [1, 4]) {
      let released = 0;
      let beforeClose = 0;
      const failing = connection(bytes, 1500, true);
      await new ThriftServer(
        echo(new Set(), false, () => {
          released++;
          if (!failing.closed) beforeClose++;
        }),
        {
          maxConcurrentCalls: pipelined,
          replyOrder: 'request',
        },
      ).handleConnection(failing);
      await new Promise((resolve) => setImmediate(resolve));
      expect(failing.closed).toBe(true);
      expect(beforeClose).toBe(0);
      // Answered: one call, or the three pipelined ones (written in one failing write or not yet).
      expect(released).toBe(pipelined === 1 ? 1 : 3);
    }
  });

  it("calls a pipelined reply's release once it is written", async () => {
    const { bytes, texts } = calls(5, 10);
    for (const replyOrder of ['request', 'completion'] as const) {
      let lent = 0;
      const stream = connection(bytes, 1500);
      await new ThriftServer(
        echo(new Set(), false, () => lent++),
        {
          maxConcurrentCalls: 3,
          replyOrder,
        },
      ).handleConnection(stream);
      expect((await repliesOf(stream)).sort()).toEqual([...texts].sort());
      expect(lent).toBe(5);
    }
  });
});

/**
 * A connection whose promise forms (recv, writev) throw: the server must serve it on the
 * promise-free pair alone. Delivers `input` in `chunk`-byte pieces, one per recvTo, at the next
 * microtask (as the runtime does); counts the bytes handed out.
 */
function callbackOnly(input: Uint8Array, chunk: number) {
  let at = 0;
  const s = {
    written: [] as Uint8Array[],
    delivered: 0,
    closed: false,
    recv(): Promise<null> {
      throw new Error('recv() used');
    },
    writev(): Promise<number> {
      throw new Error('writev() used');
    },
    recvTo(target: ThriftRecvTarget): void {
      queueMicrotask(() => {
        if (at >= input.byteLength) return target.onRecv(null, undefined);
        const bytes = input.slice(at, at + chunk);
        at += bytes.byteLength;
        s.delivered = at;
        target.onRecv({ bytes, release() {} }, undefined);
      });
    },
    writeTo(one: Uint8Array | readonly Uint8Array[], target: ThriftWriteTarget): void {
      const data = one instanceof Uint8Array ? [one] : one;
      for (const b of data) s.written.push(b.slice());
      queueMicrotask(() => target.onWritten(undefined));
    },
    async close(): Promise<void> {
      s.closed = true;
    },
  };
  return s;
}

describe('ThriftServer connection I/O', () => {
  it("serves calls on the stream's recvTo/writeTo alone: no promise-form receive or write", async () => {
    const { bytes, texts } = calls(50, 100);
    const errors: unknown[] = [];
    for (const maxConcurrentCalls of [1, 4]) {
      const stream = callbackOnly(bytes, 700);
      const server = new ThriftServer(
        { call: async (request) => echo(new Set(), true).call(request) },
        { maxConcurrentCalls, replyOrder: 'request', onConnectionError: (e) => errors.push(e) },
      );
      await server.handleConnection(stream);
      expect(await repliesOf(stream)).toEqual(texts);
    }
    expect(errors).toEqual([]);
  });

  it('receives at most 16 KiB ahead of a running call, answers the calls received, and aborts a call running when the peer ends', async () => {
    // ~200 KiB of pipelined calls behind one that waits.
    const { bytes, texts } = calls(200, 1000);
    const stream = callbackOnly(bytes, 4096);
    let go: () => void = () => {};
    const waiting = new Promise<void>((resolve) => {
      go = resolve;
    });
    const server = new ThriftServer({
      async call(request) {
        if (request.header.seqId === 0) await waiting;
        return echo(new Set(), true).call(request);
      },
    });
    const served = server.handleConnection(stream);
    for (let i = 0; i < 100; i++) await new Promise((resolve) => setImmediate(resolve));
    // The first call's frame and at most 16 KiB (plus one chunk) past it.
    expect(stream.delivered).toBeGreaterThan(16 * 1024);
    expect(stream.delivered).toBeLessThan(1100 + 16 * 1024 + 4096);
    go();
    await served;
    expect(await repliesOf(stream)).toEqual(texts);

    // One call, then the end of the stream while it runs: the call is told (onAbort).
    const one = callbackOnly(calls(1, 10).bytes, 4096);
    let aborted = 0;
    await new ThriftServer({
      call(request) {
        return new Promise((resolve) => {
          request.onAbort?.({
            callAborted: () => {
              aborted++;
              resolve(undefined);
            },
          });
        });
      },
    }).handleConnection(one);
    expect(aborted).toBe(1);
    expect(one.closed).toBe(true);
  });
});

describe('ThriftServer read timeout', () => {
  it('counts readTimeout from the first byte of a message: a peer dribbling a byte at a time is cut', async () => {
    // One call of ~60 bytes, a byte every 30 ms (~1.8 s): each byte comes well inside the
    // 150 ms readTimeout, the whole message does not.
    const input = calls(1, 20).bytes;
    let at = 0;
    let pending: ThriftRecvTarget | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stream = {
      written: [] as Uint8Array[],
      closed: false,
      recv: (): Promise<ThriftRecvChunk | null> =>
        new Promise((resolve, reject) =>
          stream.recvTo({ onRecv: (chunk, error) => (error === undefined ? resolve(chunk) : reject(error)) }),
        ),
      writev: async (data: readonly Uint8Array[]): Promise<number> => {
        for (const b of data) stream.written.push(b.slice());
        return data.length;
      },
      recvTo(target: ThriftRecvTarget): void {
        pending = target;
        timer = setTimeout(() => {
          pending = undefined;
          if (at >= input.byteLength) return target.onRecv(null, undefined);
          const bytes = input.slice(at, at + 1);
          at++;
          target.onRecv({ bytes, release() {} }, undefined);
        }, 30);
      },
      writeTo(one: Uint8Array | readonly Uint8Array[], target: ThriftWriteTarget): void {
        const data = one instanceof Uint8Array ? [one] : one;
        for (const b of data) stream.written.push(b.slice());
        queueMicrotask(() => target.onWritten(undefined));
      },
      async close(): Promise<void> {
        stream.closed = true;
        clearTimeout(timer);
        const target = pending;
        pending = undefined;
        if (target !== undefined)
          queueMicrotask(() =>
            target.onRecv(null, Object.assign(new Error('closed'), { code: 'ECANCELED' })),
          );
      },
    };
    const errors: unknown[] = [];
    await new ThriftServer(echo(new Set(), true), {
      readTimeout: 150,
      onConnectionError: (e) => errors.push(e),
    }).handleConnection(stream);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      code: 'ERR_THRIFT_TIMEOUT',
      message: 'message not complete after 150 ms',
    });
    expect(at).toBeLessThan(input.byteLength);
    expect(stream.written).toEqual([]);
  });

  it('gives each message its own readTimeout: pipelined calls split across chunks go on past it', async () => {
    // 100 calls of ~130 bytes in 100-byte chunks, one every 15 ms (~2 s): a message is always
    // partly buffered, each completes well within the 1 s readTimeout, the run does not.
    const { bytes: input, texts } = calls(100, 90);
    let at = 0;
    const stream = {
      written: [] as Uint8Array[],
      closed: false,
      recv: (): Promise<null> => Promise.reject(new Error('recv() used')),
      writev: (): Promise<number> => Promise.reject(new Error('writev() used')),
      recvTo(target: ThriftRecvTarget): void {
        setTimeout(() => {
          if (stream.closed)
            return target.onRecv(null, Object.assign(new Error('closed'), { code: 'ECANCELED' }));
          if (at >= input.byteLength) return target.onRecv(null, undefined);
          const bytes = input.slice(at, at + 100);
          at += bytes.byteLength;
          target.onRecv({ bytes, release() {} }, undefined);
        }, 15);
      },
      writeTo(one: Uint8Array | readonly Uint8Array[], target: ThriftWriteTarget): void {
        const data = one instanceof Uint8Array ? [one] : one;
        for (const b of data) stream.written.push(b.slice());
        queueMicrotask(() => target.onWritten(undefined));
      },
      async close(): Promise<void> {
        stream.closed = true;
      },
    };
    const errors: unknown[] = [];
    await new ThriftServer(echo(new Set(), true), {
      readTimeout: 1000,
      maxConcurrentCalls: 4,
      replyOrder: 'request',
      onConnectionError: (e) => errors.push(e),
    }).handleConnection(stream);
    expect(errors).toEqual([]);
    expect(await repliesOf(stream)).toEqual(texts);
  });
});
