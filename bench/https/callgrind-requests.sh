#!/usr/bin/env bash
# Instructions per proxied HTTPS request in loch (issue 13), counted by callgrind in one warm
# process, for one record layer: loch (apps/proxy's build, 1 worker, an HTTPS listener in front
# of a node:http backend that answers SIZE bytes) runs under callgrind with
# LOCH_TLS_RECORDS=RECORDS; callgrind-requests.py (another process) sends WARM keep-alive requests
# over one TLS 1.3 connection, the counters are zeroed, COUNT more are sent and the counters
# dumped. Only loch is counted (all its threads). Prints instructions per request: the whole
# process, the ring's TLS work (Ring::PrepTls: encryption in the flush; Ring::TlsRecv: decryption
# in the completion drain), and V8's background threads. One connection at a time, so it counts
# what a request costs, not how requests batch under load (wrk's 64 connections share flushes).
#
# Usage: bench/https/callgrind-requests.sh [loch|openssl] [size=128] [warm=2000] [count=1000]
# Needs valgrind, python3, openssl; apps/proxy built (pnpm --filter @loch/proxy... build).
set -euo pipefail
records=${1:-loch}
size=${2:-128}
warm=${3:-2000}
count=${4:-1000}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# lib.sh's setup: the HTTPS listener (and a plain one, unused here) in front of the backend.
https_setup callgrind-requests "$size"
https_start loch valgrind --tool=callgrind --callgrind-out-file="$dir/cg.%p"
# Under callgrind a worker takes a while to start (minutes on a loaded machine).
https_wait 600
client="$here/callgrind-requests.py"
python3 "$client" "$port" "$warm" "/$size" >/dev/null
callgrind_control -z "$server" >/dev/null
python3 "$client" "$port" "$count" "/$size" >/dev/null
callgrind_control -d "$server" >/dev/null
https_stop

dump=$(ls "$dir"/cg.*.1)
callgrind_annotate --inclusive=yes --threshold=100 "$dump" 2>/dev/null >"$dir/inclusive.txt"
per() {
  local n
  n=$(grep -m1 -E "$1" "$dir/inclusive.txt" | awk '{gsub(",", "", $1); print $1}')
  awk -v n="${n:-0}" -v c="$count" 'BEGIN { printf "%.1fk", n / c / 1e3 }'
}
total=$(grep -m1 '^summary:' "$dump" | awk '{print $2}')
echo "loch, 1 worker, LOCH_TLS_RECORDS=$records, $size B responses, requests $((warm + 1))..$((warm + count)) on one connection, instructions per request:"
echo "  whole process        $(awk -v n="$total" -v c="$count" 'BEGIN { printf "%.1fk", n / c / 1e3 }')"
echo "  Ring::PrepTls        $(per 'loch::Ring::PrepTls')"
echo "  Ring::TlsRecv        $(per 'loch::Ring::TlsRecv')"
echo "  V8 background        $(per 'PlatformWorkerThread')"
echo "(callgrind dump and annotation in $dir)"
