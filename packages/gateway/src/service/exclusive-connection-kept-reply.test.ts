/**
 * The legacy driver may report a reply before the write of its call: the connection keeps it
 * until the write is reported. Releasing the reply before must not recycle the reader under the
 * kept one, or the next reply overwrites it.
 */
import { MessageType } from '@loch/thrift';
import { expect, it } from 'vitest';
import { echoCall, echoMessage, echoText as textOf } from '../../../thrift/test/echo-call.js';
import { ExclusiveConnection } from './exclusive-connection.js';

interface RecvTarget {
  onRecv(chunk: { bytes: Uint8Array; release(): void } | null, error: undefined): void;
}
interface WriteTarget {
  onWritten(error: undefined): void;
}

const replyChunk = (seq: number, text: string) => ({
  bytes: echoCall(text, seq, 'framed', MessageType.REPLY),
  release() {},
});

it('a reply kept until its write is reported survives the release of the reply before', async () => {
  const recvs: RecvTarget[] = [];
  const writes: WriteTarget[] = [];
  const stream = {
    driver: 'legacy',
    closed: false,
    recv: () => Promise.reject(new Error('recv() used')),
    writev: () => Promise.reject(new Error('writev() used')),
    recvTo: (target: RecvTarget) => recvs.push(target),
    writeTo: (_data: unknown, target: WriteTarget) => writes.push(target),
    async close() {
      stream.closed = true;
    },
  };
  const conn = new ExclusiveConnection(stream as never);
  const first = conn.send(echoMessage('a', 0));
  const second = conn.send(echoMessage('b', 0));
  writes.shift()!.onWritten(undefined);
  recvs.shift()!.onRecv(replyChunk(1, 'one'), undefined);
  const reply1 = await first;
  // Call 2 is written but not yet reported; its reply is read first, as the legacy driver may.
  recvs.shift()!.onRecv(replyChunk(2, 'two'), undefined);
  conn.release(reply1!);
  writes.shift()!.onWritten(undefined);
  const reply2 = await second;
  expect(textOf(reply2)).toBe('two');
  // A third reply, longer, read while reply 2 is still out: it must not land on reply 2's bytes.
  const third = conn.send(echoMessage('c', 0));
  writes.shift()!.onWritten(undefined);
  recvs.shift()!.onRecv(replyChunk(3, 'X'.repeat(100)), undefined);
  expect(textOf(await third)).toBe('X'.repeat(100));
  expect(textOf(reply2)).toBe('two');
});
