/**
 * Test-only: the one-field `echo(1: string text)` call that the server, dispatch and budget tests
 * send, written once with the package's binary writer. Not the interop suites' four-field Echo
 * (echo-service.ts), and not a reply: each test writes the reply its handler means to send.
 */
import { createWriter, encodeFrame, type FramingName, MessageType, TType } from '../src/index.js';

/** The binary message (no frame) of `echo(1: string text)` with seq id `seqId`, CALL unless `type`. */
export function echoMessage(text: string, seqId: number, type: MessageType = MessageType.CALL): Uint8Array {
  const w = createWriter('binary');
  w.writeMessageBegin('echo', type, seqId);
  w.writeStructBegin();
  w.writeFieldBegin(TType.STRING, 1);
  w.writeString(text);
  w.writeFieldStop();
  w.writeStructEnd();
  return w.finishCopy();
}

/** `echoMessage` in a `framing` frame (framed unless named): the bytes a client writes. */
export function echoCall(
  text: string,
  seqId: number,
  framing: FramingName = 'framed',
  type: MessageType = MessageType.CALL,
): Uint8Array {
  return encodeFrame({ framing, protocol: 'binary' }, echoMessage(text, seqId, type));
}
