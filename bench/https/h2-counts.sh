#!/usr/bin/env bash
# What TLS costs loch per request over HTTP/2 against h2c and against HTTPS HTTP/1.1 (issues 13
# and 14), counted rather than timed: loch from the sources (1 worker, CPU 1; an h2c server and a
# TLS server, h2 by ALPN and HTTP/1.1 without it, the shape of bench:http2's config) proxies to
# nginx static (CPU 0) over HTTP/1.1 keep-alive; h2load (CPU 0) sends WARM requests, then
# `perf stat -p <loch>` counts while it sends COUNT more, and the counts are divided by the
# requests done. Modes: h2c (prior knowledge), h2 (TLS 1.3, ALPN h2), https (h2load --h1 over
# TLS: HTTP/1.1, one request in flight per connection). LOAD is CxM (h2load -cC -mM; https uses
# -m1 whatever M is).
#
# Counts: task-clock (ms of loch CPU, not a figure to quote on a shared machine), page faults,
# libc malloc/free (all, and mallocs of 64 KiB and more), node's SSL_write_ex/SSL_read_ex calls,
# do_ssl3_write (TLS records written by OpenSSL's record layer; none on Loch's) and
# ssl3_setup_write_buffer (calls; each allocates the record write buffer when it has none), io_uring
# submissions, io_uring_enter calls, context switches. The uprobes are made on first use through
# tracefs (file offsets: node's symbols have no debug info for `perf probe`).
#
# PROFILE=1 records a call-graph profile of the measured run instead of counting (perf record
# -g; the report's head is printed, the data kept); PROFILE_ARGS replaces its "-F 1999" (e.g.
# "-e probe_libc:mallocsz --filter size>=65536" for the large mallocs and their sizes). LOCH_ENV="A=1 B=2" is passed to loch
# (e.g. LOCH_ENV=LOCH_TLS_RECORDS=openssl: OpenSSL's record layer; loch runs from its sources, whose default is Loch's).
#
# Usage: bench/https/h2-counts.sh [size=165854] [count=8000] [modes=h2c,h2,https] [load=16x16] [warm=4000]
# Needs nginx, h2load, perf, openssl; run as root (tracefs).
set -euo pipefail
size=${1:-165854}
count=${2:-8000}
modes=${3:-h2c,h2,https}
load=${4:-16x16}
warm=${5:-4000}
clients=${load%x*}
streams=${load#*x}
records=${LOCH_TLS_RECORDS:-loch}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# run_dir, pids, cleanup and static_backend (the results pages' nginx upstream).
# shellcheck source=../http-proxy/lib.sh
. "$here/../http-proxy/lib.sh"
dir=$(run_dir loch-h2-counts)
h2c_port=$(free_port)
tls_port=$(free_port)

# Uprobes: probe (lib.sh).
libc=$(readlink -f /lib/x86_64-linux-gnu/libc.so.6)
node_bin=$(readlink -f "$(command -v node)")
probe probe_libc/malloc "$libc" malloc
probe probe_libc/free "$libc" free
probe probe_libc/mallocsz "$libc" malloc 'size=%di:u64'
probe probe_node/SSL_write_ex "$node_bin" SSL_write_ex
probe probe_node/SSL_read_ex "$node_bin" SSL_read_ex
probe probe_node/do_ssl3_write "$node_bin" do_ssl3_write
probe probe_node/ssl3_setup_write_buffer "$node_bin" ssl3_setup_write_buffer

trap cleanup EXIT
static_backend "$dir" "$size" 0
tls_certificate ecdsa
h2_loch_toml "$h2c_port" "$tls_port" "$upstream"
# loch from its sources (LOCH_FROM_SOURCE, lib.sh's loch_start) on CPU 1, LOCH_ENV in its environment.
# shellcheck disable=SC2086
LOCH_FROM_SOURCE=1 loch_start env ${LOCH_ENV:-} taskset -c 1
pids+=("$server")
trap cleanup EXIT  # loch_start's trap ends loch alone; cleanup ends nginx too
wait_listening 60 "$tls_port" "$h2c_port"

url_of() { case $1 in h2c) echo "http://127.0.0.1:$h2c_port/$size" ;; *) echo "https://127.0.0.1:$tls_port/$size" ;; esac; }
client() { # mode n
  local mode=$1 n=$2
  if [ "$mode" = https ]; then
    taskset -c 0 h2load --h1 -t1 -c"$clients" -m1 -n"$n" "$(url_of "$mode")"
  else
    taskset -c 0 h2load -t1 -c"$clients" -m"$streams" -n"$n" "$(url_of "$mode")"
  fi
}
cheap="task-clock,page-faults,context-switches,io_uring:io_uring_submit_req,syscalls:sys_enter_io_uring_enter"
probes="probe_libc:malloc,probe_libc:free,probe_node:SSL_write_ex,probe_node:SSL_read_ex,probe_node:do_ssl3_write,probe_node:ssl3_setup_write_buffer"
echo "loch ${LOCH_ENV:-(default env)}, $size B, h2load -c$clients -m$streams (https: --h1 -m1), $warm warm-up then $count counted; per request:"
for mode in ${modes//,/ }; do
  client "$mode" "$warm" >/dev/null
  if [ "${PROFILE:-0}" = 1 ]; then
    perf record -q ${PROFILE_ARGS:--F 1999} -g -o "$dir/perf-$mode.data" -p "$server" -- bash -c "$(declare -f client url_of); clients=$clients streams=$streams size=$size h2c_port=$h2c_port tls_port=$tls_port client $mode $count" >"$dir/h2load-$mode.out" 2>&1
    perf report -i "$dir/perf-$mode.data" --no-children --sort symbol --percent-limit 1 --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -40 >"$dir/report-$mode.txt"
    echo "== $mode: $(grep -m1 '^requests:' "$dir/h2load-$mode.out")"
    cat "$dir/report-$mode.txt"
    continue
  fi
  # Two passes: the uprobes cost microseconds per hit, so CPU time comes from a pass without them.
  perf stat -x, -o "$dir/stat-$mode-cpu.csv" -e "$cheap" -p "$server" -- \
    bash -c "$(declare -f client url_of); clients=$clients streams=$streams size=$size h2c_port=$h2c_port tls_port=$tls_port client $mode $count" >"$dir/h2load-$mode-cpu.out" 2>&1
  perf stat -x, -o "$dir/stat-$mode.csv" -e "$probes" -e probe_libc:mallocsz --filter 'size >= 65536' -p "$server" -- \
    bash -c "$(declare -f client url_of); clients=$clients streams=$streams size=$size h2c_port=$h2c_port tls_port=$tls_port client $mode $count" >"$dir/h2load-$mode.out" 2>&1
  succeeded() { awk '/^requests:/ {for (i = 1; i < NF; i++) if ($(i+1) == "succeeded,") print $i}' "$1"; }
  python3 - "$dir/stat-$mode-cpu.csv" "$(succeeded "$dir/h2load-$mode-cpu.out")" "$dir/stat-$mode.csv" "$(succeeded "$dir/h2load-$mode.out")" "$mode" <<'EOF'
import sys
mode = sys.argv[5]
names = {'task-clock': 'cpu us', 'page-faults': 'faults', 'context-switches': 'switches',
         'probe_libc:malloc': 'malloc', 'probe_libc:free': 'free', 'probe_libc:mallocsz': 'malloc>=64K',
         'probe_node:SSL_write_ex': 'SSL_write', 'probe_node:SSL_read_ex': 'SSL_read',
         'probe_node:do_ssl3_write': 'records out', 'probe_node:ssl3_setup_write_buffer': 'wbuf setups',
         'io_uring:io_uring_submit_req': 'sqes', 'syscalls:sys_enter_io_uring_enter': 'enters'}
out = []
for path, n in ((sys.argv[1], int(sys.argv[2] or 0)), (sys.argv[3], int(sys.argv[4] or 0))):
    for line in open(path):
        f = line.strip().split(',')
        if len(f) < 3 or f[2] not in names or n == 0:
            continue
        try:
            v = float(f[0])
        except ValueError:
            continue
        if f[2] == 'task-clock':
            v *= 1000  # ms -> us
        out.append(f'{names[f[2]]} {v / n:.3g}')
print(f'{mode:6}: ' + ', '.join(out))
EOF
done
cleanup
trap - EXIT
echo "(output in $dir)"
