#!/usr/bin/env bash
# Collections per request at each young-generation cap, without valgrind (issue 18): the bundle
# semi-space-callgrind.sh makes (apps/proxy/bench/proxy-core.ts, 128 B, access log to a file,
# metrics), run once per semi-space cap S MiB with --max-semi-space-size=S only (V8 starts small
# and grows up to S, as a worker capped by runtime.worker_young_generation_bytes = "3S m" does) and
# --trace-gc, N requests: scavenges and mark-compacts per 1,000 requests, and the largest new
# space the trace shows. Counts, not times (the CPU proxy-core.ts prints is unheld here).
#
# Usage: bench/idle-memory/young-trace.sh DIR N S... (DIR holds core.mjs from semi-space-callgrind.sh)
# e.g. bench/idle-memory/young-trace.sh /tmp/cg 400000 8 2 1
set -euo pipefail
dir=$1
n=$2
shift 2
here=$(cd "$(dirname "$0")/../.." && pwd)
export LOCH_NATIVE_PATH=${LOCH_NATIVE_PATH:-$here/native/build/Release/loch_native.node}
for s in "$@"; do
  out="$dir/trace.$s.$n"
  taskset -c "${CPU:-1}" node --max-semi-space-size="$s" --trace-gc "$dir/core.mjs" "$n" --size 128 --rounds 1 \
    --log-file "$dir/access-trace-$s.log" --metrics >"$out" 2>&1
  sc=$(grep -c Scavenge "$out" || true)
  mc=$(grep -c Mark-Compact "$out" || true)
  echo "semi-space $s MiB (\"$((3 * s))m\"), $n requests: $sc scavenges ($(awk -v a="$sc" -v n="$n" 'BEGIN{printf "%.2f", 1000*a/n}') per 1,000), $mc mark-compacts"
  rm -f "$dir/access-trace-$s.log"
done
