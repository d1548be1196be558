/**
 * ThriftClient's reply memory over an in-memory echo peer: replies given back (release) let
 * the next ones be received into the same buffer, in serial and multiplexed mode; a reply
 * still held is never overwritten; without release every reply keeps its bytes.
 */
import { describe, expect, it } from 'vitest';
import { createWriter } from '../protocol/factory.js';
import { readMessageHeader } from '../protocol/message-header.js';
import { decodeFrame, encodeFrame } from '../transport/codec.js';
import { MessageType, TType } from '../types.js';
import { ThriftClient, type ThriftResponse } from './client.js';
import type { ThriftRecvChunk, ThriftStream } from './stream.js';

/**
 * A peer that answers each framed binary call written to it with a REPLY of the same name and
 * seq id whose result is `padding` bytes, as a socket would deliver it (a copied chunk).
 */
function echoPeer(padding: number): ThriftStream {
  const queue: Uint8Array[] = [];
  let waiter: ((c: ThriftRecvChunk | null) => void) | undefined;
  const deliver = (bytes: Uint8Array): void => {
    const w = waiter;
    waiter = undefined;
    if (w !== undefined) w({ bytes, release() {} });
    else queue.push(bytes);
  };
  const s = {
    closed: false,
    recv(): Promise<ThriftRecvChunk | null> {
      const b = queue.shift();
      if (b !== undefined) return Promise.resolve({ bytes: b, release() {} });
      if (s.closed) return Promise.resolve(null);
      return new Promise<ThriftRecvChunk | null>((resolve) => {
        waiter = resolve;
      });
    },
    async writev(bufs: readonly Uint8Array[]): Promise<number> {
      // One writev may carry several calls (a multiplexed client batches them): each framed one
      // is answered.
      const bytes = Buffer.concat(bufs);
      for (let at = 0; at < bytes.byteLength; at += 4 + bytes.readUInt32BE(at)) {
        const call = decodeFrame('framed', bytes.subarray(at, at + 4 + bytes.readUInt32BE(at)));
        const header = readMessageHeader('binary', call.payload);
        const w = createWriter('binary');
        w.writeMessageBegin(header.name, MessageType.REPLY, header.seqId);
        w.writeStructBegin();
        w.writeFieldBegin(TType.STRING, 0);
        w.writeString('r'.repeat(padding));
        w.writeFieldStop();
        w.writeStructEnd();
        const reply = encodeFrame({ framing: 'framed', protocol: 'binary' }, w.finishCopy());
        // Delivered after the write settled, as a reply would be.
        setImmediate(() => deliver(reply.slice()));
      }
      return bytes.byteLength;
    },
    async close(): Promise<void> {
      s.closed = true;
      const w = waiter;
      waiter = undefined;
      w?.(null);
    },
  };
  return s;
}

function ping(w: { writeStructBegin(): void; writeFieldStop(): void; writeStructEnd(): void }): void {
  w.writeStructBegin();
  w.writeFieldStop();
  w.writeStructEnd();
}

/** The result string of a `ping` reply. */
function resultOf(response: ThriftResponse): string {
  const r = response.reader();
  r.readStructBegin();
  r.readFieldBegin();
  return r.readString();
}

describe.each([false, true])('ThriftClient reply memory (multiplexed: %s)', (multiplexed) => {
  // ~2 KiB replies: 100 of them are three times the reader's 64 KiB buffer.
  const PADDING = 2000;

  it('receives replies into the same memory once each was released', async () => {
    const client = new ThriftClient(echoPeer(PADDING), { multiplexed });
    const memory = new Set<ArrayBufferLike>();
    for (let i = 0; i < 100; i++) {
      const response = (await client.call('ping', ping))!;
      expect(resultOf(response)).toHaveLength(PADDING);
      memory.add(response.frame.payload.buffer);
      response.release();
    }
    expect(memory.size).toBe(1);
    // send() and release(frame): the forwarding path (the JSON gateway's).
    const message = createWriter('binary');
    message.writeMessageBegin('ping', MessageType.CALL, 0);
    ping(message);
    const bytes = message.finishCopy();
    for (let i = 0; i < 100; i++) {
      const frame = (await client.send(bytes))!;
      memory.add(frame.payload.buffer);
      client.release(frame);
    }
    expect(memory.size).toBe(1);
    await client.close();
  });

  it('never overwrites a reply that is still held', async () => {
    const client = new ThriftClient(echoPeer(PADDING), { multiplexed });
    const first = (await client.call('ping', ping))!;
    const copy = first.frame.payload.slice();
    for (let i = 0; i < 100; i++) (await client.call('ping', ping))!.release();
    expect(first.frame.payload).toEqual(copy);
    expect(resultOf(first)).toHaveLength(PADDING);
    await client.close();
  });

  it('keeps every reply without release', async () => {
    const client = new ThriftClient(echoPeer(PADDING), { multiplexed });
    const held: ThriftResponse[] = [];
    for (let i = 0; i < 100; i++) held.push((await client.call('ping', ping))!);
    expect(new Set(held.map((h) => h.frame.payload.buffer)).size).toBeGreaterThan(1);
    for (const h of held) expect(resultOf(h)).toHaveLength(PADDING);
    await client.close();
  });
});

describe('ThriftClient writes (multiplexed)', () => {
  it('runs one write at a time on its stream, however many calls are pipelined', async () => {
    // The stream contract (one write at a time per stream): on io_uring a write started before the
    // previous one settled can interleave with that one's rest after a short send.
    const peer = echoPeer(10);
    const write = peer.writev.bind(peer);
    let inFlight = 0;
    let most = 0;
    let writes = 0;
    peer.writev = async (bufs) => {
      writes++;
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((resolve) => setImmediate(resolve));
      try {
        return await write(bufs);
      } finally {
        inFlight--;
      }
    };
    const client = new ThriftClient(peer, { multiplexed: true });
    const replies = await Promise.all(Array.from({ length: 8 }, () => client.call('ping', ping)));
    expect(replies.map((r) => (r === undefined ? undefined : resultOf(r)))).toEqual(
      Array(8).fill('r'.repeat(10)),
    );
    expect(most).toBe(1);
    // Made in one turn, the eight calls go out together; then eight more while one is in flight.
    expect(writes).toBe(1);
    const first = client.call('ping', ping);
    await new Promise((resolve) => setImmediate(resolve));
    const more = await Promise.all([first, ...Array.from({ length: 7 }, () => client.call('ping', ping))]);
    expect(more.every((r) => r !== undefined && resultOf(r) === 'r'.repeat(10))).toBe(true);
    expect(most).toBe(1);
    expect(writes).toBe(3);
    await client.close();
  });
});
