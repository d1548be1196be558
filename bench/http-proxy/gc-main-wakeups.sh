#!/usr/bin/env bash
# What wakes loch's main thread under load (issue 18): a 1-worker loch (apps/proxy's build; the
# bench config of lib.sh: admin metrics, access log to a file) serves wrk -t1 -c16 for SECONDS after a
# 5 s warm-up, with its access log either beside loch.toml (the directory loch watches for config
# changes, as bench/http-proxy/peers.ts lays it out) or in another directory; per run the main
# thread's (tid = pid) voluntary context switches and CPU from /proc, per request. Both layouts
# alternate for ROUNDS rounds, each on a fresh loch. Counts, not timings: nothing is pinned.
# Usage: [LOCH_DIR=<checkout with apps/proxy built>] bench/http-proxy/gc-main-wakeups.sh [seconds=20] [rounds=2]
set -euo pipefail
seconds=${1:-20}
rounds=${2:-2}
here=$(cd "$(dirname "$0")/../.." && pwd)
loch_dir=${LOCH_DIR:-$here}
# free_port, run_dir, wait_http, pids, cleanup, static_backend and loch_bench_config.
. "$here/bench/http-proxy/lib.sh"
trap cleanup EXIT
dir=$(run_dir gc-main-wakeups)
echo "run dir: $dir" >&2
static_backend "$dir" 128
hz=$(getconf CLK_TCK)
for round in $(seq 1 "$rounds"); do
  for where in beside elsewhere; do
    d="$dir/$where-$round"
    mkdir -p "$d" "$d-logs"
    log="$d/access.log"
    [ "$where" = elsewhere ] && log="$d-logs/access.log"
    port=$(free_port)
    loch_bench_config "$d/loch.toml" "$port" "$upstream" "$log"
    (cd "$loch_dir/apps/proxy" && exec node dist/bin.js run -c "$d/loch.toml") >"$d/out" 2>"$d/err" &
    loch=$!
    pids+=("$loch")
    wait_http "$port" /128
    wrk -t1 -c16 -d5s "http://127.0.0.1:$port/128" >/dev/null
    read -r u0 s0 <<<"$(awk '{print $14, $15}' "/proc/$loch/task/$loch/stat")"
    v0=$(awk '/^voluntary_ctxt_switches/ {print $2}' "/proc/$loch/task/$loch/status")
    wrk -t1 -c16 -d"${seconds}s" "http://127.0.0.1:$port/128" >"$d/wrk.txt"
    read -r u1 s1 <<<"$(awk '{print $14, $15}' "/proc/$loch/task/$loch/stat")"
    v1=$(awk '/^voluntary_ctxt_switches/ {print $2}' "/proc/$loch/task/$loch/status")
    req=$(awk '/requests in/ {print $1}' "$d/wrk.txt")
    kill "$loch"
    wait "$loch" 2>/dev/null || true
    awk -v w="$where" -v r="$round" -v req="$req" -v t=$(((u1 + s1) - (u0 + s0))) -v v=$((v1 - v0)) -v hz="$hz" -v s="$seconds" \
      'BEGIN { printf "%s round %s: %d requests; main thread %d ms CPU, %d wake-ups (%.1f/s); %.4f wake-ups and %.3f us CPU per request\n", w, r, req, t * 1000 / hz, v, v / s, v / req, t * 1e6 / hz / req }'
  done
done
