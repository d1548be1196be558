#!/usr/bin/env bash
# System calls per proxied request, HTTPS against plain HTTP on one instance (issue 13), loch or
# nginx: request-counts.sh's setup (an HTTPS and a plain listener in front of one node:http
# backend answering SIZE bytes, 1 worker), not under callgrind; the Python client makes WARM
# requests on a connection, then `strace -c` attaches to every thread of the server for COUNT
# more on the same connection. Counts, not times (strace slows the server; the counts stay).
# With io_uring most of loch's socket work is SQEs, not system calls: io_uring_enter is the one
# to read (and epoll_pwait, libuv's wait).
#
# Usage: bench/https/request-syscalls.sh PEER=loch|nginx [size=3269] [warm=2000] [count=1000]
# Env: LOCH_TLS_RECORDS (openssl or loch), LOCH_ROOT (as request-counts.sh). Setup: lib.sh.
set -euo pipefail
peer=${1:?loch or nginx}
size=${2:-3269}
warm=${3:-2000}
count=${4:-1000}
records=${LOCH_TLS_RECORDS:-loch}
here=$(cd "$(dirname "$0")" && pwd)
root=${LOCH_ROOT:-$(cd "$here/../.." && pwd)}
# shellcheck source=lib.sh
. "$here/lib.sh"
client="$here/callgrind-requests.py"
https_setup request-syscalls "$size"
https_start "$peer"
https_wait 120
attach() { # tls|plain: strace on every thread of the server
  local args=() t
  for t in /proc/"$server"/task/*; do args+=(-p "${t##*/}"); done
  exec strace -c -o "$dir/strace.$1" "${args[@]}"  # exec: drive_client's SIGINT reaches strace
}
window() { drive_client "$1" "$2" attach "$2"; }
window "$port" tls
window "$plain" plain
echo "$peer${LOCH_TLS_RECORDS:+ (LOCH_TLS_RECORDS=$LOCH_TLS_RECORDS)}, 1 worker, $size B, system calls per request over $count requests on one connection (HTTPS, HTTP):"
python3 - "$dir/strace.tls" "$dir/strace.plain" "$count" <<'PY'
import sys
def rows(p):
    out = {}
    for line in open(p):
        f = line.split()
        if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
            out[f[-1]] = int(f[3])
    return out
a, b, n = rows(sys.argv[1]), rows(sys.argv[2]), int(sys.argv[3])
for k in sorted(set(a) | set(b), key=lambda k: -(a.get(k, 0) + b.get(k, 0))):
    print(f"  {k:20s} {a.get(k, 0) / n:8.2f} {b.get(k, 0) / n:8.2f}")
print(f"  {'total':20s} {sum(a.values()) / n:8.2f} {sum(b.values()) / n:8.2f}")
PY
https_stop
rm -rf "$dir"
