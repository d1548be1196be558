#!/usr/bin/env bash
# Per TLS handshake, counted on the live server (issue 13), loch or nginx: system calls (all, and
# io_uring_enter, epoll waits, accept, close), io_uring submissions and completions (the kernel's
# io_uring_submit_req / io_uring_complete tracepoints: every SQE, every CQE posted), context
# switches, libc malloc and free calls and the bytes malloc was asked for (uprobes on node's and
# nginx's libc, made on first use as in h2-counts.sh), and for loch the V8 heap bytes its isolates
# allocated (node --trace-gc-nvp: the `allocated=` of every GC, bytes allocated since the one
# before, summed over the window's GCs; approximate at the window's ends). The client is
# bench:https's (handshake-client.ts: node:tls, 8 connections at a time, connect, TLS 1.3, the
# server's ticket, close_notify, close) on CPU 0, the server 1 worker on CPU 1 or 2 workers on
# CPUs 0-1, as bench:https places them. Counts, not times: what a handshake makes the server do.
#
# Usage: [COUNT=syscalls|malloc] bench/https/handshake-syscalls.sh PEER=loch|nginx [workers=1]
#          [ecdsa|rsa] [full|resumed] [seconds=5] [warmup=10]
# Needs perf (root: tracefs), nginx, openssl; loch from apps/proxy's build (dist/bin.js).
set -euo pipefail
peer=${1:?loch or nginx}
workers=${2:-1}
cert=${3:-ecdsa}
mode=${4:-full}
seconds=${5:-5}
warmup=${6:-10}
records=${LOCH_TLS_RECORDS:-loch}
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d /tmp/loch-handshake-syscalls-XXXXXX)
chmod 755 "$dir"
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
port=$(free_port)
cpus=1
[ "$workers" != 1 ] && cpus=0-1

# Uprobes: probe (lib.sh).
libc=$(readlink -f /lib/x86_64-linux-gnu/libc.so.6)
probe probe_libc/malloc "$libc" malloc
probe probe_libc/free "$libc" free
probe probe_libc/mallocsz "$libc" malloc 'size=%di:u64'

tls_certificate "$cert"

# lib.sh's handshake server; loch counts its V8 heap through --trace-gc-nvp (below).
node_args=(--trace-gc-nvp)
# shellcheck disable=SC2086
handshake_start "$peer" "$workers" env ${LOCH_ENV:-} taskset -c "$cpus"
wait_listening 60 "$port"
sleep 1
# Every thread of the server: loch's process (workers are threads), nginx's master and workers.
targets=$server
if [ "$peer" = nginx ]; then targets=$(pgrep -d, -P "$server" || true); targets="$server${targets:+,$targets}"; fi
# COUNT=syscalls (default): system calls, io_uring operations, context switches, V8 heap bytes.
# COUNT=malloc: libc malloc/free calls and the bytes asked (uprobes: a trap per call, so the server
# runs several times slower and its batches differ; run it apart from the syscall counts).
if [ "${COUNT:-syscalls}" = malloc ]; then
  events=probe_libc:malloc,probe_libc:free
else
  events=raw_syscalls:sys_enter,syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_accept4,syscalls:sys_enter_close,syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,syscalls:sys_enter_writev,syscalls:sys_enter_read,syscalls:sys_enter_write,io_uring:io_uring_submit_req,io_uring:io_uring_complete,context-switches
fi
mkfifo "$dir/client"
(cd "$root/bench" && exec taskset -c 0 npx tsx https/handshake-client.ts "$port" "$mode" "$seconds" "$warmup" 8) >"$dir/client" &
client=$!
exec 3<"$dir/client"
read -r line <&3
[ "$line" = start ] || { echo "client: $line" >&2; exit 1; }
gc_before=$(wc -l <"$dir/server.out")
perf stat -x, -e "$events" -p "$targets" -o "$dir/stat.csv" &
stat=$!
record=
if [ "${COUNT:-syscalls}" = malloc ]; then
  perf record -q -e probe_libc:mallocsz -p "$targets" -o "$dir/malloc.data" >/dev/null 2>&1 &
  record=$!
fi
read -r done <&3
kill -INT "$stat" $record
wait "$stat" $record 2>/dev/null || true
gc_after=$(wc -l <"$dir/server.out")
wait "$client" || true
exec 3<&-
kill "$server" 2>/dev/null || true
wait "$server" 2>/dev/null || true
trap - EXIT

handshakes=$(node -e 'const d = JSON.parse(process.argv[1].slice(5)); console.log(d.handshakes)' "$done")
echo "$peer, $workers worker(s), $cert $mode: $handshakes handshakes in the window ($done)"
awk -F, -v n="$handshakes" '$1 ~ /^[0-9]/ { printf "  %-34s %10.2f per handshake\n", $3, $1 / n }' "$dir/stat.csv"
[ "${COUNT:-syscalls}" = malloc ] && bytes=$(perf script -i "$dir/malloc.data" -F trace 2>/dev/null | python3 -c '
import re, sys
print(sum(int(m.group(1), 0) for m in re.finditer(r"size=(0x[0-9a-fA-F]+|[0-9]+)", sys.stdin.read())))')
[ "${COUNT:-syscalls}" = malloc ] && awk -v b="$bytes" -v n="$handshakes" 'BEGIN { printf "  %-34s %10.0f per handshake\n", "malloc bytes asked", b / n }'
if [ "$peer" = loch ] && [ "${COUNT:-syscalls}" != malloc ]; then
  sed -n "$((gc_before + 1)),${gc_after}p" "$dir/server.out" |
    awk -v n="$handshakes" '{ for (i = 1; i <= NF; i++) {
        if ($i ~ /^allocated=/) { split($i, a, "="); s += a[2]; g++ }
        if ($i ~ /^promoted=/) { split($i, p, "="); pr += p[2] }
        if ($i ~ /^gc=/) { split($i, kind, "="); kinds[kind[2]]++ } } }
      END { printf "  %-34s %10.0f per handshake (%d GCs)\n", "V8 heap bytes allocated", s / n, g
        printf "  %-34s %10.0f per handshake\n", "V8 bytes promoted (old space)", pr / n
        # gc=s: scavenge; gc=ms / mc: mark-sweep-compact; gc=mmc: minor mark-compact
        for (k in kinds) printf "  %-34s %10.2f per 1,000 handshakes\n", "GCs gc=" k, 1000 * kinds[k] / n }'
fi
rm -rf "$dir"
