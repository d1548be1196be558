#!/usr/bin/env bash
# What one relayed Thrift call costs loch and nginx `stream` in the kernel, counted rather than
# timed (issue 15): bench:thrift's peers (the Go thrift server, CPU 0; the Go load generator,
# CPU 0, CONNS connections, framed binary, `bench(text)` with a SIZE-byte string) and each proxy
# on CPU 1 (loch from the sources, 1 worker, exclusive pooled upstreams, or with MUX=1
# `multiplex = true`; nginx stream, 1 worker; npm: bench:thrift's npm thrift proxy, npm-proxy.ts). After WARM seconds of load, `perf record` takes
# every syscall exit and io_uring submission and completion of the proxy's threads while the
# load runs SECONDS more; the counts are divided by the calls the load generator made.
#
# Per call: syscalls (all, and by name), io_uring submissions by opcode, completions of receives
# (provided buffer: cflags bit 0) and sends, and the size of each receive and send (syscall
# return values or completion results): how many receives one SIZE-byte call takes on each side,
# and how many of them are 4 bytes (the Go peers write a frame's length prefix with a write of
# its own). CPU us per call (user, system) from /proc during the counted run is printed too, but
# perf's own cost is in it: read counts from this script, CPU from bench:thrift.
# MEMMOVE_AT=<file offset of libc's memmove implementation> also counts user-space copies of
# 1 KiB or more and their bytes (a uprobe; 0x16d800, __memmove_avx512_unaligned_erms, on the
# bench machine's libc: `perf report` of a profile names it, `perf script -F ip,sym,symoff`
# gives ip - symoff). Byte copies into a reader's buffer (Uint8Array.set) land there. The
# uprobe traps on every memmove (perf filters by size afterwards): such a run is several times
# slower, so its CPU and batching (epoll waits, 4-byte receives per call) are not the normal ones;
# take those from a run without it.
# PROFILE=1 samples instead (perf record -g at 1999 Hz; loch with --perf-basic-prof) and prints
# the self time by symbol of each proxy.
# Warm-up: loch's CPU a call keeps falling over its first ~20 s of load, nginx's does not (held, 10
# KiB, one round: loch 59.5 us after the default 3 s, 50.1 after 20 s; nginx 46.8 and 46.9;
# readings-2026-12-07l.md): for a loch/nginx CPU ratio pass warm >= 20 (the 4th argument), or read
# bench:thrift, whose loch has run the 32 B phase first. Counts per call do not depend on it.
# NOPERF=1 measures CPU only, with nothing attached: WINDOWS=N (default 1) load runs of SECONDS
# back to back, CPU us per call of each (from /proc: 100 Hz ticks, so a few seconds per window),
# and the regime the proxy ran in: its busiest thread's sleeps (voluntary context switches: waits
# in epoll that blocked) and preemptions per call, from /proc as well. A proxy that sleeps about
# once per call pays a wakeup per call; one that sleeps far less shares a loop turn among calls.
# CALLGRIND=1 counts user-space instructions per call instead (this VM has no hardware counters:
# `perf stat -e instructions:u` says not supported): loch runs under valgrind's callgrind with
# instrumentation off until the warm-up ended, on only during the counted load (a few hundred
# calls a second under valgrind, so batching per loop turn differs from a normal run: compare
# variants within such runs, not with the CPU of other modes; one checkout read 47,434 and
# 54,924 per 10 KiB call in two runs, so only differences well past 15% mean anything). Kernel
# work is not in it.
# A CALLGRIND=1 run prints the TOP (25) functions by instructions per call (callgrind-misses.py;
# NODE_OPTIONS=--perf-basic-prof names the JavaScript). CACHESIM=1 adds callgrind's cache
# simulation (first level as the host's, last level LL=size,assoc,line, default one core's L2 of
# the bench machine: 1048576,8,64) and the functions with the most D1 and LL data misses per call.
# The kernel's copies are not simulated: bytes it just wrote into a receive buffer count as cold.
# Every counted run also prints the proxy's CPU, minor page faults and context switches per call
# by thread (loch: the worker thread, V8's helper threads; all named "node").
# HOOKS=1 counts instead the async resources (promises, immediates, timers) created and the
# promise jobs run per call in loch's worker thread, with async_hooks (hooks-preload.cjs): the
# real worker's handler path (bin.ts, servers.ts), which per-call.ts's harness does not take.
# ROOT=<checkout> runs loch from another built checkout (an A/B of two commits with the same
# script and Go peers); NODE_ARGS adds node flags to loch's command (e.g. --trace-deopt; its
# output is in the run directory's loch.out; the byte where the warm-up's output ends, and with
# NOPERF=1 where each window's ends, is printed: `bench/thrift/deopts.py <dir>/loch.out <byte>`
# counts the deopts after it by function and reason). WARM_RUNS=N: the warm-up as N load runs.
#
# Usage: bench/thrift/counts.sh [size=10240] [seconds=4] [targets=loch,nginx,npm] [warm=2] [conns=64]
# Needs go (Debian's golang thrift), nginx with the stream module, perf; run as root.
set -euo pipefail
size=${1:-10240}
seconds=${2:-4}
targets=${3:-loch,nginx}
warm=${4:-2}
conns=${5:-64}
here=$(cd "$(dirname "$0")/../.." && pwd)
root=$(cd "${ROOT:-$here}" && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/loch-thrift-counts-XXXXXX")
chmod 755 "$dir"
mkdir -p "$dir/hooks"
. "$here/bench/lib/free-port.sh"
. "$here/bench/thrift/peers.sh"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
start_go_server

start_loch() { # port
  write_loch_config "$1"
  local opts=${NODE_OPTIONS:-}
  [ "${PROFILE:-0}" = 1 ] && opts="$opts --perf-basic-prof"
  local wrap=()
  local flags=() # node's own flags
  [ "${HOOKS:-0}" = 1 ] && flags=(--require "$here/bench/thrift/hooks-preload.cjs")
  # --smc-check: V8 writes and rewrites machine code in its heap, which valgrind must see.
  [ "${CALLGRIND:-0}" = 1 ] && wrap=(valgrind --tool=callgrind --instr-atstart=no --smc-check=all-non-file
    "--callgrind-out-file=$dir/callgrind.out.%p")
  [ "${CALLGRIND:-0}" = 1 ] && [ "${CACHESIM:-0}" = 1 ] && wrap+=(--cache-sim=yes "--LL=${LL:-1048576,8,64}")
  # Under valgrind V8's memory reducer starts mark-compacts 20-50 s into each isolate's life (the
  # main one and tsx's module loader too), up to ~13k Ir a call in a count's window: off for counts
  # (on node's own command line, so every isolate has it; GC's finding, session 43).
  [ "${CALLGRIND:-0}" = 1 ] && flags+=(--no-memory-reducer)
  # shellcheck disable=SC2086 # NODE_ARGS: several flags
  (cd "$root/apps/proxy" && NODE_OPTIONS=$opts LOCH_HOOKS_DIR="$dir/hooks" exec taskset -c 1 "${wrap[@]}" node "${flags[@]}" ${NODE_ARGS:-} \
    --conditions=@loch/source --import tsx src/bin.ts run -c "$dir/loch.toml") >"$dir/loch.out" 2>&1 &
  proxy_pid=$!
}

thread_counts() { # pid -> a line per thread: "tid comm utime stime minflt voluntary involuntary" (context switches)
  local t f c v n
  for t in /proc/"$1"/task/*; do
    c=$(tr ' ' '_' <"$t/comm" 2>/dev/null) || continue
    f=$(sed 's/.*) //' "$t/stat" 2>/dev/null) || continue
    v=$(awk '/^voluntary_ctxt_switches/ { print $2 }' "$t/status" 2>/dev/null) || v=0
    n=$(awk '/^nonvoluntary_ctxt_switches/ { print $2 }' "$t/status" 2>/dev/null) || n=0
    # shellcheck disable=SC2086 # split stat's fields
    set -- $f
    echo "${t##*/} $c ${12} ${13} ${8} ${v:-0} ${n:-0}"
  done
}

per_thread() { # before-file after-file calls: the busiest threads' numbers per call
  /usr/bin/python3 - "$@" <<'EOF'
import sys
def load(p):
    return {l.split()[0]: l.split()[1:] for l in open(p) if l.strip()}
a, b, calls = load(sys.argv[1]), load(sys.argv[2]), int(sys.argv[3])
rows = []
for tid, (comm, *v) in b.items():
    v0 = [int(x) for x in a.get(tid, [comm, 0, 0, 0, 0, 0])[1:]]
    d = [int(x) - y for x, y in zip(v, v0)]
    if any(d):
        rows.append((d[0] + d[1], tid, comm, d))
rows.sort(reverse=True)
for _, tid, comm, (u, s, f, vol, invol) in rows[:4]:
    c = vol + invol
    print(f'  thread {tid} ({comm}): user {u * 1e4 / calls:.1f} us, system {s * 1e4 / calls:.1f} us, '
          f'minor faults {f / calls:.3f}, context switches {c / calls:.3f} per call')
EOF
}

cpu_ticks() { # pids... -> "utime stime" summed over their threads
  local u=0 s=0 p t f
  for p in "$@"; do
    for t in /proc/"$p"/task/*/stat; do
      f=$(sed 's/.*) //' "$t" 2>/dev/null) || continue
      set -- $f
      u=$((u + ${12})) s=$((s + ${13}))
    done
  done
  echo "$u $s"
}

start_npm() { # port
  (cd "$root/bench/thrift" && exec taskset -c 1 node --import tsx npm-proxy.ts "$1" "$upstream") >"$dir/npm.out" 2>&1 &
  proxy_pid=$!
}

for target in ${targets//,/ }; do
  port=$(free_port)
  case $target in
    loch) start_loch "$port" ;;
    nginx) start_nginx "$port" ;;
    npm) start_npm "$port" ;;
    *) echo "unknown target $target" >&2; exit 2 ;;
  esac
  pids+=("$proxy_pid")
  # node and tsx starting under valgrind take a minute or more.
  wait_port "$port" "$([ "${CALLGRIND:-0}" = 1 ] && echo 3000 || echo 200)"
  # WARM_RUNS=N splits the warm-up into N load runs: every run ends by closing its connections,
  # which first reaches code the calls never ran (V8 deoptimizes the functions that hold it, which
  # run unoptimized until they are hot again); with 2, that happens before the counted load.
  for _ in $(seq 1 "${WARM_RUNS:-1}"); do
    taskset -c 0 "$dir/thrift_peer" load "$port" framed binary "$conns" "$(( (warm + ${WARM_RUNS:-1} - 1) / ${WARM_RUNS:-1} ))" "$size" >/dev/null
  done
  # What loch printed during the warm-up (with NODE_ARGS=--trace-deopt: the deopts before the
  # counted load) ends at this byte of loch.out; deopts.py reads only what came after it.
  if [ "$target" = loch ]; then echo "== loch.out after the warm-up: $(stat -c %s "$dir/loch.out") B"; fi
  if [ "${HOOKS:-0}" = 1 ] && [ "$target" = loch ]; then
    # The preload appends each worker thread's counts when the mark file's text changes (50 ms poll).
    echo before >"$dir/hooks/mark"
    sleep 0.3
    taskset -c 0 "$dir/thrift_peer" load "$port" framed binary "$conns" "$seconds" "$size" >"$dir/$target.load"
    echo after >"$dir/hooks/mark"
    sleep 0.3
    calls=$(/usr/bin/python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])['calls'])" "$dir/$target.load")
    kill "$proxy_pid" 2>/dev/null || true
    wait "$proxy_pid" 2>/dev/null || true
    /usr/bin/python3 - "$calls" "$dir"/hooks/thread-*.txt <<'EOF'
import json, sys
calls = int(sys.argv[1])
for path in sys.argv[2:]:
    marks = {}
    for line in open(path):
        o = json.loads(line)
        marks[o['mark']] = o
    a, b = marks.get('before'), marks.get('after')
    if a is None or b is None: continue
    d = {k: v - a['created'].get(k, 0) for k, v in b['created'].items()}
    if sum(d.values()) == 0 and b['promiseJobs'] == a['promiseJobs']: continue
    per = ', '.join(f'{k} {v / calls:.3f}' for k, v in sorted(d.items(), key=lambda kv: -kv[1]) if v)
    print(f"== loch worker thread {b['tid']}: {calls} calls; async resources created per call: {per}; "
          f"promise jobs run per call {(b['promiseJobs'] - a['promiseJobs']) / calls:.3f}")
EOF
    continue
  fi
  if [ "${CALLGRIND:-0}" = 1 ] && [ "$target" = loch ]; then
    callgrind_control -z "$proxy_pid" >/dev/null 2>&1
    callgrind_control -i on "$proxy_pid" >/dev/null 2>&1
    taskset -c 0 "$dir/thrift_peer" load "$port" framed binary "$conns" "$seconds" "$size" >"$dir/$target.load"
    callgrind_control -i off "$proxy_pid" >/dev/null 2>&1
    callgrind_control -d "$proxy_pid" >/dev/null 2>&1
    calls=$(/usr/bin/python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])['calls'])" "$dir/$target.load")
    kill "$proxy_pid" 2>/dev/null || true
    wait "$proxy_pid" 2>/dev/null || true
    # The dump holds the counted load (the file valgrind writes at exit: what ran after it).
    /usr/bin/python3 - "$calls" "$dir"/callgrind.out.*.1 <<'EOF'
import sys
calls, ir = int(sys.argv[1]), 0
for path in sys.argv[2:]:
    for line in open(path):
        if line.startswith('totals:'):
            ir += int(line.split()[1])
print(f'== loch under callgrind: {calls} calls, user-space instructions {ir:,}, per call {ir / max(1, calls):,.0f}')
EOF
    # By function (with CACHESIM=1 the misses too); with NODE_OPTIONS=--perf-basic-prof, V8's map
    # of its JIT code (moved into the run's directory) names the JavaScript.
    map=()
    if [ -f "/tmp/perf-$proxy_pid.map" ]; then
      mv "/tmp/perf-$proxy_pid.map" "$dir/"
      map=(--perf-map "$dir/perf-$proxy_pid.map")
    fi
    /usr/bin/python3 "$here/bench/thrift/callgrind-misses.py" --top "${TOP:-25}" "${map[@]}" "$calls" "$dir"/callgrind.out.*.1
    continue
  fi
  # nginx: its worker (child of the master); loch: its one process (worker threads included).
  watched=$proxy_pid
  if [ "$target" = nginx ]; then watched=$(cat /proc/"$proxy_pid"/task/"$proxy_pid"/children | tr ' ' '\n' | grep . | paste -sd,); fi
  label=$target
  [ "$target" = loch ] && [ -n "${ROOT:-}" ] && label="loch ($root)"
  read -r u0 s0 <<<"$(cpu_ticks ${watched//,/ })"
  if [ "${NOPERF:-0}" = 1 ]; then
    # CPU only, nothing attached: WINDOWS load runs back to back.
    for w in $(seq 1 "${WINDOWS:-1}"); do
      thread_counts "${watched%%,*}" >"$dir/$target.switches0"
      read -r u0 s0 <<<"$(cpu_ticks ${watched//,/ })"
      taskset -c 0 "$dir/thrift_peer" load "$port" framed binary "$conns" "$seconds" "$size" >"$dir/$target.load"
      read -r u1 s1 <<<"$(cpu_ticks ${watched//,/ })"
      thread_counts "${watched%%,*}" >"$dir/$target.switches1"
      calls=$(/usr/bin/python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])['calls'])" "$dir/$target.load")
      /usr/bin/python3 - "$((u1 - u0))" "$((s1 - s0))" "$calls" "$label" "$size" "$w" "$dir/$target.switches0" "$dir/$target.switches1" <<'EOF'
import sys
u, s, c = (int(x) for x in sys.argv[1:4])
def load(p): # thread_counts' lines: utime stime minflt voluntary involuntary after tid and comm
    return {l.split()[0]: [int(x) for x in l.split()[2:]] for l in open(p) if l.strip()}
a, b = load(sys.argv[7]), load(sys.argv[8])
# The busiest thread in the window (loch: its worker; nginx: its one worker process).
d = max(([y - x for x, y in zip(a.get(t, [0, 0, 0, 0, 0]), v)] for t, v in b.items()), key=lambda r: r[0] + r[1])
print(f'== {sys.argv[4]}: {sys.argv[5]} B, window {sys.argv[6]}: {c} calls, cpu us per call user {u * 1e4 / c:.1f}, '
      f'system {s * 1e4 / c:.1f}, total {(u + s) * 1e4 / c:.1f}; busiest thread per call: sleeps {d[3] / c:.3f}, preemptions {d[4] / c:.3f}')
EOF
      if [ "$target" = loch ] && [ -n "${NODE_ARGS:-}" ]; then
        echo "== loch.out after window $w: $(stat -c %s "$dir/loch.out") B"
      fi
    done
    kill "$proxy_pid" 2>/dev/null || true
    wait "$proxy_pid" 2>/dev/null || true
    continue
  fi
  thread_counts "${watched%%,*}" >"$dir/$target.threads0"
  if [ "${PROFILE:-0}" = 1 ]; then
    # Where the CPU goes instead of counting (loch runs with --perf-basic-prof: JIT frames named).
    perf record -q -F 1999 -g -o "$dir/$target.prof" -p "$watched" -- \
      taskset -c 0 "$dir/thrift_peer" load "$port" framed binary "$conns" "$seconds" "$size" >"$dir/$target.load" 2>"$dir/$target.perf.err"
    calls=$(/usr/bin/python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])['calls'])" "$dir/$target.load")
    echo "== $target: $size B, $calls calls in $seconds s; self time by symbol (>= 0.7%):"
    perf report -i "$dir/$target.prof" --no-children --sort dso,symbol --percent-limit 0.7 --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -60
    kill "$proxy_pid" 2>/dev/null || true
    wait "$proxy_pid" 2>/dev/null || true
    continue
  fi
  copies=()
  if [ -n "${MEMMOVE_AT:-}" ]; then
    libc=$(readlink -f /lib/x86_64-linux-gnu/libc.so.6)
    grep -q '^p:probe_libc/memmove_at ' /sys/kernel/tracing/uprobe_events 2>/dev/null ||
      echo "p:probe_libc/memmove_at $libc:$MEMMOVE_AT size=%dx:u64" >>/sys/kernel/tracing/uprobe_events
    copies=(-e probe_libc:memmove_at --filter 'size >= 1024')
  fi
  perf record -q -o "$dir/$target.data" -e raw_syscalls:sys_exit,io_uring:io_uring_submit_req,io_uring:io_uring_complete \
    "${copies[@]}" -p "$watched" -- taskset -c 0 "$dir/thrift_peer" load "$port" framed binary "$conns" "$seconds" "$size" >"$dir/$target.load" 2>"$dir/$target.perf.err"
  read -r u1 s1 <<<"$(cpu_ticks ${watched//,/ })"
  thread_counts "${watched%%,*}" >"$dir/$target.threads1"
  calls=$(/usr/bin/python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])['calls'])" "$dir/$target.load")
  perf script -i "$dir/$target.data" -F event,trace 2>/dev/null >"$dir/$target.txt"
  echo "== $label${MUX:+ mux=$MUX}: $size B, $conns connections, $calls calls in $seconds s; per call:"
  /usr/bin/python3 -c "import sys; u, s, c = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]); print(f'cpu with perf attached (100 Hz ticks): user {u * 1e4 / c:.1f} us, system {s * 1e4 / c:.1f} us')" "$((u1 - u0))" "$((s1 - s0))" "$calls"
  per_thread "$dir/$target.threads0" "$dir/$target.threads1" "$calls"
  /usr/bin/python3 - "$dir/$target.txt" "$calls" <<'EOF'
import collections, re, sys
path, calls = sys.argv[1], int(sys.argv[2])
NAMES = {0: 'read', 1: 'write', 19: 'readv', 20: 'writev', 44: 'sendto', 45: 'recvfrom', 46: 'sendmsg',
         47: 'recvmsg', 232: 'epoll_wait', 281: 'epoll_pwait', 441: 'epoll_pwait2', 233: 'epoll_ctl',
         426: 'io_uring_enter', 202: 'futex', 3: 'close', 288: 'accept4', 43: 'accept', 42: 'connect',
         54: 'setsockopt', 55: 'getsockopt', 51: 'getsockname', 72: 'fcntl', 9: 'mmap', 11: 'munmap',
         10: 'mprotect', 28: 'madvise', 228: 'clock_gettime', 96: 'gettimeofday', 14: 'rt_sigprocmask',
         39: 'getpid', 186: 'gettid', 318: 'getrandom', 7: 'poll', 271: 'ppoll', 16: 'ioctl', 41: 'socket'}
SIZED = {'read', 'recvfrom', 'recvmsg', 'readv', 'write', 'sendto', 'sendmsg', 'writev'}
syscalls = collections.Counter()
sizes = collections.defaultdict(collections.Counter)
submits = collections.Counter()
op_of = {}
completions = collections.Counter()
csizes = collections.defaultdict(collections.Counter)
exit_re = re.compile(r'NR (\d+) = (-?\d+)')
sub_re = re.compile(r'req (0x[0-9a-f]+|\(nil\)), user_data 0x[0-9a-f]+, opcode (\w+)')
comp_re = re.compile(r'req (0x[0-9a-f]+|\(nil\)), user_data 0x[0-9a-f]+, result (-?\d+), cflags 0x([0-9a-f]+)')
def bucket(n):
    if n < 0: return 'error'
    if n == 0: return '0'
    if n <= 4: return '<=4'
    if n < 1024: return '<1K'
    if n < 8192: return '1K-8K'
    if n < 10240: return '8K-10K'
    if n <= 10300: return '~10K'
    if n < 16384: return '10K-16K'
    if n == 16384: return '16K'
    return '>16K'
copies = 0
copied = 0
size_re = re.compile(r'size=(\d+)')
for line in open(path):
    if 'memmove_at' in line:
        m = size_re.search(line)
        if m:
            copies += 1
            copied += int(m.group(1))
    elif 'sys_exit' in line:
        m = exit_re.search(line)
        if not m: continue
        nr, ret = int(m.group(1)), int(m.group(2))
        name = NAMES.get(nr, f'nr{nr}')
        syscalls[name] += 1
        if name in SIZED: sizes[name][bucket(ret)] += 1
    elif 'io_uring_submit_req' in line:
        m = sub_re.search(line)
        if not m: continue
        submits[m.group(2)] += 1
        op_of[m.group(1)] = m.group(2)
    elif 'io_uring_complete' in line:
        m = comp_re.search(line)
        if not m: continue
        res, cflags = int(m.group(2)), int(m.group(3), 16)
        op = 'RECV(buf)' if cflags & 1 else op_of.get(m.group(1), '?')
        completions[op] += 1
        csizes[op][bucket(res)] += 1
per = lambda n: f'{n / calls:.2f}'
print(f"syscalls {per(sum(syscalls.values()))}: " + ', '.join(f'{k} {per(v)}' for k, v in syscalls.most_common() if v / calls >= 0.005))
for name, c in sorted(sizes.items()):
    print(f"  {name} sizes: " + ', '.join(f'{k} {per(v)}' for k, v in c.most_common()))
if copies:
    print(f"user-space copies of 1 KiB or more (libc memmove): {per(copies)}, {copied / calls:.0f} B per call")
if submits:
    print(f"io_uring submissions {per(sum(submits.values()))}: " + ', '.join(f'{k} {per(v)}' for k, v in submits.most_common() if v / calls >= 0.005))
    print(f"io_uring completions {per(sum(completions.values()))}: " + ', '.join(f'{k} {per(v)}' for k, v in completions.most_common() if v / calls >= 0.005))
    for op, c in sorted(csizes.items()):
        if sum(c.values()) / calls >= 0.005:
            print(f"  {op} results: " + ', '.join(f'{k} {per(v)}' for k, v in c.most_common()))
EOF
  kill "$proxy_pid" 2>/dev/null || true
  wait "$proxy_pid" 2>/dev/null || true
done
kill "$server_pid" 2>/dev/null || true
trap - EXIT
echo "(output in $dir)"
