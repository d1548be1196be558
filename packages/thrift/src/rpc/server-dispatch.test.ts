/**
 * A handler with `dispatch(request, responder)`: the server calls it instead of `call` and takes
 * the answer from `responder.respond()`, at once or later, with the same rules as a returned
 * promise's result (request order, one answer per call, the handler timeout, the connection's
 * end aborting running calls, every reply handed over released). Over scripted connections.
 */
import { describe, expect, it } from 'vitest';
import { echoCall } from '../../test/echo-call.js';
import { withTargetForms } from '../../test/target-forms.js';
import { TApplicationException, TApplicationExceptionType } from '../application-exception.js';
import { createReader } from '../protocol/factory.js';
import { MessageType, TType } from '../types.js';
import { FrameReader } from './frame-reader.js';
import {
  createReply,
  type ThriftHandler,
  type ThriftReply,
  type ThriftRequest,
  type ThriftResponder,
  ThriftServer,
} from './server.js';
import type { ThriftStream } from './stream.js';

/** A connection that delivers `input` in `chunk`-byte pieces and keeps what is written. */
function connection(input: Uint8Array, chunk: number) {
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
      for (const b of bufs) written.push(b.slice());
      return bufs.reduce((n, b) => n + b.byteLength, 0);
    },
    async close() {
      (s as { closed: boolean }).closed = true;
    },
  };
  return withTargetForms(s);
}

/** `count` framed binary calls of `echo(1: string text)` (texts "0", "1", ...), `type` CALL or ONEWAY. */
function calls(count: number, type: MessageType = MessageType.CALL): { bytes: Uint8Array; texts: string[] } {
  const texts = Array.from({ length: count }, (_, i) => `${i}`);
  const frames = texts.map((text, i) => echoCall(text, i, 'framed', type));
  return { bytes: Buffer.concat(frames), texts };
}

/** The echo reply of `request`; `onRelease` counts its release(). */
function echoReply(request: ThriftRequest, onRelease: () => void): ThriftReply {
  const r = request.reader();
  r.readFieldBegin();
  const text = r.readString();
  const reply = createReply(request, (w) => {
    w.writeStructBegin();
    w.writeFieldBegin(TType.STRING, 0);
    w.writeString(text);
    w.writeFieldStop();
    w.writeStructEnd();
  });
  return { ...reply, release: onRelease };
}

/** Each reply written on `stream`: its text, or "EXCEPTION <type> <message>". */
async function repliesOf(stream: { written: Uint8Array[] }): Promise<string[]> {
  const reader = new FrameReader(connection(Buffer.concat(stream.written), 4096));
  const out: string[] = [];
  for (let f = await reader.next(); f !== null; f = await reader.next()) {
    const r = createReader(f.protocol).reset(f.payload);
    const header = r.readMessageBegin();
    if (header.type === MessageType.EXCEPTION) {
      const e = TApplicationException.read(r);
      out.push(`EXCEPTION ${e.type} ${e.message}`);
      continue;
    }
    expect(header.type).toBe(MessageType.REPLY);
    r.readStructBegin();
    r.readFieldBegin();
    out.push(r.readString());
  }
  return out;
}

/** A handler whose `call` must never run: the server is to use `dispatch`. */
function dispatching(dispatch: (request: ThriftRequest, responder: ThriftResponder) => void): ThriftHandler {
  return {
    call() {
      throw new Error('call() ran although the handler has dispatch()');
    },
    dispatch,
  };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('ThriftServer with a dispatching handler', () => {
  it('takes answers given later through respond(), in request order whatever order they come in', async () => {
    const { bytes, texts } = calls(12);
    let released = 0;
    const waiting: [ThriftRequest, ThriftResponder][] = [];
    const stream = connection(bytes, 4096);
    const served = new ThriftServer(
      dispatching((request, responder) => {
        waiting.push([request, responder]);
      }),
      { maxConcurrentCalls: 4, replyOrder: 'request' },
    ).handleConnection(stream);
    // Four calls run at once; each batch is answered newest first.
    let answered = 0;
    while (answered < texts.length) {
      while (waiting.length < Math.min(4, texts.length - answered)) await tick();
      for (const [request, responder] of waiting.splice(0).reverse()) {
        responder.respond(echoReply(request, () => released++));
        answered++;
      }
    }
    await served;
    expect(await repliesOf(stream)).toEqual(texts);
    expect(released).toBe(texts.length);
  });

  it('takes an answer given inside dispatch, a thrown error and an exception given to respond()', async () => {
    const { bytes } = calls(3);
    const stream = connection(bytes, 4096);
    await new ThriftServer(
      dispatching((request, responder) => {
        const seq = request.header.seqId;
        if (seq === 0) responder.respond(echoReply(request, () => {}));
        else if (seq === 1) throw new Error('dispatch failed');
        else
          responder.respond(
            undefined,
            new TApplicationException(TApplicationExceptionType.UNKNOWN_METHOD, 'no such method'),
          );
      }),
    ).handleConnection(stream);
    expect(await repliesOf(stream)).toEqual([
      '0',
      `EXCEPTION ${TApplicationExceptionType.INTERNAL_ERROR} dispatch failed`,
      `EXCEPTION ${TApplicationExceptionType.UNKNOWN_METHOD} no such method`,
    ]);
  });

  it('drops a second answer and releases its reply; writes nothing for a ONEWAY call', async () => {
    const { bytes } = calls(2);
    let firstReleased = 0;
    let secondReleased = 0;
    const stream = connection(bytes, 4096);
    await new ThriftServer(
      dispatching((request, responder) => {
        responder.respond(echoReply(request, () => firstReleased++));
        responder.respond(echoReply(request, () => secondReleased++));
      }),
    ).handleConnection(stream);
    expect(await repliesOf(stream)).toEqual(['0', '1']);
    expect(firstReleased).toBe(2);
    expect(secondReleased).toBe(2);

    const oneway = connection(calls(3, MessageType.ONEWAY).bytes, 4096);
    let dispatched = 0;
    await new ThriftServer(
      dispatching((_request, responder) => {
        dispatched++;
        setImmediate(() => responder.respond(undefined));
      }),
    ).handleConnection(oneway);
    expect(dispatched).toBe(3);
    expect(oneway.written).toEqual([]);
  });

  it('never throws into the code that calls respond(): a bug while answering ends that connection, reported', async () => {
    const { bytes } = calls(2);
    const stream = connection(bytes, 4096);
    const reported: unknown[] = [];
    let answers: (() => void) | undefined;
    const served = new ThriftServer(
      dispatching((request, responder) => {
        if (request.header.seqId !== 0) return;
        // The second answer is dropped, and dropping releases its reply: a release that throws.
        answers = () => {
          responder.respond(echoReply(request, () => {}));
          responder.respond(
            echoReply(request, () => {
              throw new Error('release bug');
            }),
          );
        };
      }),
      { onConnectionError: (error) => reported.push(error) },
    ).handleConnection(stream);
    while (answers === undefined) await tick();
    // As an upstream's receive callback would: outside the server's own call stack.
    expect(() => answers!()).not.toThrow();
    await served;
    expect(stream.closed).toBe(true);
    expect(reported.map((e) => (e as Error).message)).toEqual(['release bug']);
  });

  it('answers a call not answered within the handler timeout, then drops and releases the late answer', async () => {
    const { bytes } = calls(1);
    let late: (() => void) | undefined;
    let released = 0;
    const stream = connection(bytes, 4096);
    await new ThriftServer(
      dispatching((request, responder) => {
        late = () => responder.respond(echoReply(request, () => released++));
      }),
      { handlerTimeout: 20 },
    ).handleConnection(stream);
    const replies = await repliesOf(stream);
    expect(replies).toHaveLength(1);
    expect(replies[0]).toMatch(/^EXCEPTION 6 handler took longer than 20 ms/);
    late!();
    expect(released).toBe(1);
    expect(await repliesOf(stream)).toEqual(replies);
  });

  it('aborts every running call when the peer ends; their answers are still written', async () => {
    const { bytes, texts } = calls(3);
    const running: [ThriftRequest, ThriftResponder][] = [];
    const aborted: number[] = [];
    let released = 0;
    const stream = connection(bytes, 4096);
    const served = new ThriftServer(
      dispatching((request, responder) => {
        running.push([request, responder]);
        const seq = request.header.seqId;
        request.onAbort?.({
          callAborted: () => {
            aborted.push(seq);
            // The middle call answers from inside its abort: the others are still aborted.
            if (seq === 1) responder.respond(echoReply(request, () => released++));
          },
        });
      }),
      { maxConcurrentCalls: 3 },
    ).handleConnection(stream);
    while (aborted.length < 3) await tick();
    expect(aborted.sort()).toEqual([0, 1, 2]);
    for (const [request, responder] of running)
      if (request.header.seqId !== 1) responder.respond(echoReply(request, () => released++));
    await served;
    expect((await repliesOf(stream)).sort()).toEqual(texts);
    expect(released).toBe(3);
  });

  it('keeps request order over many more calls than the queue was sized for while one is always outstanding', async () => {
    // 300 pipelined calls, 4 at once, each answered after a number of turns that depends on
    // its seq id: the request-order queue never empties until the end.
    const { bytes, texts } = calls(300);
    const stream = connection(bytes, 1 << 20);
    await new ThriftServer(
      dispatching((request, responder) => {
        let turns = (request.header.seqId * 7) % 5;
        const later = (): void => {
          if (turns-- > 0) setImmediate(later);
          else responder.respond(echoReply(request, () => {}));
        };
        later();
      }),
      { maxConcurrentCalls: 4, replyOrder: 'request' },
    ).handleConnection(stream);
    expect(await repliesOf(stream)).toEqual(texts);
  });
});
