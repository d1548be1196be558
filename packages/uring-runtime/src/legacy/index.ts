/**
 * The legacy (node:net) driver of @loch/uring-runtime. Internal to the package; users reach it
 * through the runtime's public API with driver 'legacy', or 'auto' when io_uring is unavailable.
 */
export { createLegacyDriver, LegacyDriver } from './driver.js';
export { LegacyListener } from './listener.js';
export { nodeHasReusePort } from './reuse-port.js';
export { LegacyStream } from './stream.js';
