/**
 * A preload for A/B runs of V8 heap flags on loch: `node --require bench/lib/v8-flags.cjs` applies
 * LOCH_BENCH_V8_FLAGS (e.g. "--heap-growing-percent=20 --max-semi-space-size=4") with
 * v8.setFlagsFromString before loch starts its workers. V8 flags are process-wide, so the workers'
 * isolates are made with them, but node refuses them in a Worker's execArgv (which inherits the
 * command line's), so they cannot go on loch's command line itself. For benchmarks only.
 * Usage: LOCH_BENCH_V8_FLAGS="..." LOCH_BENCH_NODE_ARGS="--require=/abs/bench/lib/v8-flags.cjs" <bench>
 *   or bench:idle-memory's --loch-node-args=--require=/abs/bench/lib/v8-flags.cjs
 */
const flags = process.env.LOCH_BENCH_V8_FLAGS;
if (flags) require('node:v8').setFlagsFromString(flags);
