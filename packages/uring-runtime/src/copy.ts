/**
 * Moving a stream's bytes into another: copy() through pooled recv chunks, zeroCopy() through
 * the driver's splice when it has one. Both half-close the destination at end of stream and
 * resolve with the byte count. Not for transforming data: read and write yourself for that.
 */
import type { Driver } from './driver.js';
import type { RuntimeError } from './errors.js';
import { driverStream, RuntimeStream } from './net/runtime-stream.js';
import { currentRuntime, type Runtime } from './runtime.js';
import type { ByteStream, IoOptions } from './stream.js';

/** Options of copy() and zeroCopy(). */
export interface CopyOptions extends IoOptions {
  /** Runtime whose driver splices (zeroCopy); default the streams' runtime or the thread's. */
  readonly runtime?: Runtime | undefined;
  /** Driver that splices (zeroCopy), for streams taken straight from a Driver; wins over `runtime`. */
  readonly driver?: Driver | undefined;
  /** Bytes asked per splice. Default 65536. */
  readonly chunkSize?: number | undefined;
}

/**
 * Copies `from` into `to` until end of stream, then shuts `to` down (half-close). Each received
 * chunk is written completely before the next is received, so a slow `to` slows reading from
 * `from` (backpressure). Resolves with the bytes copied; rejects with the first I/O error.
 */
export async function copy(from: ByteStream, to: ByteStream, options?: IoOptions): Promise<number> {
  let total = 0;
  for (;;) {
    const chunk = await from.recv(options);
    if (chunk === null) break;
    try {
      await to.writeAll(chunk.bytes, options);
      total += chunk.bytes.byteLength;
    } finally {
      chunk.release();
    }
  }
  await to.shutdown();
  return total;
}

/** The runtime of the first public stream wrapper among the two, else the thread's. */
function streamRuntime(from: ByteStream, to: ByteStream): Promise<Runtime> | Runtime {
  if (from instanceof RuntimeStream) return from.runtime;
  if (to instanceof RuntimeStream) return to.runtime;
  return currentRuntime();
}

const SPLICE_UNSUPPORTED = new Set(['EINVAL', 'ENOSYS', 'EOPNOTSUPP']);

/**
 * Like copy(), but moves bytes with the driver's splice (socket -> pipe -> socket in the kernel,
 * never through JS) when both streams belong to that driver and it can splice: one
 * driver.spliceAll for the whole copy (or a loop of driver.splice when the driver has only that,
 * or a `chunkSize` is given). Bytes a recv() already took from `from` are written first. Falls
 * back to copy() otherwise, or when the splice is refused at once (EINVAL, ENOSYS, EOPNOTSUPP).
 */
export async function zeroCopy(from: ByteStream, to: ByteStream, options: CopyOptions = {}): Promise<number> {
  const driver = options.driver ?? (options.runtime ?? (await streamRuntime(from, to))).driver;
  const splice = driver.splice;
  const source = driverStream(from);
  const sink = driverStream(to);
  if (splice === undefined || source.driver !== driver.name || sink.driver !== driver.name) {
    return copy(from, to, options);
  }
  const io = options.signal === undefined ? undefined : { signal: options.signal };
  const spliceAll = driver.spliceAll;
  if (spliceAll !== undefined && options.chunkSize === undefined) {
    let moved: number;
    try {
      moved = await spliceAll.call(driver, source, sink, io);
    } catch (error) {
      if (SPLICE_UNSUPPORTED.has((error as RuntimeError).code)) return copy(from, to, options);
      throw error;
    }
    await to.shutdown();
    return moved;
  }
  const chunkSize = options.chunkSize ?? 65536;
  let total = 0;
  for (;;) {
    let n: number;
    try {
      n = await splice.call(driver, source, sink, chunkSize, io);
    } catch (error) {
      if (total === 0 && SPLICE_UNSUPPORTED.has((error as RuntimeError).code)) return copy(from, to, options);
      throw error;
    }
    if (n === 0) break;
    total += n;
  }
  await to.shutdown();
  return total;
}
