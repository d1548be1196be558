/** @loch/uring-runtime: io_uring thread-per-core runtime with a node:net fallback: TCP, Unix, timers, cancellation, workers. */
export {};
