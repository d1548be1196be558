#!/usr/bin/env bash
# What a wakeup of the proxy's thread costs in the kernel, per relayed Thrift call, for loch and
# nginx `stream` (issue 15; bench/thrift/readings-2026-12-06e.md). The peers and proxies as in
# counts.sh (the Go thrift server and load generator on CPU 0, the proxy on CPU 1, 1 worker,
# CONNS connections, framed binary, a SIZE-byte string). After WARM seconds of load, one load run
# of SECONDS is recorded system-wide (both CPUs: a sleeping thread is woken from the other CPU's
# softirq or from the waker's syscall, so the wakeup's events are not the proxy's own) and
# everything is divided by the calls the load generator made. Only the proxy's busiest thread
# counts (loch: its worker thread; nginx: its worker process).
#
# MODE=trace (default): syscalls by name and return value (epoll waits by how many events they
#   returned, EINTR and 0 too; io_uring_enter by to_submit / min_complete / flags and return),
#   io_uring task work queued for the thread and run by it (io_uring_task_add /
#   io_uring_task_work_run), poll arms, punts to io-wq (io_uring_queue_async_work), sleeps (the
#   thread switched out while not runnable) and wakeups (sched_wakeup of the thread, by which
#   waker: the Go peers, softirq on the other CPU, ...).
# MODE=stat: perf stat of the thread (counters only, nothing recorded, so the load runs at its
#   normal pace): syscalls, context switches, epoll waits with timeout 0, epoll waits that returned
#   EINTR or 0 events, io_uring_enter calls, task work runs (nginx: epoll_wait, recvfrom, writev).
# MODE=callers: the call chains (user and kernel) of EVENT in the thread, filtered by FILTER
#   (e.g. EVENT=syscalls:sys_enter_epoll_pwait FILTER='timeout == 0').
# MODE=wakestacks: the kernel call chains that woke the thread (sched_wakeup with -g).
# MODE=profile: `perf record -g` of the proxy thread on the cpu-clock (this VM has no PMU) at
#   FREQ Hz (default 4999), kernel stacks included; prints samples per call by kernel symbol
#   (self, and inclusive for the call paths that matter: the syscalls, the softirq, schedule) and
#   the top user/kernel split. A sample is 1e6/FREQ us of CPU: times per call follow.
# ROOT=<checkout> runs loch from another built checkout; NODE_ARGS adds node flags; LOCH_ENV adds
# environment variables to loch's command (e.g. LOCH_URING_DEFER_TASKRUN=1).
#
# Usage: bench/thrift/wakeups.sh [size=10240] [seconds=2] [targets=loch,nginx] [warm=3] [conns=64]
# Needs go (Debian's golang thrift), nginx with the stream module, perf; run as root.
set -euo pipefail
size=${1:-10240}
seconds=${2:-2}
targets=${3:-loch,nginx}
warm=${4:-3}
conns=${5:-64}
mode=${MODE:-trace}
here=$(cd "$(dirname "$0")/../.." && pwd)
root=$(cd "${ROOT:-$here}" && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/loch-thrift-wakeups-XXXXXX")
chmod 755 "$dir"
. "$here/bench/lib/free-port.sh"
. "$here/bench/thrift/peers.sh"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
start_go_server

start_loch() { # port
  write_loch_config "$1"
  local opts=${NODE_OPTIONS:-}
  case $mode in profile | callers) opts="$opts --perf-basic-prof" ;; esac
  # shellcheck disable=SC2086 # NODE_ARGS, LOCH_ENV: several words
  (cd "$root/apps/proxy" && exec env NODE_OPTIONS="$opts" ${LOCH_ENV:-} taskset -c 1 node ${NODE_ARGS:-} \
    --conditions=@loch/source --import tsx src/bin.ts run -c "$dir/loch.toml") >"$dir/loch.out" 2>&1 &
  proxy_pid=$!
}

busiest_tid() { # pid -> the tid with the most CPU so far
  local t best=0 tid=$1 f
  for t in /proc/"$1"/task/*; do
    f=$(sed 's/.*) //' "$t/stat" 2>/dev/null) || continue
    # shellcheck disable=SC2086
    set -- $f
    if [ $((${12} + ${13})) -gt "$best" ]; then best=$((${12} + ${13})) tid=${t##*/}; fi
  done
  echo "$tid"
}

load() { taskset -c 0 "$dir/thrift_peer" load "$port" framed binary "$conns" "$1" "$size"; }

for target in ${targets//,/ }; do
  port=$(free_port)
  case $target in
    loch) start_loch "$port" ;;
    nginx) start_nginx "$port" ;;
    *) echo "unknown target $target" >&2; exit 2 ;;
  esac
  pids+=("$proxy_pid")
  wait_port "$port" 200
  load "$warm" >/dev/null
  watched=$proxy_pid
  if [ "$target" = nginx ]; then watched=$(tr ' ' '\n' </proc/"$proxy_pid"/task/"$proxy_pid"/children | grep . | head -1); fi
  tid=$(busiest_tid "$watched")
  label=$target
  [ "$target" = loch ] && [ -n "${ROOT:-}" ] && label="loch ($root)"
  [ "$target" = loch ] && [ -n "${LOCH_ENV:-}" ] && label="$label ${LOCH_ENV}"
  if [ "$mode" = stat ]; then
    # Counted in the kernel (perf stat, nothing recorded: the regime stays the real one).
    ev=(-e context-switches -e raw_syscalls:sys_enter)
    if [ "$target" = loch ]; then
      ev+=(-e syscalls:sys_enter_epoll_pwait -e syscalls:sys_enter_epoll_pwait --filter 'timeout == 0'
        -e syscalls:sys_exit_epoll_pwait --filter 'ret == -4' -e syscalls:sys_exit_epoll_pwait --filter 'ret == 0'
        -e syscalls:sys_enter_io_uring_enter -e io_uring:io_uring_task_work_run)
    else
      ev+=(-e syscalls:sys_enter_epoll_wait -e syscalls:sys_exit_epoll_wait --filter 'ret == -4'
        -e syscalls:sys_enter_recvfrom -e syscalls:sys_enter_writev)
    fi
    perf stat -x, -o "$dir/$target.stat" -t "$tid" "${ev[@]}" -- \
      taskset -c 0 "$dir/thrift_peer" load "$port" framed binary "$conns" "$seconds" "$size" >"$dir/$target.load" 2>"$dir/$target.perf.err"
    calls=$(/usr/bin/python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])['calls'])" "$dir/$target.load")
    echo "== $label: $size B, $conns connections, $calls calls in $seconds s; thread $tid; per call (perf stat):"
    /usr/bin/python3 - "$dir/$target.stat" "$calls" <<'PY'
import sys
calls = int(sys.argv[2])
names = {'syscalls:sys_enter_epoll_pwait': 'epoll_pwait', 'syscalls:sys_exit_epoll_pwait': 'epoll_pwait returned',
         'syscalls:sys_enter_epoll_wait': 'epoll_wait', 'syscalls:sys_exit_epoll_wait': 'epoll_wait returned',
         'raw_syscalls:sys_enter': 'syscalls', 'syscalls:sys_enter_io_uring_enter': 'io_uring_enter',
         'io_uring:io_uring_task_work_run': 'task work runs', 'syscalls:sys_enter_recvfrom': 'recvfrom',
         'syscalls:sys_enter_writev': 'writev', 'context-switches': 'context switches'}
seen = {}
for line in open(sys.argv[1]):
    f = line.strip().split(',')
    if len(f) < 3 or not f[0].replace('.', '').isdigit():
        continue
    ev = f[2]
    seen[ev] = seen.get(ev, 0) + 1
    label = names.get(ev, ev)
    n = seen[ev]
    if ev == 'syscalls:sys_enter_epoll_pwait' and n == 2: label += ' with timeout 0'
    if ev.startswith('syscalls:sys_exit_epoll'): label += ' EINTR' if n == 1 else ' 0 events'
    print(f'  {label}: {int(f[0]) / calls:.3f}')
PY
  elif [ "$mode" = callers ]; then
    # Who makes a given event in the thread: EVENT (a tracepoint) with FILTER (its fields), stacks
    # by frame pointer (user and kernel; loch's JavaScript named through --perf-basic-prof).
    perf record -q --call-graph "${CALLGRAPH:-fp}" -o "$dir/$target.callers" -e "$EVENT" --filter "${FILTER:+($FILTER) && }common_pid == $tid" -t "$tid" -- \
      taskset -c 0 "$dir/thrift_peer" load "$port" framed binary "$conns" "$seconds" "$size" >"$dir/$target.load" 2>"$dir/$target.perf.err"
    calls=$(/usr/bin/python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])['calls'])" "$dir/$target.load")
    echo "== $label: $size B, $conns connections, $calls calls in $seconds s; thread $tid; $EVENT ${FILTER:-} by call chain:"
    perf report -i "$dir/$target.callers" --stdio --no-children -G --percent-limit 2 2>/dev/null | grep -v '^#' | grep . | head -"${LINES_MAX:-120}"
  elif [ "$mode" = wakestacks ]; then
    # Who wakes the sleeping thread, by kernel call chain (the waker's context).
    perf record -q -a -g -o "$dir/$target.wake" -e sched:sched_wakeup --filter "pid == $tid" -- \
      taskset -c 0 "$dir/thrift_peer" load "$port" framed binary "$conns" "$seconds" "$size" >"$dir/$target.load" 2>"$dir/$target.perf.err"
    calls=$(/usr/bin/python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])['calls'])" "$dir/$target.load")
    echo "== $label: $size B, $conns connections, $calls calls in $seconds s; thread $tid; wakeups by call chain:"
    perf report -i "$dir/$target.wake" --stdio --no-children -G --percent-limit 2 2>/dev/null | grep -v '^#' | grep . | head -80
  elif [ "$mode" = profile ]; then
    perf record -q -F "${FREQ:-4999}" -g -e cpu-clock -t "$tid" -o "$dir/$target.prof" -- \
      taskset -c 0 "$dir/thrift_peer" load "$port" framed binary "$conns" "$seconds" "$size" >"$dir/$target.load" 2>"$dir/$target.perf.err"
    calls=$(/usr/bin/python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])['calls'])" "$dir/$target.load")
    perf script -i "$dir/$target.prof" -F ip,sym,dso 2>/dev/null >"$dir/$target.stacks" || true
    echo "== $label: $size B, $conns connections, $calls calls in $seconds s; thread $tid; profile at ${FREQ:-4999} Hz (samples per call x $((1000000 / ${FREQ:-4999})) us)"
    /usr/bin/python3 "$here/bench/thrift/wakeups-profile.py" "$dir/$target.stacks" "$calls" "${FREQ:-4999}"
  else
    # Filtered in the kernel to the proxy's thread where the event runs in it (the Go peers'
    # syscalls would triple the tracing cost); task work queued for it runs in the waker.
    perf record -q -a -o "$dir/$target.data" \
      -e raw_syscalls:sys_enter --filter "common_pid == $tid" -e raw_syscalls:sys_exit --filter "common_pid == $tid" \
      -e sched:sched_switch --filter "prev_pid == $tid || next_pid == $tid" -e sched:sched_wakeup --filter "pid == $tid" \
      -e io_uring:io_uring_task_add -e io_uring:io_uring_task_work_run --filter "common_pid == $tid" \
      -e io_uring:io_uring_poll_arm -e io_uring:io_uring_queue_async_work -e io_uring:io_uring_submit_req \
      -e io_uring:io_uring_local_work_run \
      -- taskset -c 0 "$dir/thrift_peer" load "$port" framed binary "$conns" "$seconds" "$size" >"$dir/$target.load" 2>"$dir/$target.perf.err"
    calls=$(/usr/bin/python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])['calls'])" "$dir/$target.load")
    perf script -i "$dir/$target.data" -F comm,tid,cpu,time,event,trace 2>/dev/null >"$dir/$target.txt"
    echo "== $label: $size B, $conns connections, $calls calls in $seconds s; thread $tid; per call:"
    /usr/bin/python3 "$here/bench/thrift/wakeups-trace.py" "$dir/$target.txt" "$calls" "$tid"
  fi
  kill "$proxy_pid" 2>/dev/null || true
  wait "$proxy_pid" 2>/dev/null || true
done
kill "$server_pid" 2>/dev/null || true
trap - EXIT
echo "(output in $dir)"
