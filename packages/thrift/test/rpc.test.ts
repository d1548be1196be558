/**
 * Server core and client over real loopback sockets: every framing and protocol, single and
 * multiplexed clients, headers, oneway, application exceptions, timeouts, and bad input that
 * closes only the offending connection.
 */
import type { Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createReply,
  createWriter,
  encodeFrame,
  type FramingName,
  MessageType,
  type ProtocolName,
  type ProtocolWriter,
  TApplicationException,
  TApplicationExceptionType,
  ThriftClient,
  type ThriftClientOptions,
  ThriftError,
  type ThriftHandler,
  type ThriftRequest,
  ThriftServer,
  type ThriftServerOptions,
  TType,
} from '../src/index.js';
import { echoCall } from './echo-call.js';
import { connect, listen, rawConnect } from './net-stream.js';

/** Reads args {1: string text, 2: i32 delayMs} and replies result {0: string} = text. */
const echo: ThriftHandler = {
  async call(req: ThriftRequest) {
    const r = req.reader();
    let text = '';
    let delay = 0;
    r.readStructBegin();
    for (;;) {
      const t = r.readFieldBegin();
      if (t === TType.STOP) break;
      if (r.fieldId === 1 && t === TType.STRING) text = r.readString();
      else if (r.fieldId === 2 && t === TType.I32) delay = r.readI32();
      else r.skip(t);
    }
    r.readStructEnd();
    if (delay > 0) await new Promise((res) => setTimeout(res, delay));
    if (req.header.name === 'fail')
      throw new TApplicationException(TApplicationExceptionType.UNKNOWN_METHOD, 'no such method');
    if (req.header.name === 'crash') throw new Error('boom');
    if (req.header.name === 'hang') {
      req.signal.addEventListener('abort', () => abortedSeqIds.push(req.header.seqId), { once: true });
      await new Promise(() => {});
    }
    if (req.header.type === MessageType.ONEWAY) {
      onewayTexts.push(text);
      return undefined;
    }
    const reply = createReply(req, (w) => {
      w.writeStructBegin();
      w.writeFieldBegin(TType.STRING, 0);
      w.writeString(`${text}|${req.frame.headers.get('tenant') ?? ''}|${req.frame.intHeaders.get(9) ?? ''}`);
      w.writeFieldStop();
      w.writeStructEnd();
    });
    return { ...reply, headers: new Map([['served-by', 'loch']]) };
  },
};
const onewayTexts: string[] = [];
const abortedSeqIds: number[] = [];

function args(text: string, delay = 0): (w: ProtocolWriter) => void {
  return (w) => {
    w.writeStructBegin();
    w.writeFieldBegin(TType.STRING, 1);
    w.writeString(text);
    if (delay) {
      w.writeFieldBegin(TType.I32, 2);
      w.writeI32(delay);
    }
    w.writeFieldStop();
    w.writeStructEnd();
  };
}

async function result(client: ThriftClient, method: string, text: string, delay = 0): Promise<string> {
  const res = await client.call(method, args(text, delay));
  const r = res!.reader();
  r.readStructBegin();
  expect(r.readFieldBegin()).toBe(TType.STRING);
  return r.readString();
}

let server: ThriftServer;
let port: number;
let errors: unknown[];
const clients: ThriftClient[] = [];
const sockets: Socket[] = [];

async function start(options: ThriftServerOptions = {}, handler: ThriftHandler = echo): Promise<void> {
  errors = [];
  server = new ThriftServer(handler, { ...options, onConnectionError: (e) => errors.push(e) });
  const listener = await listen();
  port = listener.port;
  void server.serve(listener);
}

async function client(options: ThriftClientOptions): Promise<ThriftClient> {
  const c = new ThriftClient(await connect(port), options);
  clients.push(c);
  return c;
}

/** Sends raw bytes and resolves once the server closes the socket. */
async function sendRaw(bytes: Uint8Array, end = false): Promise<void> {
  const s = await rawConnect(port);
  sockets.push(s);
  s.on('error', () => {});
  const closed = new Promise<void>((resolve) => s.on('close', () => resolve()));
  s.write(bytes);
  if (end) s.end();
  await closed;
}

function codes(): string[] {
  return errors.map((e) => (e instanceof ThriftError ? e.code : String(e)));
}

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const s of sockets.splice(0)) s.destroy();
  await server.close();
});

describe.each([
  ['framed', 'binary'],
  ['framed', 'compact'],
  ['unframed', 'binary'],
  ['unframed', 'compact'],
  ['theader', 'binary'],
  ['theader', 'compact'],
  ['ttheader', 'binary'],
  ['ttheader', 'compact'],
] as [FramingName, ProtocolName][])('%s %s', (framing, protocol) => {
  beforeEach(() => start({ maxConcurrentCalls: 16 }));

  it('serves calls one at a time and multiplexed, passing headers', async () => {
    const single = await client({
      framing,
      protocol,
      headers: new Map([['tenant', 't1']]),
      intHeaders: new Map([[9, 'Echo']]),
    });
    const headered = framing === 'theader' || framing === 'ttheader';
    expect(await result(single, 'echo', 'hello')).toBe(
      `hello|${headered ? 't1' : ''}|${framing === 'ttheader' ? 'Echo' : ''}`,
    );
    const res = await single.call('echo', args('x'));
    expect(res!.frame.framing).toBe(framing);
    expect(res!.frame.protocol).toBe(protocol);
    if (headered) expect(res!.frame.headers.get('served-by')).toBe('loch');

    const mux = await client({ framing, protocol, multiplexed: true });
    // Later calls finish first: replies arrive out of order and are matched by seq id.
    const texts = Array.from({ length: 12 }, (_, i) => `m${i}`);
    const out = await Promise.all(texts.map((t, i) => result(mux, 'echo', t, (12 - i) * 3)));
    expect(out.map((s) => s.split('|')[0])).toEqual(texts);
  });

  it('delivers oneway calls and sends application exceptions back', async () => {
    const c = await client({ framing, protocol });
    onewayTexts.length = 0;
    expect(await c.call('note', args('one'), { oneway: true })).toBeUndefined();
    await expect(c.call('fail', args(''))).rejects.toMatchObject({
      name: 'TApplicationException',
      type: TApplicationExceptionType.UNKNOWN_METHOD,
      message: 'no such method',
    });
    await expect(c.call('crash', args(''))).rejects.toMatchObject({
      type: TApplicationExceptionType.INTERNAL_ERROR,
      message: 'boom',
    });
    expect((await result(c, 'echo', 'after')).split('|')[0]).toBe('after');
    expect(onewayTexts).toEqual(['one']);
  });
});

describe('bad input closes only the offending connection', () => {
  beforeEach(() => start({ maxFrameSize: 4096 }));

  function framedCall(protocol: ProtocolName, writeBody: (w: ProtocolWriter) => void): Uint8Array {
    const w = createWriter(protocol);
    w.writeMessageBegin('echo', MessageType.CALL, 1);
    writeBody(w);
    return encodeFrame({ framing: 'framed', protocol }, w.finishCopy());
  }

  it.each([
    ['garbage', new TextEncoder().encode('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 'ERR_THRIFT_UNKNOWN_FRAMING'],
    [
      'a negative frame length',
      new Uint8Array([0xff, 0xff, 0xff, 0xfe, 0x80, 0x01, 0, 1]),
      'ERR_THRIFT_FRAME_SIZE',
    ],
    ['a zero frame length', new Uint8Array([0, 0, 0, 0, 0x80, 0x01, 0, 1]), 'ERR_THRIFT_FRAME_SIZE'],
    ['an oversized frame length', new Uint8Array([0, 0, 0x10, 1, 0x80, 0x01, 0, 1]), 'ERR_THRIFT_FRAME_SIZE'],
    [
      'an unknown THeader protocol id',
      new Uint8Array([0, 0, 0, 14, 0x0f, 0xff, 0, 0, 0, 0, 0, 1, 0, 1, 7, 0, 0, 0]),
      'ERR_THRIFT_UNKNOWN_PROTOCOL',
    ],
    [
      'a bad varint (compact, unframed)',
      new Uint8Array([0x82, 0x21, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
      'ERR_THRIFT_BAD_VARINT',
    ],
    [
      'a depth bomb (unframed)',
      (() => {
        const w = createWriter('binary');
        w.writeMessageBegin('echo', MessageType.CALL, 1);
        w.writeStructBegin();
        w.writeFieldBegin(TType.LIST, 1);
        for (let i = 0; i < 500; i++) w.writeListBegin(TType.LIST, 1);
        return w.finishCopy();
      })(),
      'ERR_THRIFT_DEPTH_LIMIT',
    ],
    [
      'a bad message header inside a frame',
      framedCall('binary', () => {}).map((b, i) => (i === 7 ? 9 : b)),
      'ERR_THRIFT_BAD_VERSION',
    ],
  ])('%s', async (_name, bytes, code) => {
    const good = await client({ framing: 'framed', protocol: 'binary', multiplexed: true });
    const slow = result(good, 'echo', 'survivor', 20);
    await sendRaw(bytes);
    expect(codes()).toEqual([code]);
    expect((await slow).split('|')[0]).toBe('survivor');
    expect((await result(good, 'echo', 'again')).split('|')[0]).toBe('again');
  });

  it('a message truncated by the end of the stream', async () => {
    const frame = framedCall('compact', args('cut short'));
    await sendRaw(frame.subarray(0, frame.byteLength - 3), true);
    expect(codes()).toEqual(['ERR_THRIFT_TRUNCATED']);
  });
});

/** A handler that answers at once (a plain value, or a synchronous throw): no promise. */
const syncHandler: ThriftHandler = {
  call(req: ThriftRequest) {
    if (req.header.name === 'fail')
      throw new TApplicationException(TApplicationExceptionType.UNKNOWN_METHOD, 'no such method');
    return createReply(req, (w) => {
      w.writeStructBegin();
      w.writeFieldBegin(TType.STRING, 0);
      w.writeString(`sync:${req.header.name}`);
      w.writeFieldStop();
      w.writeStructEnd();
    });
  },
};

describe('a handler that answers synchronously', () => {
  it('is served, its throw sent back, with a handler timeout set', async () => {
    await start({ handlerTimeout: 1_000 }, syncHandler);
    const c = await client({ framing: 'framed', protocol: 'compact' });
    expect(await result(c, 'echo', '')).toBe('sync:echo');
    await expect(c.call('fail', args(''))).rejects.toMatchObject({
      type: TApplicationExceptionType.UNKNOWN_METHOD,
    });
    expect(await result(c, 'again', '')).toBe('sync:again');
  });
});

describe('timeouts', () => {
  it('answers INTERNAL_ERROR when the handler is too slow, and the connection goes on', async () => {
    await start({ handlerTimeout: 30 });
    const c = await client({ framing: 'framed', protocol: 'binary' });
    await expect(c.call('hang', args(''))).rejects.toMatchObject({
      type: TApplicationExceptionType.INTERNAL_ERROR,
    });
    expect((await result(c, 'echo', 'next')).split('|')[0]).toBe('next');
  });

  it('closes idle connections and those that stall inside a message', async () => {
    await start({ idleTimeout: 40, readTimeout: 40 });
    await sendRaw(new Uint8Array(0));
    await sendRaw(new Uint8Array([0, 0, 0, 40, 0x80, 0x01]));
    expect(codes()).toEqual(['ERR_THRIFT_TIMEOUT', 'ERR_THRIFT_TIMEOUT']);
  });

  it('rejects a call whose reply does not come in time, and the ones after it', async () => {
    await start({ maxConcurrentCalls: 4 });
    const c = await client({ framing: 'framed', protocol: 'binary', timeout: 40 });
    await expect(c.call('hang', args(''))).rejects.toMatchObject({ code: 'ERR_THRIFT_TIMEOUT' });
    await expect(c.call('echo', args('late'))).rejects.toMatchObject({ code: 'ERR_THRIFT_CLOSED' });
    const m = await client({ framing: 'framed', protocol: 'binary', multiplexed: true, timeout: 40 });
    await expect(m.call('hang', args(''))).rejects.toMatchObject({ code: 'ERR_THRIFT_TIMEOUT' });
    // Multiplexed: the connection stays usable for other calls.
    expect((await result(m, 'echo', 'still')).split('|')[0]).toBe('still');
  });
});

describe('reply order of concurrent calls on one connection', () => {
  /** Holds every call until six came, then finishes them last first. */
  const lastFirst: ThriftHandler = {
    call(req: ThriftRequest) {
      return new Promise((resolve) => {
        held.push(() => resolve(createReply(req, (w) => args('')(w))));
        if (held.length === 6)
          setImmediate(() => {
            for (const finish of held.splice(0).reverse()) finish();
          });
      });
    },
  };
  const held: (() => void)[] = [];

  /** Pipelines six framed calls in one write and resolves the seq ids in the order replied. */
  async function replyOrder(): Promise<number[]> {
    const s = await rawConnect(port);
    sockets.push(s);
    const frames = [1, 2, 3, 4, 5, 6].map((seq) => echoCall(`c${seq}`, seq));
    s.write(Buffer.concat(frames));
    const seqIds: number[] = [];
    let buf = Buffer.alloc(0);
    return new Promise((resolve, reject) => {
      s.on('error', reject);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
          const frame = buf.subarray(4, 4 + buf.readUInt32BE(0));
          buf = buf.subarray(4 + frame.length);
          // Binary strict header: version/type, name length, name, seq id.
          seqIds.push(frame.readInt32BE(8 + frame.readInt32BE(4)));
          if (seqIds.length === 6) resolve(seqIds);
        }
      });
    });
  }

  it("'request' writes replies in the order the calls came, though later ones finish first", async () => {
    await start({ maxConcurrentCalls: 8, replyOrder: 'request' }, lastFirst);
    expect(await replyOrder()).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("'completion' (the default) writes them as they finish", async () => {
    await start({ maxConcurrentCalls: 8 }, lastFirst);
    expect(await replyOrder()).toEqual([6, 5, 4, 3, 2, 1]);
  });
});

describe("a running call's signal when its connection ends", () => {
  /** Calls started and not finished, by seq id: finish(reply text) answers one. */
  let running: Map<number, { finish: () => void; signal: ThriftRequest['signal'] }>;
  let started: (seqId: number) => void;
  let aborted: number[];
  let abortedOne: () => void;
  /** Holds each call until finish() or until its signal aborts (it then answers 'aborted'). */
  const holding: ThriftHandler = {
    call(req: ThriftRequest) {
      return new Promise((resolve) => {
        const answer = (text: string) => resolve(createReply(req, (w) => args(text)(w)));
        // The signal is read only once the call runs: made lazily, it must still abort.
        setImmediate(() => {
          const signal = req.signal;
          running.set(req.header.seqId, { finish: () => answer('done'), signal });
          signal.addEventListener(
            'abort',
            () => {
              aborted.push(req.header.seqId);
              answer('aborted');
              abortedOne();
            },
            { once: true },
          );
          started(req.header.seqId);
        });
      });
    },
  };

  function callBytes(seqId: number): Uint8Array {
    const w = createWriter('binary');
    w.writeMessageBegin('hold', MessageType.CALL, seqId);
    args('')(w);
    w.writeMessageEnd();
    return encodeFrame({ framing: 'framed', protocol: 'binary' }, w.finishCopy());
  }

  beforeEach(() => {
    running = new Map();
    aborted = [];
  });

  function nextStart(): Promise<number> {
    return new Promise((resolve) => {
      started = resolve;
    });
  }
  function nextAbort(): Promise<void> {
    return new Promise((resolve) => {
      abortedOne = resolve;
    });
  }

  it.each([
    ['one call at a time', 'end', {}],
    ['one call at a time', 'destroy', {}],
    ['one call at a time', 'reset', {}],
    ['concurrent calls', 'end', { maxConcurrentCalls: 4 }],
    ['concurrent calls', 'destroy', { maxConcurrentCalls: 4 }],
  ] as const)('%s: the peer closing (%s) aborts it', async (_, how, options) => {
    await start(options, holding);
    const s = await rawConnect(port);
    sockets.push(s);
    s.on('error', () => {});
    const first = nextStart();
    s.write(callBytes(7));
    expect(await first).toBe(7);
    const abort = nextAbort();
    if (how === 'end') s.end();
    else if (how === 'destroy') s.destroy();
    else s.resetAndDestroy();
    await abort;
    expect(aborted).toEqual([7]);
    expect(running.get(7)!.signal.aborted).toBe(true);
  });

  it('tells an onAbort listener, without the signal being made', async () => {
    const told: number[] = [];
    let toldOne: () => void = () => {};
    const listening: ThriftHandler = {
      call(req: ThriftRequest) {
        req.onAbort?.({
          callAborted: () => {
            told.push(req.header.seqId);
            toldOne();
          },
        });
        started(req.header.seqId);
        return new Promise(() => {});
      },
    };
    for (const options of [{}, { maxConcurrentCalls: 4 }]) {
      told.length = 0;
      await start(options, listening);
      const s = await rawConnect(port);
      s.on('error', () => {});
      const first = nextStart();
      s.write(callBytes(5));
      await first;
      const toldPromise = new Promise<void>((resolve) => {
        toldOne = resolve;
      });
      s.destroy();
      await toldPromise;
      expect(told).toEqual([5]);
      await server.close();
    }
  });

  it('one call at a time: server.close() aborts it', async () => {
    await start({}, holding);
    const s = await rawConnect(port);
    sockets.push(s);
    s.on('error', () => {});
    const first = nextStart();
    s.write(callBytes(3));
    await first;
    const abort = nextAbort();
    await server.close();
    await abort;
    expect(aborted).toEqual([3]);
  });

  it('one call at a time: a call that arrives while one runs is kept and answered after it; the next call is watched too', async () => {
    await start({}, holding);
    const c = await client({ framing: 'framed', protocol: 'binary' });
    // Two calls on one connection; the client writes the second while the first is held.
    const first = nextStart();
    const one = c.call('hold', args(''));
    const seqOne = await first;
    const second = nextStart();
    const two = c.call('hold', args(''));
    // The second is read (by the watch) but not run before the first is answered.
    await new Promise((resolve) => setImmediate(resolve));
    expect([...running.keys()]).toEqual([seqOne]);
    running.get(seqOne)!.finish();
    expect((await one)?.header.seqId).toBe(seqOne);
    const seqTwo = await second;
    running.get(seqTwo)!.finish();
    expect((await two)?.header.seqId).toBe(seqTwo);
    expect(aborted).toEqual([]);
    // And the connection is still watched during the next call.
    const third = nextStart();
    void c.call('hold', args('')).catch(() => {});
    const seqThree = await third;
    const abort = nextAbort();
    await c.close();
    await abort;
    expect(aborted).toEqual([seqThree]);
  });
});
