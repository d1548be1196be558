#!/usr/bin/env bash
# A 1-worker loch's GC pauses under the HTTP/1.1 proxy load (issue 18: long tails while its CPU
# waited). The page's layout: wrk -t1 -cCONNS and one nginx worker serving static files on CPU 0,
# loch (apps/proxy's build, dist/bin.js; [admin] metrics on, access log to a file, 1 worker) on
# CPU 1 with `taskset` on the whole process, so V8's helper threads and libuv's pool share the
# worker's CPU. PIN=0 runs the same without any taskset (the contrast: helpers on a free CPU).
#
# Per size: a fresh loch with V8's --trace-gc-nvp (plus $GC_FLAGS, e.g. --trace-gc-verbose) on its
# command line (process-wide: it reaches the worker's isolate), a WARM s wrk warm-up, then one
# SECONDS s wrk --latency run. The byte offsets of loch's output before and after that run
# bracket the GC lines of the measured run (<dir>/<size>/gc.txt); gc-nvp.py reads them.
# REUSE=1: one loch for all the sizes in turn (a long-lived loch, as a results page's run uses it;
# a size may repeat), points in <dir>/<n>-<size>.
# LOCH_FROM_SOURCE=1 runs apps/proxy/src/bin.ts under tsx instead of the build.
# LOCH_NODE_ARGS: extra node flags (e.g. "--require=/abs/bench/http-proxy/gc-ab-preload.cjs").
#
# Usage: PIN=1 bench/http-proxy/gc-pauses.sh [sizes=128,16384] [seconds=10] [warm=3] [conns=64]
# Output: per size, wrk's req/s and latency percentiles, loch's CPU per request, and gc-nvp.py's
# summary of the worker isolate's pauses. Needs apps/proxy built, nginx, wrk, taskset; root.
set -euo pipefail
sizes=${1:-128,16384}
seconds=${2:-10}
warm=${3:-3}
conns=${4:-64}
pin=${PIN:-1}
reuse=${REUSE:-0}
here=$(cd "$(dirname "$0")/../.." && pwd)
# free_port, run_dir, wait_http, pids, cleanup, static_backend and loch_bench_config.
. "$here/bench/http-proxy/lib.sh"
dir=$(run_dir gc-pauses)
echo "run dir: $dir (PIN=$pin)" >&2
on() { # cpu command... : taskset when PIN=1 (exec, so a backgrounded `on` is the command's pid)
  local cpu=$1
  shift
  if [ "$pin" = 1 ]; then exec taskset -c "$cpu" "$@"; else exec "$@"; fi
}
trap cleanup EXIT

IFS=, read -ra size_arr <<<"$sizes"
if [ "$pin" = 1 ]; then static_backend "$dir" "$sizes" 0; else static_backend "$dir" "$sizes"; fi

hz=$(getconf CLK_TCK)
# "tid comm ticks involuntary voluntary" per thread of pid (the worker is the busiest thread).
threads() {
  for t in /proc/"$1"/task/*; do
    local st
    st=$(cat "$t/stat" 2>/dev/null) || continue
    echo "${t##*/} $(echo "${st#*(}" | cut -d')' -f1 | tr ' ' _) $(echo "${st##*) }" | awk '{print $12 + $13}') \
$(awk '/^nonvoluntary_ctxt_switches/ {n=$2} /^voluntary_ctxt_switches/ {v=$2} END {print n, v}' "$t/status")"
  done
}
loch=
n=0
for s in "${size_arr[@]}"; do
  n=$((n + 1))
  p="$dir/$s"
  [ "$reuse" = 1 ] && p="$dir/$n-$s"
  mkdir -p "$p"
  if [ -z "$loch" ]; then
  lp=$p
  port=$(free_port)
  loch_bench_config "$p/loch.toml" "$port" "$upstream" "$p/access.log"
  # shellcheck disable=SC2086
  # LOCH_FROM_SOURCE=1: loch from the working tree's sources under tsx (counts at HEAD without a build).
  loch_cmd=("$here/apps/proxy/dist/bin.js")
  [ "${LOCH_FROM_SOURCE:-0}" = 1 ] && loch_cmd=(--conditions=@loch/source --import tsx "$here/apps/proxy/src/bin.ts")
  (cd "$here/apps/proxy" && on 1 node --trace-gc-nvp ${GC_FLAGS:-} ${LOCH_NODE_ARGS:-} "${loch_cmd[@]}" run -c "$p/loch.toml") \
    >"$p/out" 2>"$p/err" &
  loch=$!
  pids+=("$loch")
  fi
  wait_http "$port" "/$s"
  url="http://127.0.0.1:$port/$s"
  (on 0 wrk -t1 -c"$conns" -d"${warm}s" "$url") >/dev/null
  [ -n "${LOCH_AB_DIR:-}" ] && echo before >"$LOCH_AB_DIR/mark" && sleep 0.3
  a=$(stat -c %s "$lp/out")
  t0=$(awk '{print $14 + $15}' "/proc/$loch/stat")
  threads "$loch" >"$p/threads-a"
  (on 0 wrk -t1 -c"$conns" -d"${seconds}s" --latency "$url") >"$p/wrk.txt"
  t1=$(awk '{print $14 + $15}' "/proc/$loch/stat")
  threads "$loch" >"$p/threads-b"
  b=$(stat -c %s "$lp/out")
  [ -n "${LOCH_AB_DIR:-}" ] && echo "after $(awk '/requests in/ {print $1}' "$p/wrk.txt")" >"$LOCH_AB_DIR/mark" && sleep 0.3
  if [ "$reuse" != 1 ]; then
    kill "$loch" 2>/dev/null || true
    wait "$loch" 2>/dev/null || true
    loch=
  fi
  head -c "$b" "$lp/out" | tail -c "+$((a + 1))" >"$p/gc.txt"
  req=$(awk '/requests in/ {print $1}' "$p/wrk.txt")
  rps=$(awk '/Requests\/sec/ {print $2}' "$p/wrk.txt")
  lat=$(awk '/^ +(50|90|99|99\.9)%/ {printf "%s=%s ", $1, $2}' "$p/wrk.txt")
  maxl=$(awk '/^ +Latency/ {print $4}' "$p/wrk.txt")
  us=$(awk -v a="$t0" -v b="$t1" -v r="$req" -v hz="$hz" 'BEGIN { printf "%.1f", (b - a) * 1e6 / hz / r }')
  echo "PIN=$pin $s B: $req requests, $rps req/s, latency $lat max $maxl, loch $us CPU us/req"
  awk -v hz="$hz" 'NR == FNR { c[$1] = $3; i[$1] = $4; v[$1] = $5; next }
    { d = ($3 - c[$1]) * 1000 / hz; if (d > 0 || $4 - i[$1] > 0) printf "  thread %s %s: %.0f ms CPU, %d involuntary / %d voluntary switches\n", $1, $2, d, $4 - i[$1], $5 - v[$1] }' \
    "$p/threads-a" "$p/threads-b"
  /usr/bin/python3 "$here/bench/http-proxy/gc-nvp.py" "$p/gc.txt" "$seconds" "$req"
done
