#!/usr/bin/env bash
# Counts one event-loop turn of the io_uring runtime (issues 15 and 18): pingpong-server.ts (one
# connection echoed with recvTo/writeTo on the uring driver) bundled with esbuild and run twice,
# with N1 and N2 sequential round trips from pingpong-client.py; (count(N2) - count(N1)) /
# (N2 - N1) is what one round trip (one wakeup of the thread) costs once start-up is subtracted.
#
# GAP_MS (5th argument): the client sleeps that long after each echo (pingpong-client.py), so the
# thread is asleep in epoll when every message arrives and each round trip is one wakeup (epoll,
# the ring's poll callback into JavaScript, the flush's immediate): the regime of a quiet machine
# or few connections. 0 (the default) is the other regime: the flush's drain often finds the next
# message already there (no wakeup between them). `turn-count.sh callgrind 4000 8000 64 3` is the
# wakeup turn of bench/thrift/readings-2026-12-05c.md.
#
# Usage: bench/runtime/turn-count.sh <mode> [n1=2000] [n2=12000] [size=64] [gap_ms=0]
#   mode callgrind: user-space instructions per round trip under valgrind's callgrind, split by
#     function (bench/http-proxy/callgrind-core.py, JIT code named through node's perf map), and
#     the inclusive Ir of the turn's layers (libuv, node's callback scope, N-API, the addon).
#   mode strace: syscalls per round trip (strace -f -c).
#   mode perf: kernel events per round trip (perf stat: syscalls, io_uring tracepoints, switches)
#     and CPU per round trip (task-clock of the whole process, user and system together).
# Env: OUT (dir; default a new one under $TMPDIR), BUNDLE (a bundle made before, e.g. from another
# revision: compare trees), LOCH_URING_FLUSH (the ring's flush mode), TOP (functions listed),
# NODE_ARGS (more node flags), CPU (pinned CPU for callgrind, default 1).
set -euo pipefail
mode=${1:?mode: callgrind|strace|perf}
n1=${2:-2000}
n2=${3:-12000}
size=${4:-64}
gap=${5:-0}
here=$(cd "$(dirname "$0")/../.." && pwd)
dir=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/turn-count-XXXXXX")}
mkdir -p "$dir"
echo "run dir: $dir" >&2
esbuild=${ESBUILD:-$(ls -d "$here"/node_modules/.pnpm/esbuild@*/node_modules/esbuild/bin/esbuild | tail -1)}
if [ -n "${BUNDLE:-}" ]; then
  cp "$BUNDLE" "$dir/pp.mjs"
else
  (cd "$here/bench" && "$esbuild" runtime/pingpong-server.ts --bundle --platform=node --format=esm \
    --conditions=@loch/source --target=node20 --log-level=warning \
    --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" \
    --outfile="$dir/pp.mjs")
fi
export LOCH_NATIVE_PATH=${LOCH_NATIVE_PATH:-$here/native/build/Release/loch_native.node}
# shellcheck disable=SC2206
node_args=(${NODE_ARGS:-})
EVENTS=task-clock,raw_syscalls:sys_enter,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_io_uring_enter,io_uring:io_uring_submit_req,io_uring:io_uring_complete,io_uring:io_uring_task_add,context-switches
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; }
trap cleanup EXIT
for n in "$n1" "$n2"; do
  rm -f "$dir/srv.$n"
  case "$mode" in
    callgrind)
      taskset -c "${CPU:-1}" valgrind --tool=callgrind --smc-check=all-non-file \
        --callgrind-out-file="$dir/cg.$n" node --perf-basic-prof "${node_args[@]}" "$dir/pp.mjs" 0 \
        >"$dir/srv.$n" 2>"$dir/err.$n" &
      ;;
    strace) strace -f -c -o "$dir/strace.$n" node "${node_args[@]}" "$dir/pp.mjs" 0 >"$dir/srv.$n" 2>"$dir/err.$n" & ;;
    perf) perf stat -x, -e "$EVENTS" -o "$dir/perf.$n" node "${node_args[@]}" "$dir/pp.mjs" 0 >"$dir/srv.$n" 2>"$dir/err.$n" & ;;
    *) echo "unknown mode $mode" >&2; exit 2 ;;
  esac
  pid=$!
  for _ in $(seq 1 3000); do  # up to 10 min: node under valgrind starts slowly on a loaded machine
    grep -q '^listening' "$dir/srv.$n" 2>/dev/null && break
    sleep 0.2
  done
  port=$(awk '/^listening/ {print $2}' "$dir/srv.$n")
  python3 "$here/bench/runtime/pingpong-client.py" "$port" "$n" "$size" "$gap"
  wait "$pid"
  # valgrind runs node in its own process (taskset and valgrind exec): the job's pid is node's.
  if [ "$mode" = callgrind ]; then mv "/tmp/perf-$pid.map" "$dir/map.$n" 2>/dev/null || true; fi
  pid=
done
case "$mode" in
  callgrind)
    maps=()
    [ -f "$dir/map.$n1" ] && [ -f "$dir/map.$n2" ] && maps=(--maps "$dir/map.$n1" "$dir/map.$n2")
    /usr/bin/python3 "$here/bench/http-proxy/callgrind-core.py" "$dir/cg.$n1" "$dir/cg.$n2" "$n1" "$n2" "${TOP:-40}" \
      "${maps[@]}" --incl "${INCL:-uv__io_poll,uv__run_check,uv__poll_io,OnPoll,napi_make_callback,InternalCallbackScope,InternalMakeCallback,Ring::Drain,Ring::Submit,PerformCheckpoint,RunMicrotasks,Execution::Call,Invoke,JSEntry,uv__run_timers,uv__run_idle,uv__run_prepare,epoll_pwait,CheckImmediate,RunAndClearNativeImmediates,pop_async_context,push_async_context}" \
      | tee "$dir/report.txt"
    ;;
  strace)
    /usr/bin/python3 - "$dir/strace.$n1" "$dir/strace.$n2" "$n1" "$n2" <<'PY' | tee "$dir/report.txt"
import sys
def read(p):
    out = {}
    for line in open(p):
        f = line.split()
        if len(f) >= 5 and f[-1].isidentifier() and f[3].isdigit():
            out[f[-1]] = int(f[3])
    return out
a, b = read(sys.argv[1]), read(sys.argv[2])
d = int(sys.argv[4]) - int(sys.argv[3])
for k in sorted(set(a) | set(b), key=lambda k: -(b.get(k, 0) - a.get(k, 0))):
    per = (b.get(k, 0) - a.get(k, 0)) / d
    if abs(per) >= 0.005:
        print(f"{per:8.3f}  {k}")
PY
    ;;
  perf)
    /usr/bin/python3 - "$dir/perf.$n1" "$dir/perf.$n2" "$n1" "$n2" <<'PY' | tee "$dir/report.txt"
import sys
def read(p):
    out = {}
    for line in open(p):
        f = line.strip().split(",")
        if len(f) > 2 and f[0].replace(".", "").isdigit():
            out[f[2]] = float(f[0])
    return out
a, b = read(sys.argv[1]), read(sys.argv[2])
d = int(sys.argv[4]) - int(sys.argv[3])
for k in b:
    per = (b[k] - a.get(k, 0)) / d
    # task-clock is in msec: the thread's CPU time (sum_exec_runtime), shown in us per round trip
    print(f"{per * 1000:8.2f}  us CPU (task-clock)" if k == "task-clock" else f"{per:8.3f}  {k}")
PY
    ;;
esac
