/**
 * A route's call rewrite (rewrite.ts) on decoded frames: info headers (string and TTHeader
 * integer ones) removed, set and added,
 * a multiplexed method renamed and the reply's name given back (full, or bare as Apache's
 * TMultiplexedProcessor answers), the framing and protocol spoken upstream (the reply
 * transcoded back), and a route without rewrite keys costing nothing.
 */
import {
  createReader,
  createWriter,
  decodeFrame,
  encodeFrame,
  type FramingName,
  MessageType,
  type ProtocolName,
  readMessageHeader,
  readStruct,
  type ThriftFrame,
  TTHeaderIntKey,
  TType,
} from '@loch/thrift';
import { describe, expect, it } from 'vitest';
import type { ThriftRouteConfig } from '../config/schema.js';
import { RouteRewrite } from './rewrite.js';

const base: ThriftRouteConfig = {
  methods: undefined,
  service: undefined,
  loadBalancer: 'first',
  upstreams: [],
};

function message(protocol: ProtocolName, name: string, type: MessageType, seqId: number): Uint8Array {
  const w = createWriter(protocol);
  w.writeMessageBegin(name, type, seqId);
  w.writeStructBegin();
  w.writeFieldBegin(TType.STRING, type === MessageType.REPLY ? 0 : 1);
  w.writeString('body');
  w.writeFieldBegin(TType.I64, 2);
  w.writeI64(-5n);
  w.writeFieldStop();
  w.writeStructEnd();
  w.writeMessageEnd();
  return w.finishCopy();
}

function frame(
  framing: FramingName,
  protocol: ProtocolName,
  payload: Uint8Array,
  headers?: ReadonlyMap<string, string>,
): ThriftFrame {
  return decodeFrame(
    framing,
    encodeFrame({ framing, protocol, ...(headers === undefined ? {} : { headers }) }, payload),
  );
}

function body(protocol: ProtocolName, payload: Uint8Array) {
  const r = createReader(protocol).reset(payload);
  r.readMessageBegin();
  return readStruct(r);
}

describe('RouteRewrite', () => {
  it('is undefined for a route that changes nothing', () => {
    expect(RouteRewrite.of(base)).toBeUndefined();
  });

  it('removes, then sets, then adds TTHeader integer headers, which survive re-encoding', () => {
    const rewrite = RouteRewrite.of({
      ...base,
      intHeaderRewrite: {
        remove: [TTHeaderIntKey.LOG_ID],
        set: new Map([[TTHeaderIntKey.FROM_SERVICE, 'loch']]),
        add: new Map([
          [TTHeaderIntKey.TO_CLUSTER, 'default'],
          [TTHeaderIntKey.ENV, 'prod'],
        ]),
      },
    })!;
    const call = decodeFrame(
      'ttheader',
      encodeFrame(
        {
          framing: 'ttheader',
          protocol: 'binary',
          intHeaders: new Map([
            [TTHeaderIntKey.LOG_ID, 'l1'],
            [TTHeaderIntKey.FROM_SERVICE, 'caller'],
            [TTHeaderIntKey.TO_CLUSTER, 'canary'],
          ]),
          headers: new Map([['tenant', 'gold']]),
        },
        message('binary', 'get', MessageType.CALL, 3),
      ),
    );
    const out = rewrite.outgoing(call, 'get');
    const expected = [
      [TTHeaderIntKey.FROM_SERVICE, 'loch'],
      [TTHeaderIntKey.TO_CLUSTER, 'canary'],
      [TTHeaderIntKey.ENV, 'prod'],
    ];
    expect([...out.intHeaders].sort((a, b) => a[0] - b[0])).toEqual(expected);
    // String headers untouched; the caller's frame as it was.
    expect(out.headers).toBe(call.headers);
    expect(call.intHeaders.get(TTHeaderIntKey.LOG_ID)).toBe('l1');
    // What goes upstream carries them.
    const sent = decodeFrame('ttheader', encodeFrame(out, out.payload));
    expect([...sent.intHeaders].sort((a, b) => a[0] - b[0])).toEqual(expected);
  });

  it('removes, then sets, then adds info headers', () => {
    const rewrite = RouteRewrite.of({
      ...base,
      headerRewrite: {
        remove: ['secret'],
        set: new Map([['caller', 'loch']]),
        add: new Map([
          ['tenant', 'default'],
          ['zone', 'z1'],
        ]),
      },
    })!;
    const call = frame(
      'theader',
      'binary',
      message('binary', 'get', MessageType.CALL, 3),
      new Map([
        ['secret', 's'],
        ['caller', 'someone'],
        ['tenant', 't1'],
      ]),
    );
    const out = rewrite.outgoing(call, 'get');
    expect([...out.headers].sort()).toEqual([
      ['caller', 'loch'],
      ['tenant', 't1'],
      ['zone', 'z1'],
    ]);
    // The caller's frame is left as it was.
    expect(call.headers.get('secret')).toBe('s');
    expect(out.payload).toBe(call.payload);
  });

  it('renames a multiplexed method and gives the reply its name back, full or bare', () => {
    const rewrite = RouteRewrite.of({ ...base, renames: new Map([['Calc:add', 'Calc:sum']]) })!;
    for (const protocol of ['binary', 'compact'] as const) {
      const call = frame('framed', protocol, message(protocol, 'Calc:add', MessageType.CALL, 300));
      const out = rewrite.outgoing(call, 'Calc:add');
      expect(readMessageHeader(protocol, out.payload)).toEqual({
        name: 'Calc:sum',
        type: MessageType.CALL,
        seqId: 300,
      });
      expect(body(protocol, out.payload)).toEqual(body(protocol, call.payload));
      const full = frame('framed', protocol, message(protocol, 'Calc:sum', MessageType.REPLY, 300));
      expect(readMessageHeader(protocol, rewrite.replyPayload(full, protocol, 'Calc:add')).name).toBe(
        'Calc:add',
      );
      const bare = frame('framed', protocol, message(protocol, 'sum', MessageType.REPLY, 300));
      expect(readMessageHeader(protocol, rewrite.replyPayload(bare, protocol, 'Calc:add')).name).toBe('add');
      // Other calls of the route are not renamed.
      const other = frame('framed', protocol, message(protocol, 'Calc:mul', MessageType.CALL, 1));
      expect(rewrite.outgoing(other, 'Calc:mul').payload).toBe(other.payload);
    }
  });

  it('speaks another framing and protocol upstream and transcodes the reply back', () => {
    const rewrite = RouteRewrite.of({ ...base, upstreamFraming: 'ttheader', upstreamProtocol: 'compact' })!;
    expect(rewrite.framing('framed')).toBe('ttheader');
    const call = frame('framed', 'binary', message('binary', 'get', MessageType.CALL, 9));
    const out = rewrite.outgoing(call, 'get');
    expect([out.framing, out.protocol, out.seqId]).toEqual(['ttheader', 'compact', 9]);
    expect(readMessageHeader('compact', out.payload)).toEqual({
      name: 'get',
      type: MessageType.CALL,
      seqId: 9,
    });
    expect(body('compact', out.payload)).toEqual(body('binary', call.payload));
    const reply = frame('ttheader', 'compact', message('compact', 'get', MessageType.REPLY, 9));
    const back = rewrite.replyPayload(reply, 'binary', 'get');
    expect(back).toEqual(message('binary', 'get', MessageType.REPLY, 9));
  });
});
