#!/usr/bin/env bash
# Instructions per proxied request at a fixed V8 semi-space (issue 18: what a smaller
# runtime.worker_young_generation_bytes costs; a worker's semi-spaces are a third of that cap
# each, so "12m" is 4 MiB and "24m" 8 MiB). apps/proxy/bench/proxy-core.ts bundled as
# bench/http-proxy/callgrind-core.sh bundles it, run under callgrind once per request count with
# --min-semi-space-size = --max-semi-space-size = S (no growth inside an interval) and
# --trace-gc (the collections, in out.S.N), 128 B, as shipped (access log to a file, metrics).
# Per request between two counts: bench/http-proxy/callgrind-core.py DIR/cg.S.N1 DIR/cg.S.N2 N1 N2
# (its "gc" part is the young generation's cost when the interval holds no mark-compact: see
# out.S.N). Counts, so a loaded machine changes the time it takes, not the result.
#
# Usage: bench/idle-memory/semi-space-callgrind.sh S N... (e.g. 4 3000 13000 23000)
# Env: OUT (dir, default a new one under $TMPDIR), CPU (default 1).
set -euo pipefail
semi=$1
shift
here=$(cd "$(dirname "$0")/../.." && pwd)
dir=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/semi-space-callgrind-XXXXXX")}
mkdir -p "$dir"
echo "run dir: $dir" >&2
esbuild=${ESBUILD:-$(ls -d "$here"/node_modules/.pnpm/esbuild@*/node_modules/esbuild/bin/esbuild | tail -1)}
if [ ! -f "$dir/core.mjs" ]; then
  (cd "$here/apps/proxy" && "$esbuild" bench/proxy-core.ts --bundle --platform=node --format=esm \
    --conditions=@loch/source --target=node20 --log-level=warning \
    --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" \
    --outfile="$dir/core.mjs")
fi
export LOCH_NATIVE_PATH=${LOCH_NATIVE_PATH:-$here/native/build/Release/loch_native.node}
for n in "$@"; do
  taskset -c "${CPU:-1}" valgrind --tool=callgrind --smc-check=all-non-file \
    --callgrind-out-file="$dir/cg.$semi.$n" node --min-semi-space-size="$semi" --max-semi-space-size="$semi" \
    --trace-gc "$dir/core.mjs" "$n" --size 128 --rounds 1 --log-file "$dir/access-$semi-$n.log" --metrics \
    >"$dir/out.$semi.$n" 2>&1
  echo "$n requests: $(grep -c Scavenge "$dir/out.$semi.$n" || true) scavenges, $(grep -c Mark-Compact "$dir/out.$semi.$n" || true) mark-compacts"
done
