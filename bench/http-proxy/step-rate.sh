#!/usr/bin/env bash
# Is loch's 0 B -> 128 B step a cost per request or a cost of the request rate? (issue 18,
# step-2026-12-07.md). In bench:ab's 1-worker layout the proxy on CPU 1 is not saturated: CPU 0
# (wrk and the static nginx) sets the rate, and an empty file costs that nginx less, so 0 B runs
# ~30% more requests a second than 128 B. An event loop that is not saturated gets cheaper per
# request as the rate rises (more completions a wake-up, fewer ring crossings a request), so the
# two sizes' CPU per request are read here at several rates each (wrk -c), to compare them at
# equal rates.
# Layout: wrk -t1 -cC on CPU 0 -> loch (1 worker, CPU 1, as shipped: metrics and the access log
# on, lib.sh's loch_bench_config) -> one nginx worker serving static files on CPU 0. One loch for
# every point (after a start warm-up of WARM0 s); per point a WARM s wrk warm-up, then S s of wrk
# measured: req/s, loch's user and system CPU us per request (/proc/PID/stat, every thread) and
# loch's syscalls and io_uring_enter calls per request (perf stat tracepoints).
# TIMED: run it held (/tmp/s55/hold-run NAME ...).
#
# Usage: bench/http-proxy/step-rate.sh [points=0:16,0:32,0:64,128:16,128:32,128:64] [seconds=5] [warm=2] [passes=2]
#   points are SIZE:CONNS; pass 2 runs them in reverse order, pass 3 forward again, ... (so no
#   point always comes first or last).
# Env: TREE (a built clone; default this tree: its apps/proxy/dist), WARM0 (start warm-up s, default 10),
# FREE_PORT_RANGE (lib/free-port.sh), COUNT (1, the default: perf stat's syscall counts in the
# measured window, which add system time; 0: none, CPU comparable with bench:ab's). Output: one line a point on stdout, and a table at the end.
set -euo pipefail
points=${1:-0:16,0:32,0:64,128:16,128:32,128:64}
seconds=${2:-5}
warm=${3:-2}
passes=${4:-2}
here=$(cd "$(dirname "$0")" && pwd)
tree=${TREE:-$(cd "$here/../.." && pwd)}
. "$here/lib.sh"
trap cleanup EXIT
dir=$(run_dir step-rate)
echo "run dir: $dir (tree $tree)" >&2
IFS=, read -ra point_arr <<<"$points"
sizes=$(printf '%s\n' "${point_arr[@]}" | cut -d: -f1 | sort -un | paste -sd,)
static_backend "$dir" "$sizes" 0

port=$(free_port)
mkdir -p "$dir/loch/logs"
loch_bench_config "$dir/loch/loch.toml" "$port" "$upstream" "$dir/loch/logs/access.log"
(cd "$dir/loch" && exec taskset -c 1 node "$tree/apps/proxy/dist/bin.js" run -c "$dir/loch/loch.toml") \
  >"$dir/loch/out" 2>&1 &
loch_pid=$!
pids+=("$loch_pid")
first=${point_arr[0]%%:*}
wait_http "$port" "/$first"
taskset -c 0 wrk -t1 -c64 -d"${WARM0:-10}s" "http://127.0.0.1:$port/$first" >/dev/null

# utime and stime of the whole process (every thread), in ticks.
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
events=raw_syscalls:sys_enter,syscalls:sys_enter_io_uring_enter
echo "pass size conns req/s user_us sys_us cpu_us syscalls enters" >"$dir/points.txt"
for pass in $(seq 1 "$passes"); do
  order=("${point_arr[@]}")
  if [ $((pass % 2)) = 0 ]; then
    order=()
    for ((i = ${#point_arr[@]} - 1; i >= 0; i--)); do order+=("${point_arr[$i]}"); done
  fi
  for pt in "${order[@]}"; do
    s=${pt%%:*}
    c=${pt##*:}
    url="http://127.0.0.1:$port/$s"
    out="$dir/p$pass-$s-$c"
    taskset -c 0 wrk -t1 -c"$c" -d"${warm}s" "$url" >/dev/null
    # COUNT=1 adds perf stat's syscall tracepoints to the measured window: they cost loch system
    # time, so a reading to compare with bench:ab's leaves them out (COUNT=0; REVIEW F278).
    perf_pid=
    : >"$out.perf"
    if [ "${COUNT:-1}" = 1 ]; then
      perf stat -x, -e "$events" -p "$loch_pid" -o "$out.perf" &
      perf_pid=$!
      sleep 0.2
    fi
    read -r u0 s0 < <(ticks "$loch_pid")
    taskset -c 0 wrk -t1 -c"$c" -d"${seconds}s" "$url" >"$out.wrk"
    read -r u1 s1 < <(ticks "$loch_pid")
    if [ -n "$perf_pid" ]; then
      kill -INT "$perf_pid"
      wait "$perf_pid" 2>/dev/null || true
    fi
    /usr/bin/python3 - "$pass" "$s" "$c" "$out" "$hz" "$u0" "$s0" "$u1" "$s1" <<'PY' | tee -a "$dir/points.txt"
import re, sys
pas, s, c, out, hz, u0, s0, u1, s1 = sys.argv[1:]
wrk = open(f"{out}.wrk").read()
req = int(re.search(r"(\d+) requests in", wrk).group(1))
rps = float(re.search(r"Requests/sec:\s+(\S+)", wrk).group(1))
errors = re.search(r"Non-2xx|Socket errors", wrk)
counts = {}
for line in open(f"{out}.perf"):
    f = line.strip().split(",")
    if len(f) > 2 and f[0].replace(".", "").isdigit():
        counts[f[2].split(":")[-1]] = int(float(f[0]))
us = lambda a, b: (int(b) - int(a)) * 1e6 / int(hz) / req
user, sys_ = us(u0, u1), us(s0, s1)
# perf counted from 0.2 s before wrk to just after it: a few idle-time calls, nothing per request.
print(f"{pas} {s} {c} {rps:.0f} {user:.2f} {sys_:.2f} {user + sys_:.2f} "
      f"{counts.get('sys_enter', 0) / req:.3f} {counts.get('sys_enter_io_uring_enter', 0) / req:.3f}"
      + (" ERRORS" if errors else ""))
PY
  done
done
echo "columns: pass size conns req/s user_us sys_us cpu_us (loch, a request) syscalls enters (loch, a request)"
echo "points: $dir/points.txt"
