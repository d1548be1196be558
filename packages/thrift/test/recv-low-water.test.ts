/**
 * The server's receive low-water mark on real sockets, for every driver this machine runs: a
 * peer that sends a frame's length prefix alone and the rest after a pause is answered, and on
 * io_uring its server receives the frame in one piece (the prefix does not wake the receive); a
 * peer whose frame's last 1, 2, 3 or 4 bytes come alone after a pause is answered (the mark
 * lowered to what is missing; a mark left at 5 would hold them back for good), in every
 * length-prefixed framing. The upstream side: apps/proxy/src/thrift/upstream-low-water.test.ts.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRuntime, type Runtime, TcpListener } from '@loch/uring-runtime';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createReply,
  createWriter,
  decodeFrame,
  encodeFrame,
  type FramingName,
  MessageType,
  readMessageHeader,
  ThriftServer,
  type ThriftServerStream,
  TType,
} from '../src/index.js';
import { testDrivers } from './drivers.js';

const drivers = await testDrivers('thrift receive low-water suite');

/** Long enough for the server to have its next receive armed (waiting) when the rest comes. */
const PAUSE_MS = 150;

function call(seqId: number, padding: number): Uint8Array {
  const w = createWriter('binary');
  w.writeMessageBegin('ping', MessageType.CALL, seqId);
  w.writeStructBegin();
  w.writeFieldBegin(TType.STRING, 1);
  w.writeString('p'.repeat(padding));
  w.writeFieldStop();
  w.writeStructEnd();
  w.writeMessageEnd();
  return w.finishCopy();
}

/** A raw client: writes what it is told, reads whole length-prefixed replies. */
class Peer {
  #buf = Buffer.alloc(0);
  #wake: (() => void) | undefined;
  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d]);
      this.#wake?.();
    });
    socket.on('error', () => {});
  }

  static async connect(port: number): Promise<Peer> {
    const socket = netConnect({ host: '127.0.0.1', port, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new Peer(socket);
  }

  write(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(bytes, (e) => (e ? reject(e) : resolve())));
  }

  /** The seq id of the next whole reply, or 'stalled' when none came within `ms`. */
  async reply(framing: FramingName, ms = 3000): Promise<number | 'stalled'> {
    const until = Date.now() + ms;
    for (;;) {
      const b = this.#buf;
      if (b.length >= 4 && b.length >= 4 + b.readUInt32BE(0)) {
        const size = 4 + b.readUInt32BE(0);
        const frame = decodeFrame(framing, new Uint8Array(b.subarray(0, size)));
        this.#buf = b.subarray(size);
        const header = readMessageHeader('binary', frame.payload);
        expect(header.type).toBe(MessageType.REPLY);
        return header.seqId;
      }
      const left = until - Date.now();
      if (left <= 0) return 'stalled';
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }
}

describe.each(drivers)(
  'a thrift server connection on the $name driver, frames in pieces',
  ({ name, skip }) => {
    let runtime: Runtime;
    let listener: TcpListener;
    let server: ThriftServer;
    let port: number;
    /** Sizes of the chunks each accepted connection received, in order. */
    let received: number[][];
    const peers: Peer[] = [];

    beforeEach(async () => {
      if (skip !== undefined) return;
      runtime = await createRuntime({ driver: name, log: () => undefined });
      server = new ThriftServer(
        {
          call: (request) =>
            createReply(request, (w) => {
              w.writeStructBegin();
              w.writeFieldStop();
              w.writeStructEnd();
            }),
        },
        // As the proxy: length-prefixed framings only, so the mark applies from the first byte.
        { framings: ['framed', 'theader', 'ttheader'] },
      );
      listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime });
      const address = listener.localAddress;
      port = address.family === 'unix' ? 0 : address.port;
      received = [];
      void (async () => {
        for (;;) {
          let stream: ThriftServerStream;
          try {
            stream = await listener.accept();
          } catch {
            return;
          }
          // Each receive's size recorded on its way to the connection.
          const sizes: number[] = [];
          received.push(sizes);
          const recvTo = stream.recvTo.bind(stream);
          stream.recvTo = (target) =>
            recvTo({
              onRecv(chunk, error) {
                if (chunk !== null) sizes.push(chunk.bytes.length);
                target.onRecv(chunk, error);
              },
            });
          void server.handleConnection(stream);
        }
      })();
    });

    afterEach(async () => {
      if (skip !== undefined) return;
      for (const p of peers.splice(0)) p.socket.destroy();
      await listener.close();
      await server.close();
      await runtime.close();
    });

    it.skipIf(skip !== undefined).each(['framed', 'theader', 'ttheader'] as FramingName[])(
      '%s: a frame whose last 1, 2, 3 or 4 bytes come alone after a pause is answered',
      async (framing) => {
        const peer = await Peer.connect(port);
        peers.push(peer);
        let seqId = 1;
        for (const padding of [0, 2000]) {
          for (const tail of [1, 2, 3, 4]) {
            const frame = encodeFrame({ framing, protocol: 'binary', seqId }, call(seqId, padding));
            await peer.write(frame.subarray(0, frame.length - tail));
            await sleep(PAUSE_MS);
            await peer.write(frame.subarray(frame.length - tail));
            expect({ tail, padding, got: await peer.reply(framing) }).toEqual({ tail, padding, got: seqId });
            seqId++;
          }
        }
      },
    );

    it.skipIf(skip !== undefined).each(['framed', 'theader', 'ttheader'] as FramingName[])(
      '%s: a length prefix sent alone, the rest after a pause: answered, and on io_uring received in one piece',
      async (framing) => {
        const peer = await Peer.connect(port);
        peers.push(peer);
        // A first call whole: its bytes may be queued before the server set the mark (its first
        // receive then takes what is there, as any receive started late does).
        await peer.write(encodeFrame({ framing, protocol: 'binary', seqId: 0 }, call(0, 10)));
        expect(await peer.reply(framing)).toBe(0);
        const first = received[0]!.length;
        for (let seqId = 1; seqId <= 3; seqId++) {
          const frame = encodeFrame({ framing, protocol: 'binary', seqId }, call(seqId, 3000));
          await peer.write(frame.subarray(0, 4));
          await sleep(PAUSE_MS);
          await peer.write(frame.subarray(4));
          expect(await peer.reply(framing)).toBe(seqId);
        }
        const sizes = received[0]!.slice(first);
        expect(sizes.reduce((a, b) => a + b, 0)).toBeGreaterThan(3 * 3000);
        // The legacy driver has no mark: its reads may well take the prefix alone.
        if (name === 'uring') expect(sizes.filter((n) => n <= 4)).toEqual([]);
      },
    );

    it.skipIf(skip !== undefined)(
      'the end of a peer that sent 1-4 bytes of a frame is still seen (the connection ends, not waits)',
      async () => {
        const frame = encodeFrame({ framing: 'framed', protocol: 'binary', seqId: 1 }, call(1, 100));
        const peer = await Peer.connect(port);
        peers.push(peer);
        await peer.write(frame);
        expect(await peer.reply('framed')).toBe(1);
        await peer.write(frame.subarray(0, 3));
        await sleep(PAUSE_MS);
        const closed = new Promise<void>((resolve) => peer.socket.once('close', () => resolve()));
        peer.socket.end();
        await closed;
        await expect.poll(() => server.connections, { timeout: 3000 }).toBe(0);
      },
    );
  },
);
