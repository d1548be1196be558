/**
 * What a Thrift proxy does with @loch/thrift, without a network: encode a call, frame it with
 * Kitex TTHeader, find the frame in a byte stream, read the method and headers without decoding
 * the body, skip the body, and re-frame the call as framed binary with a new seq id.
 * Run: pnpm --filter @loch/thrift example
 */
import {
  BinaryWriter,
  decodeFrame,
  detectFraming,
  encodeFrame,
  FrameSplitter,
  MessageType,
  messageBodyOffset,
  readMessageHeader,
  reframe,
  skipValue,
  TTHeaderIntKey,
  TType,
} from '@loch/thrift';

// 1. A client encodes getUser(1: i64 id, 2: string name).
const w = new BinaryWriter();
w.writeMessageBegin('getUser', MessageType.CALL, 41);
w.writeStructBegin();
w.writeFieldBegin(TType.I64, 1);
w.writeI64(1234567890123n);
w.writeFieldBegin(TType.STRING, 2);
w.writeString('ada');
w.writeFieldStop();
w.writeStructEnd();
const call = w.finishCopy();

// 2. ...and sends it in a TTHeader frame with routing headers.
const wire = encodeFrame(
  {
    framing: 'ttheader',
    protocol: 'binary',
    seqId: 41,
    intHeaders: new Map([[TTHeaderIntKey.TO_SERVICE, 'user.service']]),
    headers: new Map([['tenant', 'blue']]),
  },
  call,
);

// 3. The proxy sees bytes: detect the framing, find the frame end, decode the header only.
const detected = detectFraming(wire);
if (!detected) throw new Error('need more bytes');
const end = new FrameSplitter().find(detected.framing, wire, 0, wire.byteLength);
const frame = decodeFrame(detected.framing, wire.subarray(0, end));
const header = readMessageHeader(frame.protocol, frame.payload);
console.log(
  `${detected.framing}: ${header.name} seq=${header.seqId} to=${frame.intHeaders.get(TTHeaderIntKey.TO_SERVICE)}`,
);

// 4. It can step over the body without building it...
const bodyEnd = skipValue(
  frame.protocol,
  TType.STRUCT,
  frame.payload,
  messageBodyOffset(frame.protocol, frame.payload),
);
console.log(`body skipped to byte ${bodyEnd} of ${frame.payload.byteLength}`);

// 5. ...and forward it to a framed-binary upstream under its own seq id.
const upstream = Buffer.concat(reframe(frame, { framing: 'framed', seqId: 7 }));
console.log(
  `upstream frame: ${upstream.byteLength} bytes, seq=${readMessageHeader('binary', upstream.subarray(4)).seqId}`,
);
