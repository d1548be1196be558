#!/usr/bin/env bash
# Does a busy loch worker still give memory back once it goes quiet (issue 18: the
# --no-memory-reducer default)? A 1-worker loch (apps/proxy's build, dist/bin.js; [admin] metrics
# on, access log to a file, as gc-pauses.sh runs it) serves wrk -t1 -cCONNS for LOAD seconds, then
# nothing for QUIET seconds. Loch's process RSS (/proc VmRSS) is sampled every second from the
# load's last 5 s to the end; with --trace-gc on node's command line, the worker's GCs after the
# load stopped show what shrank it (the idle trim: two memory-reducing mark-compacts, reason
# "low memory notification"). Extra node flags: LOCH_NODE_ARGS (e.g. the V8 flags preload
# bench/lib/v8-flags.cjs with LOCH_BENCH_V8_FLAGS). Nothing pinned: RSS is not a timing reading.
#
# Usage: [LOCH_DIR=<checkout with apps/proxy built>] bench/http-proxy/gc-quiet.sh [load=60] [quiet=40] [conns=16] [size=128]
# Output: one line per second "t rss_kib phase", then a summary line: RSS at the load's end, the
# least RSS while quiet and when it was first within 1 MiB of that least.
set -euo pipefail
load=${1:-60}
quiet=${2:-40}
conns=${3:-16}
size=${4:-128}
here=$(cd "$(dirname "$0")/../.." && pwd)
loch_dir=${LOCH_DIR:-$here}
# free_port, run_dir, wait_http, pids, cleanup, static_backend and loch_bench_config.
. "$here/bench/http-proxy/lib.sh"
dir=$(run_dir gc-quiet)
echo "run dir: $dir" >&2
trap cleanup EXIT
static_backend "$dir" "$size"
port=$(free_port)
loch_bench_config "$dir/loch.toml" "$port" "$upstream" "$dir/access.log"
# shellcheck disable=SC2086
(cd "$loch_dir/apps/proxy" && exec node --trace-gc ${LOCH_NODE_ARGS:-} dist/bin.js run -c "$dir/loch.toml") \
  >"$dir/out" 2>"$dir/err" &
loch=$!
pids+=("$loch")
wait_http "$port" "/$size"
rss() { awk '/^VmRSS/ {print $2}' "/proc/$loch/status"; }
wrk -t1 -c"$conns" -d"${load}s" "http://127.0.0.1:$port/$size" >"$dir/wrk.txt" &
wrk_pid=$!
pids+=("$wrk_pid")
sleep $((load - 5))
t=0
for _ in 1 2 3 4 5; do
  echo "$t $(rss) busy"
  sleep 1
  t=$((t + 1))
done
wait "$wrk_pid" || true
stopped=$(stat -c %s "$dir/out")
for _ in $(seq 1 "$quiet"); do
  echo "$t $(rss) quiet"
  sleep 1
  t=$((t + 1))
done | tee "$dir/quiet.txt"
awk -v req="$(awk '/requests in/ {print $1}' "$dir/wrk.txt")" '
  NR == 1 { first = $2 }
  { r[NR] = $2; t[NR] = $1; if (min == "" || $2 < min) min = $2 }
  END { for (i = 1; i <= NR; i++) if (r[i] <= min + 1024) { at = t[i]; break }
        printf "summary: %s requests; RSS %d KiB when the load stopped, least %d KiB while quiet, within 1 MiB of it at t=%d s (the load stopped at t=5)\n", req, first, min, at }' \
  "$dir/quiet.txt"
echo "loch's mark-compacts and scavenges after the load stopped, all isolates (--trace-gc):"
tail -c +"$((stopped + 1))" "$dir/out" | grep -E 'Mark-Compact|Scavenge' | sed 's/^/  /' | tail -8
