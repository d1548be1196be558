/**
 * A preload for gc-pauses.sh (issue 18: what makes the ArrayBuffers a 1-worker loch's scavenges
 * sweep): in each loch worker thread, counts the calls that can make a new ArrayBuffer (a new
 * backing store, which V8 tracks with an ArrayBufferExtension its sweeper visits), by the first
 * two stack frames outside node's internals and this file:
 *   new ArrayBuffer / SharedArrayBuffer, new <TypedArray>(length | array | iterable) (not a view
 *   on a buffer), Buffer.alloc / allocUnsafe (pooled below 4 KiB: counted, marked "pool") /
 *   allocUnsafeSlow / from / concat, <TypedArray>.prototype.slice, ArrayBuffer.prototype.slice,
 *   TextEncoder.prototype.encode, structuredClone.
 * What node's internals or the addon make without these entry points is not seen here:
 * process.memoryUsage().arrayBuffers and V8's "Backing store memory" (--trace-gc-verbose) are
 * the totals to compare with.
 *
 * Also sums the rises of process.memoryUsage().arrayBuffers between 20 ms samples (arrayBufferRises).
 * Driven by $LOCH_AB_DIR/mark (gc-pauses.sh writes "before" then "after <requests>"): counting
 * starts at "before" and at "after" one JSON line goes to $LOCH_AB_DIR/ab-<tid>.txt with the
 * counts per site, and the arrayBuffers bytes at both marks. Stacks cost: benchmarks of counts
 * only, never timings.
 * Usage: LOCH_AB_DIR=<dir> LOCH_NODE_ARGS=--require=<abs>/gc-ab-preload.cjs gc-pauses.sh 128 5 2
 */
const { isMainThread } = require('node:worker_threads');

const dir = process.env.LOCH_AB_DIR;
if (!isMainThread && dir !== undefined && dir !== '') {
  const fs = require('node:fs');
  const path = require('node:path');
  const { watchMark } = require('../lib/mark-file.cjs');
  const tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
  let on = false;
  const counts = new Map();

  const site = () => {
    const o = {};
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 12;
    Error.captureStackTrace(o, site);
    Error.stackTraceLimit = limit;
    const frames = o.stack
      .split('\n')
      .slice(1)
      .map((l) => l.trim().replace(/^at /, ''))
      .filter((l) => !l.includes('gc-ab-preload.cjs') && !l.includes('node:'));
    return frames
      .slice(0, 2)
      .map((l) => l.replace(/file:\/\/\/work\/main\//, '').replace(/\/work\/main\//, ''))
      .join(' <- ');
  };
  const count = (what, bytes) => {
    if (!on) return;
    const key = `${what} @ ${site()}`;
    const c = counts.get(key);
    if (c === undefined) counts.set(key, { n: 1, bytes });
    else {
      c.n++;
      c.bytes += bytes;
    }
  };

  const wrapCtor = (name, makesBuffer) => {
    const Target = globalThis[name];
    globalThis[name] = new Proxy(Target, {
      construct(target, args, newTarget) {
        const made = Reflect.construct(target, args, newTarget);
        if (makesBuffer(args)) count(`new ${name}`, made.byteLength ?? 0);
        return made;
      },
    });
  };
  wrapCtor('ArrayBuffer', () => true);
  wrapCtor('SharedArrayBuffer', () => true);
  const isBuffer = (a) => a instanceof ArrayBuffer || a instanceof SharedArrayBuffer;
  for (const name of [
    'Uint8Array',
    'Int8Array',
    'Uint8ClampedArray',
    'Uint16Array',
    'Int16Array',
    'Uint32Array',
    'Int32Array',
    'Float32Array',
    'Float64Array',
    'BigUint64Array',
    'BigInt64Array',
  ])
    wrapCtor(name, (args) => !isBuffer(args[0]));

  const wrapFn = (obj, key, label, bytesOf) => {
    const fn = obj[key];
    obj[key] = function (...args) {
      const out = fn.apply(this, args);
      count(typeof label === 'function' ? label(args, out) : label, bytesOf(args, out));
      return out;
    };
  };
  const outBytes = (_args, out) => out?.byteLength ?? 0;
  wrapFn(Buffer, 'alloc', 'Buffer.alloc', outBytes);
  wrapFn(
    Buffer,
    'allocUnsafe',
    (args) => (args[0] < Buffer.poolSize >>> 1 ? 'Buffer.allocUnsafe (pool)' : 'Buffer.allocUnsafe'),
    outBytes,
  );
  wrapFn(Buffer, 'allocUnsafeSlow', 'Buffer.allocUnsafeSlow', outBytes);
  wrapFn(
    Buffer,
    'from',
    (args) => (isBuffer(args[0]) ? 'Buffer.from(arrayBuffer) (view)' : `Buffer.from(${typeof args[0]})`),
    outBytes,
  );
  wrapFn(Buffer, 'concat', 'Buffer.concat', outBytes);
  const TypedArrayProto = Object.getPrototypeOf(Uint8Array.prototype);
  wrapFn(TypedArrayProto, 'slice', 'TypedArray.prototype.slice', outBytes);
  wrapFn(ArrayBuffer.prototype, 'slice', 'ArrayBuffer.prototype.slice', outBytes);
  wrapFn(TextEncoder.prototype, 'encode', 'TextEncoder.encode', outBytes);
  wrapFn(globalThis, 'structuredClone', 'structuredClone', () => 0);

  // process.memoryUsage().arrayBuffers is the live total (node's ArrayBuffer allocator): its rises
  // between 20 ms samples, summed, are a lower bound of the backing store bytes allocated by any
  // code (native included), to set against the bytes the counted sites made.
  let abLast = 0;
  let abRises = 0;
  setInterval(() => {
    if (!on) return;
    const now = process.memoryUsage().arrayBuffers;
    if (now > abLast) abRises += now - abLast;
    abLast = now;
  }, 20).unref();

  let ab0 = 0;
  watchMark(dir, (text) => {
    if (text === 'before') {
      counts.clear();
      ab0 = process.memoryUsage().arrayBuffers;
      abLast = ab0;
      abRises = 0;
      on = true;
    } else if (text.startsWith('after') && on) {
      on = false;
      const requests = Number(text.split(' ')[1] ?? 0);
      const sites = [...counts.entries()]
        .sort((a, b) => b[1].n - a[1].n)
        .map(([k, v]) => ({ site: k, n: v.n, bytes: v.bytes }));
      fs.appendFileSync(
        path.join(dir, `ab-${tid}.txt`),
        `${JSON.stringify({ requests, arrayBuffersBefore: ab0, arrayBuffersAfter: process.memoryUsage().arrayBuffers, arrayBufferRises: abRises, sites })}\n`,
      );
    }
  });
}
