/**
 * Test-only: the one-field `echo(1: string text)` call that the server, dispatch and budget tests
 * (and @loch/gateway's ClientExchange tests) send, written once with the package's binary writer,
 * and its text read back from it or from a reply made of it. Not the interop suites' four-field
 * Echo (echo-service.ts), and not a reply: each test writes the reply its handler means to send.
 */
import {
  BinaryReader,
  createWriter,
  encodeFrame,
  type FramingName,
  MessageType,
  TType,
} from '../src/index.js';

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

/**
 * The text of a binary message whose first field is a string: an `echoMessage`, or a reply that
 * answers one with the text in its field 0. Takes the message or a frame of it (`payload`).
 */
export function echoText(message: Uint8Array | { readonly payload: Uint8Array } | undefined): string {
  const bytes = message instanceof Uint8Array ? message : message?.payload;
  if (bytes === undefined) throw new Error('no message to read the echo text of');
  const r = new BinaryReader().reset(bytes);
  r.readMessageBegin();
  r.readStructBegin();
  r.readFieldBegin();
  return r.readString();
}
