/**
 * The proxy path on its own (no npm thrift equivalent exists): find a message's bounds in an
 * unframed stream, split and decode a TTHeader frame's header block and message header, and
 * re-frame it as framed binary with a new seq id. Run: pnpm --filter @loch/thrift bench
 */
import { bench, describe } from 'vitest';
import {
  BinaryWriter,
  decodeFrame,
  encodeFrame,
  FrameSplitter,
  MessageBoundsFinder,
  MessageType,
  peekSeqId,
  readMessageHeader,
  reframe,
  TTHeaderIntKey,
  TType,
} from '../src/index.js';

function message(items: number): Uint8Array {
  const w = new BinaryWriter();
  w.writeMessageBegin('getUsers', MessageType.CALL, 1);
  w.writeStructBegin();
  w.writeFieldBegin(TType.LIST, 1);
  w.writeListBegin(TType.STRUCT, items);
  for (let i = 0; i < items; i++) {
    w.writeStructBegin();
    w.writeFieldBegin(TType.I64, 1);
    w.writeI64(BigInt(i));
    w.writeFieldBegin(TType.STRING, 2);
    w.writeString(`user-${i}`);
    w.writeFieldStop();
    w.writeStructEnd();
  }
  w.writeFieldStop();
  w.writeStructEnd();
  return w.finishCopy();
}

for (const items of [1, 100]) {
  const msg = message(items);
  const tt = encodeFrame(
    {
      framing: 'ttheader',
      protocol: 'binary',
      seqId: 1,
      intHeaders: new Map([
        [TTHeaderIntKey.TO_SERVICE, 'user.service'],
        [TTHeaderIntKey.TO_METHOD, 'getUsers'],
      ]),
      headers: new Map([['tenant', 'blue']]),
    },
    msg,
  );
  const finder = new MessageBoundsFinder();
  const splitter = new FrameSplitter();
  describe(`proxy path, ${items} item(s): ${msg.byteLength} B message`, () => {
    bench('bounds of an unframed message', () => {
      finder.find('binary', msg, 0, msg.byteLength);
    });
    bench('TTHeader: split + decode header + read message header', () => {
      const end = splitter.find('ttheader', tt, 0, tt.byteLength);
      const frame = decodeFrame('ttheader', tt.subarray(0, end));
      readMessageHeader(frame.protocol, frame.payload);
    });
    bench('TTHeader -> framed with a new seq id', () => {
      const frame = decodeFrame('ttheader', tt);
      reframe(frame, { framing: 'framed', seqId: peekSeqId('binary', frame.payload) + 1 });
    });
  });
}
