/**
 * The release contract a zero-copy relay rests on, the same for every driver over real sockets:
 * a received chunk's bytes written on to another stream with writeTo(), and the chunk released
 * in that write's onWritten, whether it succeeded or failed (the stream closed under it). At
 * onWritten neither the driver nor the kernel reads the buffers any more, so the pooled memory
 * may be received into again at once: the bytes that arrive are exactly the ones sent, across
 * short sends and more traffic than the receive pool holds, and each chunk is released once.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Driver } from '../../src/driver.js';
import type { RuntimeError } from '../../src/errors.js';
import type { ByteStream, RecvChunk, RecvTarget, WriteTarget } from '../../src/stream.js';
import { driverCases, portOf, type Resources, readToEnd, useDriver } from './drivers.js';

const cases = await driverCases();

async function pair(driver: Driver, res: Resources) {
  const listener = res.add(await driver.listenTcp({ host: '127.0.0.1', port: 0 }));
  const accepted = listener.accept();
  const client = res.add(await driver.connectTcp({ host: '127.0.0.1', port: portOf(listener) }));
  return { client, server: res.add(await accepted) };
}

/**
 * Receives chunks from `from` and writes each, as received (no copy), to `to`, one write at a
 * time; releases the chunk in the write's onWritten, failed or not. `poison` overwrites a
 * chunk's bytes just before its release: bytes a driver still sent after onWritten would show.
 */
class Relay implements RecvTarget, WriteTarget {
  chunks = 0;
  releases = 0;
  failures: RuntimeError[] = [];
  #chunk: RecvChunk | undefined;
  #done: (() => void) | undefined;
  readonly done = new Promise<void>((resolve) => {
    this.#done = resolve;
  });

  constructor(
    readonly from: ByteStream,
    readonly to: ByteStream,
    readonly poison: boolean,
  ) {}

  start(): void {
    this.from.recvTo(this);
  }

  onRecv(chunk: RecvChunk | null): void {
    if (chunk === null) {
      void this.to.shutdown().catch(() => {});
      this.#done?.();
      return;
    }
    this.chunks++;
    const release = chunk.release.bind(chunk);
    this.#chunk = {
      bytes: chunk.bytes,
      release: () => {
        this.releases++;
        release();
      },
    };
    this.to.writeTo(chunk.bytes, this);
  }

  onWritten(error: RuntimeError | undefined): void {
    const chunk = this.#chunk!;
    this.#chunk = undefined;
    if (this.poison) chunk.bytes.fill(0xee);
    chunk.release();
    if (error !== undefined) {
      this.failures.push(error);
      this.#done?.();
      return;
    }
    this.from.recvTo(this);
  }
}

describe.each(cases)('relay release conformance: $name driver', ({ name, skip }) => {
  const { driver, res } = useDriver(name);
  const run = skip === undefined ? it : it.skip;

  run('chunks written on and released at onWritten arrive exactly, past the receive pool size', async () => {
    const front = await pair(driver(), res);
    const back = await pair(driver(), res);
    // 48 MiB: more than the io_uring driver's 512 x 64 KiB receive pool, so released slots
    // are received into again while later writes are in flight.
    const sent = randomBytes(48 * 1024 * 1024);
    const relay = new Relay(front.server, back.client, true);
    relay.start();
    const received = readToEnd(back.server);
    await front.client.writeAll(sent);
    await front.client.shutdown();
    await relay.done;
    const got = await received;
    expect(relay.failures).toEqual([]);
    expect(relay.releases).toBe(relay.chunks);
    expect(got.length).toBe(sent.length);
    expect(got.equals(sent)).toBe(true);
  });

  run(
    'a write failed by close() is reported once; its chunk is released once, and none of it goes out after',
    async () => {
      const front = await pair(driver(), res);
      const back = await pair(driver(), res);
      const relay = new Relay(front.server, back.client, true);
      relay.start();
      // The far end does not read until the relay's stream is closed: its writes stall.
      const sent = randomBytes(16 * 1024 * 1024);
      const writing = front.client.writeAll(sent).catch(() => undefined);
      while (relay.chunks < 4) await driver().sleep(10);
      await driver().sleep(50);
      await back.client.close();
      await relay.done;
      // ECANCELED for the write in flight (or the write made just after close() failing).
      expect(relay.failures).toHaveLength(1);
      expect(relay.releases).toBe(relay.chunks);
      // What reached the far end is a prefix of what was sent: no poisoned byte went out.
      const got = await readToEnd(back.server).catch(() => Buffer.alloc(0));
      expect(got.equals(sent.subarray(0, got.length))).toBe(true);
      await front.client.close();
      await writing;
    },
  );
});
