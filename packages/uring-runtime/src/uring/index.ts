/**
 * The io_uring driver of @loch/uring-runtime (on @loch/native): createUringDriver() for driver
 * selection, probeUring() for 'auto'. Internal to the package; users reach it through the
 * runtime's public API with driver 'uring' or 'auto'.
 */
export { createUringDriver, UringDriver, type UringDriverOptions, UringUnavailableError } from './driver.js';
export { UringListener } from './listener.js';
export { probeUring, type UringFeatures, type UringProbe } from './probe.js';
export type { FlushMode } from './ring.js';
export { UringStream } from './stream.js';
