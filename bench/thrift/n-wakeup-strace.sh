#!/usr/bin/env bash
# Which thread and which loop make each epoll_pwait of a loch wakeup (issue 15; page
# bench/thrift/readings-2026-12-07n.md section 3): untimed. The peers as in counts.sh (the Go
# thrift server on CPU 0, loch from the sources, 1 worker, on CPU 1). After WARM seconds of
# closed-loop load (64 connections, SIZE bytes; the JIT and the upstream pool warm), strace
# attaches to every thread of loch (-f) and the Go client makes exactly CALLS calls of SIZE bytes
# on one connection, one after the other: each call wakes loch twice (the call, then the reply).
# strace -yy names every fd it prints (an eventpoll, the io_uring ring, a socket with its ends),
# so each wait says which epoll instance it waits on, and that instance's fd is matched to the
# thread that waits on it. Prints the trace's per-thread summary and the wakeups' sequence.
#
# Usage: bench/thrift/n-wakeup-strace.sh [calls=10] [size=10240] [warm=5]
# ROOT=<checkout> runs loch from another built checkout. FREE_PORT_RANGE (bench/lib/free-port.sh)
# picks loch's port. Needs go (Debian's golang thrift), strace; run as root.
set -euo pipefail
calls=${1:-10}
size=${2:-10240}
warm=${3:-5}
here=$(cd "$(dirname "$0")/../.." && pwd)
root=$(cd "${ROOT:-$here}" && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/loch-thrift-strace-XXXXXX")
chmod 755 "$dir"
. "$here/bench/lib/free-port.sh"
. "$here/bench/thrift/peers.sh"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
start_go_server
port=$(free_port)
write_loch_config "$port"
(cd "$root/apps/proxy" && exec taskset -c 1 node --conditions=@loch/source --import tsx src/bin.ts run -c "$dir/loch.toml") \
  >"$dir/loch.out" 2>&1 &
proxy_pid=$!
pids+=("$proxy_pid")
wait_port "$port" 300
taskset -c 0 "$dir/thrift_peer" load "$port" framed binary 64 "$warm" "$size" >"$dir/warm.load"
# The one argument the client takes holds every call's text, comma-separated (each <= 128 KiB).
texts=$(/usr/bin/python3 -c "import sys; n, s = int(sys.argv[1]), int(sys.argv[2]); print(','.join(chr(97 + i % 26) * s for i in range(n)))" "$calls" "$size")
ps -L -o tid=,comm= -p "$proxy_pid" >"$dir/threads.txt"
strace -f -tt -yy -e trace=epoll_pwait,epoll_wait,epoll_pwait2,io_uring_enter,setsockopt -p "$proxy_pid" \
  -o "$dir/trace.txt" 2>"$dir/strace.err" &
strace_pid=$!
pids+=("$strace_pid")
sleep 1 # strace attached to every thread
taskset -c 0 "$dir/thrift_peer" client "$port" framed binary - bench "$texts" >"$dir/client.out"
sleep 0.5
# Which fd is what (the rings are io_uring fds; the registered ring is printed as fd 0 by strace),
# and what each epoll instance watches (fdinfo's tfd lines): the ring fd in the worker's loop.
for fd in /proc/"$proxy_pid"/fd/*; do
  case $(readlink "$fd") in
    *eventpoll* | *io_uring*)
      echo "fd ${fd##*/} $(readlink "$fd")"
      grep '^tfd' /proc/"$proxy_pid"/fdinfo/"${fd##*/}" 2>/dev/null | awk '{print "    watches fd " $2}' | tr '\n' ' ' || true
      echo
      ;;
  esac
done >"$dir/fds.txt"
kill -INT "$strace_pid"
wait "$strace_pid" 2>/dev/null || true
got=$(grep -c . "$dir/client.out" || true)
echo "== $got of $calls calls answered (client.out); loch's threads:"
cat "$dir/threads.txt"
echo "== loch's epoll and io_uring fds:"
cat "$dir/fds.txt"
/usr/bin/python3 - "$dir/trace.txt" "$calls" <<'EOF'
import collections, re, sys
path, calls = sys.argv[1], int(sys.argv[2])
# strace -f: "<tid> HH:MM:SS.us name(args) = ret" (or "<unfinished ...>" / "<... name resumed>").
line_re = re.compile(r'^(\d+)\s+(\S+)\s+(.*)$')
call_re = re.compile(r'^(\w+)\((.*)')
ret_re = re.compile(r'\)\s+=\s+(-?\d+|\?)(?:\s+([A-Z]+))?')
open_calls = {}
events = []
for raw in open(path):
    m = line_re.match(raw.rstrip('\n'))
    if not m:
        continue
    tid, ts, rest = m.groups()
    if rest.endswith('<unfinished ...>'):
        open_calls[tid] = (ts, rest[: -len('<unfinished ...>')])
        continue
    if rest.startswith('<...'):
        begun = open_calls.pop(tid, (ts, ''))
        rest = begun[1] + rest.split('resumed>', 1)[-1]
        ts = begun[0]
    c = call_re.match(rest)
    if not c:
        continue
    name, args = c.groups()
    r = ret_re.findall(rest)
    ret = r[-1][0] if r else '?'
    err = r[-1][1] if r else ''
    first = args.split(',')[0]
    detail = ''
    if name.startswith('epoll'):
        t = re.search(r', (-?\d+), [^,]+, \d+\)\s*=', rest)
        timeout = t.group(1) if t else '?'
        kind = 'timeout 0' if timeout == '0' else 'blocking'
        got = err if ret == '-1' else ('0 events' if ret == '0' else 'fds ' + ','.join(re.findall(r'u32=(\d+)', rest)))
        detail = f'{kind} -> {got}'
    elif name == 'io_uring_enter':
        parts = [p.strip() for p in args.split(',')]
        detail = f'to_submit {parts[1] if len(parts) > 1 else "?"}, min_complete {parts[2] if len(parts) > 2 else "?"} -> {ret}'
    else:
        detail = f'-> {ret}'
    events.append((tid, ts, name, first, detail))
by_thread = collections.Counter((e[0], e[2], e[3], e[4] if e[2].startswith('epoll') else '') for e in events)
print(f'== syscalls traced (from strace attaching, through the calls, to 0.5 s after), by thread, fd (strace -yy), '
      f'and for waits how they ended; per call ({calls} calls):')
for (tid, name, fd, what), n in sorted(by_thread.items(), key=lambda kv: (kv[0][0], -kv[1])):
    print(f'  {tid} {name} {fd} {what}: {n} ({n / calls:.2f} a call)')
print('== the busiest thread (the worker) from its first wait that ended with EINTR or an fd (the calls), 30 syscalls:')
busiest = collections.Counter(e[0] for e in events).most_common(1)
if busiest:
    tid = busiest[0][0]
    mine = [e for e in events if e[0] == tid]
    first = next((i for i, e in enumerate(mine) if 'EINTR' in e[4] or '-> fds' in e[4]), 0)
    for e in mine[max(0, first - 2):first + 28]:
        print(f'  {e[1]} {e[2]} {e[3]} {e[4]}')
EOF
echo "(output in $dir)"
