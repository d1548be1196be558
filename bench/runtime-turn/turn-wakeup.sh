#!/usr/bin/env bash
# The fixed cost of one event-loop turn that starts with a wakeup (issues 15 and 18), counted:
# bench/runtime/pingpong-server.ts (one connection echoed with recvTo/writeTo on the uring driver)
# bundled with esbuild and run twice, with N1 and N2 round trips from wakeup-client.py, which
# sleeps GAP ms after each echo, so the server's thread is asleep in epoll when every message
# arrives: each round trip is one wakeup, one poll callback into JavaScript, one flush.
# (count(N2) - count(N1)) / (N2 - N1) is one such turn with start-up and warm-up subtracted.
# bench/runtime/turn-count.sh counts the other regime (the client always ahead: the flush's drain
# finds the next message, no wakeup); this one is what a quiet machine or few connections see.
#
# Usage: bench/runtime-turn/turn-wakeup.sh <callgrind|perf> [n1=1500] [n2=4500] [size=64] [gap_ms=5]
#   callgrind: user-space instructions per turn (valgrind's callgrind, JIT code named through
#     node's perf map), by function and the inclusive Ir of the turn's layers; "everything except
#     GC and compiler" is the comparable figure (a TurboFan job in one window moves the total).
#   perf: syscalls, io_uring submissions/completions, context switches and task-clock per turn.
# Env: OUT (dir), BUNDLE (a bundle made before: compare trees), LOCH_NATIVE_PATH (another addon),
# NODE_ARGS, TOP (functions listed), CPU (pinned CPU for callgrind, default 1). Counts are
# insensitive to load; task-clock is not.
set -euo pipefail
mode=${1:?mode: callgrind|perf}
n1=${2:-1500}
n2=${3:-4500}
size=${4:-64}
gap=${5:-5}
here=$(cd "$(dirname "$0")/../.." && pwd)
dir=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/turn-wakeup-XXXXXX")}
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
    perf) perf stat -x, -e "$EVENTS" -o "$dir/perf.$n" node "${node_args[@]}" "$dir/pp.mjs" 0 >"$dir/srv.$n" 2>"$dir/err.$n" & ;;
    *) echo "unknown mode $mode" >&2; exit 2 ;;
  esac
  pid=$!
  for _ in $(seq 1 3000); do  # up to 10 min: node under valgrind starts slowly on a loaded machine
    grep -q '^listening' "$dir/srv.$n" 2>/dev/null && break
    sleep 0.2
  done
  port=$(awk '/^listening/ {print $2}' "$dir/srv.$n")
  python3 "$here/bench/runtime-turn/wakeup-client.py" "$port" "$n" "$size" "$gap"
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
      "${maps[@]}" --incl "${INCL:-uv__io_poll,uv__run_check,uv__poll_io,OnPoll,napi_make_callback,InternalCallbackScope,InternalMakeCallback,Ring::Drain,Ring::Submit,PerformCheckpoint,RunMicrotasks,Execution::Call,JSEntry,uv__run_timers,uv__run_idle,uv__run_prepare,epoll_pwait,CheckImmediate,RunAndClearNativeImmediates,pop_async_context,push_async_context}" \
      | tee "$dir/report.txt"
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
    print(f"{per * 1000:8.2f}  us CPU (task-clock)" if k == "task-clock" else f"{per:8.3f}  {k}")
PY
    ;;
esac
