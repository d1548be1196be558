/**
 * The drivers the conformance suite runs against: every name, and whether this machine can run
 * it (io_uring may be missing or denied; then its suite is skipped with the reason). Not a test.
 */
import { afterEach, beforeEach } from 'vitest';
import type { Driver } from '../../src/driver.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import type { ByteStream, DriverName, StreamListener } from '../../src/stream.js';

/** A driver under test: its name, and the reason it is skipped (undefined when it runs). */
export interface DriverCase {
  readonly name: DriverName;
  readonly skip: string | undefined;
}

async function availability(name: DriverName): Promise<string | undefined> {
  try {
    const runtime = await createRuntime({ driver: name, log: () => undefined });
    await runtime.close();
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/** Every driver, probed once per test file. */
export async function driverCases(): Promise<DriverCase[]> {
  const cases: DriverCase[] = [];
  for (const name of ['legacy', 'uring'] as const) {
    const skip = await availability(name);
    if (skip !== undefined) console.warn(`conformance: skipping the ${name} driver: ${skip}`);
    cases.push({ name, skip });
  }
  return cases;
}

/** Resources opened by a test, closed in afterEach so a failing test cannot leak into the next. */
export class Resources {
  readonly #items: { close(): Promise<void> | void }[] = [];

  add<T extends { close(): Promise<void> | void }>(item: T): T {
    this.#items.push(item);
    return item;
  }

  async closeAll(): Promise<void> {
    const items = this.#items.splice(0).reverse();
    await Promise.all(items.map((item) => Promise.resolve(item.close()).catch(() => undefined)));
  }
}

/** A runtime of `name` per test (created in beforeEach), and resources closed after each test. */
export function useDriver(name: DriverName): { readonly driver: () => Driver; readonly res: Resources } {
  let runtime: Runtime | undefined;
  const res = new Resources();
  beforeEach(async () => {
    runtime = await createRuntime({ driver: name, log: () => undefined });
  });
  afterEach(async () => {
    await res.closeAll();
    await runtime?.close();
    runtime = undefined;
  });
  return {
    res,
    driver: () => {
      if (runtime === undefined) throw new Error('no runtime: use inside a test');
      return runtime.driver;
    },
  };
}

/** Creates a runtime for `name` (the caller closes it). */
export function runtimeFor(name: DriverName): Promise<Runtime> {
  return createRuntime({ driver: name, log: () => undefined });
}

/** Port of a TCP listener. */
export function portOf(listener: StreamListener): number {
  const address = listener.localAddress;
  if (address.family === 'unix') throw new Error('not a TCP listener');
  return address.port;
}

/**
 * A connected TCP pair on loopback: a listener on a port the OS chose, the client that connected
 * to it and the server end it accepted. The caller closes all three (Resources.add).
 */
export async function tcpPair(
  driver: Driver,
  host = '127.0.0.1',
): Promise<{ listener: StreamListener; client: ByteStream; server: ByteStream }> {
  const listener = await driver.listenTcp({ host, port: 0 });
  const accepted = listener.accept();
  const client = await driver.connectTcp({ host, port: portOf(listener) });
  const server = await accepted;
  return { listener, client, server };
}

/** Reads until end of stream; returns everything read. */
export async function readToEnd(stream: ByteStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (;;) {
    const chunk = await stream.recv();
    if (chunk === null) return Buffer.concat(parts);
    parts.push(Buffer.from(chunk.bytes));
    chunk.release();
  }
}

/** Reads exactly `n` bytes with read(buf) (fails on early end of stream). */
export async function readExactly(stream: ByteStream, n: number): Promise<Buffer> {
  const out = Buffer.alloc(n);
  let have = 0;
  let buf = new Uint8Array(64 * 1024);
  while (have < n) {
    const [got, back] = await stream.read(buf);
    buf = back;
    if (got === 0) throw new Error(`end of stream after ${have} of ${n} bytes`);
    const take = Math.min(got, n - have);
    out.set(back.subarray(0, take), have);
    have += take;
  }
  return out;
}
