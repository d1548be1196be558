/**
 * The `framings` option (a proxy refuses unframed binary before buffering it) and what a
 * handler and `onConnectionError` learn of the connection (`request.stream`, the stream
 * argument), over scripted streams.
 */
import { describe, expect, it } from 'vitest';
import { withTargetForms } from '../../test/target-forms.js';
import { ThriftTransportError } from '../errors.js';
import { createWriter } from '../protocol/factory.js';
import { encodeFrame } from '../transport/codec.js';
import type { FramingName } from '../transport/frame.js';
import { MessageType } from '../types.js';
import { FrameReader } from './frame-reader.js';
import { createReply, type ThriftRequest, ThriftServer } from './server.js';
import type { ThriftRecvChunk, ThriftServerStream, ThriftStream } from './stream.js';

function message(name: string): Uint8Array {
  const w = createWriter('binary');
  w.writeMessageBegin(name, MessageType.CALL, 3);
  w.writeStructBegin();
  w.writeFieldStop();
  w.writeStructEnd();
  w.writeMessageEnd();
  return w.finish();
}

/** Delivers `chunks` one per recv, then the end of stream; records what is written. */
function scripted(chunks: Uint8Array[]): ThriftServerStream & { written: Uint8Array[]; reads: number } {
  const s = {
    written: [] as Uint8Array[],
    reads: 0,
    closed: false,
    async recv(): Promise<ThriftRecvChunk | null> {
      const bytes = chunks[s.reads++];
      return bytes === undefined ? null : { bytes, release() {} };
    },
    async writev(bufs: readonly Uint8Array[]): Promise<number> {
      s.written.push(...bufs);
      return bufs.reduce((n, b) => n + b.byteLength, 0);
    },
    async close(): Promise<void> {
      s.closed = true;
    },
  };
  return withTargetForms(s);
}

const PROXY_FRAMINGS: FramingName[] = ['framed', 'theader', 'ttheader'];

describe('accepted framings', () => {
  it('refuses a framing not listed as soon as its first bytes arrive', async () => {
    const whole = message('ping');
    // Only the first 4 bytes of an unframed message: refused without waiting for the rest.
    const stream = scripted([whole.subarray(0, 4)]);
    const reader = new FrameReader(stream, { framings: PROXY_FRAMINGS });
    const error = await reader.next().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ThriftTransportError);
    expect(error).toMatchObject({ code: 'ERR_THRIFT_FRAMING_REFUSED' });
    expect((error as Error).message).toBe(
      'unframed binary is not accepted here (accepted: framed, theader, ttheader)',
    );
    expect(stream.reads).toBe(1);
  });

  it('reads the framings it lists', async () => {
    for (const framing of PROXY_FRAMINGS) {
      const bytes = encodeFrame({ framing, protocol: 'binary', seqId: 3 }, message('ping'));
      const reader = new FrameReader(scripted([bytes]), { framings: PROXY_FRAMINGS });
      expect((await reader.next())?.framing).toBe(framing);
    }
  });
});

describe('the connection of a call', () => {
  it('is the request stream, and onConnectionError gets it with the error', async () => {
    const seen: ThriftStream[] = [];
    const errors: [unknown, ThriftStream | undefined][] = [];
    const server = new ThriftServer(
      {
        call(req: ThriftRequest) {
          seen.push(req.stream);
          return createReply(req, (w) => {
            w.writeStructBegin();
            w.writeFieldStop();
            w.writeStructEnd();
          });
        },
      },
      { framings: PROXY_FRAMINGS, onConnectionError: (e, s) => errors.push([e, s]) },
    );
    const good = scripted([encodeFrame({ framing: 'framed', protocol: 'binary' }, message('ping'))]);
    await server.handleConnection(good);
    expect(seen).toEqual([good]);
    expect(good.written.length).toBeGreaterThan(0);
    expect(errors).toEqual([]);

    const unframed = scripted([message('ping')]);
    await server.handleConnection(unframed);
    expect(errors).toHaveLength(1);
    expect(errors[0]![0]).toMatchObject({ code: 'ERR_THRIFT_FRAMING_REFUSED' });
    expect(errors[0]![1]).toBe(unframed);
    expect(unframed.closed).toBe(true);
    expect(unframed.written).toEqual([]);
  });
});
