#!/usr/bin/env bash
# A fresh loch's first minute, window by window (issue 18, the 2-worker start-up stretch): per
# window its CPU us a request and, with TRACE=1, where its node output (--trace-opt
# --trace-deopt-verbose) stood at the window's start and end, so deopt-windows.py can count the
# deoptimizations of each window. counts-scaling.sh's layout: wrk -t1 -cCONNS on CPU 0 -> loch
# (WORKERS workers on CPUS, default 2 on 0-1) -> one nginx worker serving SIZE B on CPU 0; loch as
# shipped (lib.sh's loch_bench_config: access log to a file, metrics through [admin]).
# Instances alternate between the trees: tree 1's first, tree 2's first, tree 1's second, ...
# (with ROTATE=1 every other round starts with the last tree, so each tree goes first as often).
# Usage: bench/http-proxy/deopt-windows.sh LABEL=TREE[,LABEL=TREE...] [instances=3] [windows=18]
#          [seconds=3] [warm=2] [size=128] [conns=64]
# A window is a wrk run of its own (connections closed and opened between windows, a short gap);
# CONTINUOUS=1: one wrk over all the windows, each window read as it passes (its requests from
# the access log), so no gap between windows.
# Env: WORKERS (default 2), CPUS (default 0-1; 1 worker: 1), PORTS (LO-HI), CONTINUOUS, LOCH_ENV, TRACE=1 (trace flags; the traces
# cost CPU themselves, so a TRACE run's us are not the product's; TRACE_ARGS replaces the flags), ROTATE,
# WRK_HEADER (one header every wrk sends, e.g. 'Connection: close' for connection churn).
# Prints one JSON line per instance: {"tree", "instance", "out" (the node output file), "windows":
# [{"t" (s since the proxy answered, at the window's start), "cpu_us", "rps", "from", "to"
# (byte offsets of out)}]}; the run dir keeps each instance's out and access log.
set -euo pipefail
trees=${1:?LABEL=TREE[,LABEL=TREE...]}
instances=${2:-3}
nwin=${3:-18}
seconds=${4:-3}
warm=${5:-2}
size=${6:-128}
conns=${7:-64}
workers=${WORKERS:-2}
cpus=${CPUS:-0-1}
[ "$workers" = 1 ] && cpus=${CPUS:-1}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
# PORTS=LO-HI: free_port picks from that range instead (a session's own ports; bench/lib/free-port.sh).
if [ -n "${PORTS:-}" ]; then export FREE_PORT_RANGE=$PORTS; fi
trap cleanup EXIT
dir=$(run_dir deopt-windows)
echo "run dir: $dir" >&2
static_backend "$dir" "$size" 0
node_args=''
[ "${TRACE:-0}" = 1 ] && node_args=${TRACE_ARGS:-'--trace-opt --trace-deopt-verbose'}
# LOCH_ENV="NAME=value ...": set for loch (e.g. LOCH_IDLE_TRIM_MS=0, NODE_DEBUG=loch); LOCH_ENV_<label>
# for one tree's instances only (a label may name the same tree as another: one build, two settings).
loch_env=${LOCH_ENV:-}
wrk_extra=()
[ -n "${WRK_HEADER:-}" ] && wrk_extra=(-H "$WRK_HEADER")

# utime + stime (clock ticks) of the proxy process: every thread, live or exited (loch's workers
# are threads of it). One read, so the gap between windows stays short (an idle second would run
# the runtime's idle trim).
ticks() { # pid
  local stat rest
  stat=$(cat /proc/"$1"/stat)
  rest=${stat##*) }
  # shellcheck disable=SC2086
  set -- $rest
  echo $((${12} + ${13}))
}

IFS=, read -ra tree_arr <<<"$trees"
hz=$(getconf CLK_TCK)
for i in $(seq 1 "$instances"); do
  order=("${tree_arr[@]}")
  if [ "${ROTATE:-0}" = 1 ] && [ $((i % 2)) -eq 0 ]; then
    order=()
    for ((k = ${#tree_arr[@]} - 1; k >= 0; k--)); do order+=("${tree_arr[$k]}"); done
  fi
  for lt in "${order[@]}"; do
    label=${lt%%=*}
    tree=${lt#*=}
    port=$(free_port)
    p="$dir/$label-$i"
    mkdir -p "$p/logs"
    loch_bench_config "$p/loch.toml" "$port" "$upstream" "$p/logs/access.log"
    sed -i "s/^workers = 1$/workers = $workers/" "$p/loch.toml"
    envv=LOCH_ENV_$label
    # shellcheck disable=SC2086
    (cd "$tree/apps/proxy" && exec env $loch_env ${!envv:-} taskset -c "$cpus" node $node_args dist/bin.js run -c "$p/loch.toml") >"$p/out" 2>&1 &
    proxy=$!
    pids+=("$proxy")
    wait_http "$port" "/$size"
    t0=$(date +%s.%N)
    url="http://127.0.0.1:$port/$size"
    [ "$warm" != 0 ] && taskset -c 0 wrk -t1 -c"$conns" "${wrk_extra[@]}" -d"${warm}s" "$url" >/dev/null
    wins=''
    if [ "${CONTINUOUS:-0}" = 1 ]; then
      # One wrk for the whole run; each window's requests are the access log's new lines (flushed
      # every 50 ms: a window's count is off by at most that much of its load).
      taskset -c 0 wrk -t1 -c"$conns" "${wrk_extra[@]}" -d"$((nwin * (seconds + 1)))s" "$url" >"$p/wrk" &
      wrk_pid=$!
      pids+=("$wrk_pid")
      sleep 0.5
      for ((w = 0; w < nwin; w++)); do
        ws=$(date +%s.%N)
        from=$(stat -c %s "$p/out")
        c0=$(ticks "$proxy")
        l0=$(wc -l <"$p/logs/access.log")
        sleep "$seconds"
        c1=$(ticks "$proxy")
        l1=$(wc -l <"$p/logs/access.log")
        to=$(stat -c %s "$p/out")
        we=$(date +%s.%N)
        wins+="${wins:+, }$(awk -v t="$ws" -v t0="$t0" -v te="$we" -v c=$((c1 - c0)) -v hz="$hz" -v req=$((l1 - l0)) \
          -v from="$from" -v to="$to" 'BEGIN { printf "{\"t\": %.1f, \"cpu_us\": %.3f, \"rps\": %d, \"from\": %d, \"to\": %d}", t - t0, c * 1e6 / hz / req, req / (te - t), from, to }')"
      done
      kill "$wrk_pid" 2>/dev/null || true
      wait "$wrk_pid" 2>/dev/null || true
    else
      for ((w = 0; w < nwin; w++)); do
        ws=$(date +%s.%N)
        from=$(stat -c %s "$p/out")
        c0=$(ticks "$proxy")
        taskset -c 0 wrk -t1 -c"$conns" "${wrk_extra[@]}" -d"${seconds}s" "$url" >"$p/wrk"
        c1=$(ticks "$proxy")
        to=$(stat -c %s "$p/out")
        req=$(awk '/requests in/ {print $1}' "$p/wrk")
        wins+="${wins:+, }$(awk -v t="$ws" -v t0="$t0" -v c=$((c1 - c0)) -v hz="$hz" -v req="$req" -v s="$seconds" \
          -v from="$from" -v to="$to" 'BEGIN { printf "{\"t\": %.1f, \"cpu_us\": %.3f, \"rps\": %d, \"from\": %d, \"to\": %d}", t - t0, c * 1e6 / hz / req, req / s, from, to }')"
      done
    fi
    echo "{\"tree\": \"$label\", \"instance\": $i, \"workers\": $workers, \"trace\": ${TRACE:-0}, \"out\": \"$p/out\", \"windows\": [$wins]}" |
      tee -a "$dir/points.jsonl"
    kill "$proxy"
    wait "$proxy" 2>/dev/null || true
  done
done
