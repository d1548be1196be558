/**
 * The HTTP/2 server's write deadline (`timeouts.write`) is an idle-progress deadline, as nginx's
 * send_timeout (internal/write-progress.ts), on every runtime driver, with a real client over a
 * real socket: test/h2/slow_h2_reader.py (h2c prior knowledge, a small receive buffer and a
 * network's MSS so the server's socket stays full, windows of 2^31-1 so flow control never holds
 * the server back) reads a large answer slowly.
 * - A reader at ~100 KB/s (2 KiB every 20 ms) takes longer than the write deadline (1 s) for one
 *   of the session's writes (up to 256 KiB of frames, http2.maxOutputBuffer) but never stalls
 *   for one: it gets the whole answer. A deadline per write cuts it (checked: with
 *   writeProgressSince always -1 it is cut on both drivers).
 * - A reader that stops reading is still cut: after a stall of several deadlines it reads what
 *   the kernel held, then the end, never the whole answer.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedBody } from '../src/body.js';
import { createResponse } from '../src/message.js';
import { availableDrivers, type InProcess, startServer } from './server-harness.js';

const drivers = await availableDrivers();
const READER = fileURLToPath(new URL('./h2/slow_h2_reader.py', import.meta.url));
const WRITE_TIMEOUT = 1000;
/** The steady reader's answer: ~10 s at its pace, ten write deadlines. */
const STEADY_BODY = 1024 * 1024;
/** The stalled reader's answer: far more than the socket buffers and the session's output hold. */
const STALLED_BODY = 16 * 1024 * 1024;

interface ReaderResult {
  bytes: number;
  endStream: boolean;
  goaway: number | null;
  closed: boolean;
  reset: boolean;
  seconds: number;
}

/** Runs the slow reader against `port` and resolves with its result line. */
function readSlowly(port: number, path: string, extra: string[] = []): Promise<ReaderResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', [READER, String(port), path, ...extra], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').at(-1)!) as ReaderResult);
      } catch {
        reject(new Error(`slow_h2_reader.py exited with ${code}: ${JSON.stringify(out)}`));
      }
    });
  });
}

describe.each(drivers)('HTTP/2 write deadline with slow readers (driver %s)', (driver) => {
  let s: InProcess;

  beforeAll(async () => {
    s = await startServer(
      driver,
      { timeouts: { write: WRITE_TIMEOUT, idle: 60_000 } },
      {
        call(request) {
          const size = request.target === '/stalled' ? STALLED_BODY : STEADY_BODY;
          return createResponse(200, { body: fixedBody(Buffer.alloc(size, 0x61)) });
        },
      },
    );
  });
  afterAll(async () => {
    await s.stop();
  });

  it('a reader slower than a write per deadline that never stalls for one gets the whole answer', async () => {
    const r = await readSlowly(s.port, '/steady', ['--step', '2048', '--interval', '20']);
    console.log(`[${driver}] steady h2 reader: ${JSON.stringify(r)}`);
    expect(r).toMatchObject({ bytes: STEADY_BODY, endStream: true, closed: false, reset: false });
    // Only meaningful if the answer took several write deadlines.
    expect(r.seconds * 1000).toBeGreaterThan(3 * WRITE_TIMEOUT);
  }, 60_000);

  it('a reader that stops reading is cut: after the stall it gets what the kernel held, then the end', async () => {
    const r = await readSlowly(s.port, '/stalled', [
      '--stall-after',
      '1',
      '--stall-ms',
      String(5 * WRITE_TIMEOUT),
    ]);
    console.log(`[${driver}] stalled h2 reader: ${JSON.stringify(r)}`);
    expect(r.endStream).toBe(false);
    expect(r.closed || r.reset).toBe(true);
    expect(r.bytes).toBeLessThan(STALLED_BODY / 4);
  }, 60_000);
});
