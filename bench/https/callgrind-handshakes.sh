#!/usr/bin/env bash
# Instructions per TLS handshake in loch the proxy (issue 13), counted by callgrind in one warm
# process: loch (apps/proxy's build, an HTTPS listener, N workers) runs under callgrind; a Python
# client in another process (packages/tls/bench/handshake-client.py: handshake, the server's
# ticket, close_notify both ways, close; one connection at a time) makes WARM handshakes, the
# counters are zeroed (callgrind_control -z), COUNT more are made, and the counters dumped
# (callgrind_control -d). Every thread of the process is counted (workers, main thread, V8's
# background compiler and GC threads), nothing of the client. Prints instructions per handshake:
# the whole process, OpenSSL's handshake (SSL_do_handshake), V8's background threads (TurboFan,
# concurrent marking) and the main-thread GC, from callgrind_annotate's inclusive counts.
# Instructions, not time: repeatable on a busy machine (a rep-movsb copy counts once per byte).
#
# Usage: bench/https/callgrind-handshakes.sh [workers=1] [warm=1500] [count=500] [full|resumed]
# Env: LOCH_TLS_RECORDS (loch, the default: the record layer taken over after each handshake; or
# openssl).
# Needs valgrind, python3, openssl; apps/proxy built (pnpm --filter @loch/proxy... build).
set -euo pipefail
workers=${1:-1}
warm=${2:-1500}
count=${3:-500}
mode=${4:-full}
records=${LOCH_TLS_RECORDS:-loch}
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d /tmp/loch-callgrind-handshakes-XXXXXX)
client="$root/packages/tls/bench/handshake-client.py"
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
port=$(free_port)

tls_certificate ecdsa
# loch's HTTPS listener with an upstream nobody answers (lib.sh handshake_start) under callgrind.
# Under callgrind a worker takes a while to start (minutes on a loaded machine).
node_args=()
handshake_start loch "$workers" valgrind --tool=callgrind --callgrind-out-file="$dir/cg.%p"
pid=$server
wait_listening 600 "$port"
python3 "$client" "$port" "$warm" "$mode" >/dev/null
callgrind_control -z "$pid" >/dev/null
python3 "$client" "$port" "$count" "$mode"
callgrind_control -d "$pid" >/dev/null
kill "$pid"
wait "$pid" 2>/dev/null || true
trap - EXIT

dump=$(ls "$dir"/cg.*.1)
callgrind_annotate --inclusive=yes --threshold=100 "$dump" 2>/dev/null >"$dir/inclusive.txt"
per() {
  # Inclusive instructions of the first function matching $1, per handshake (0 when absent).
  local n
  n=$(grep -m1 -E "$1" "$dir/inclusive.txt" | awk '{gsub(",", "", $1); print $1}')
  awk -v n="${n:-0}" -v c="$count" 'BEGIN { printf "%.3fM", n / c / 1e6 }'
}
total=$(grep -m1 '^summary:' "$dump" | awk '{print $2}')
echo "loch, $workers worker(s), LOCH_TLS_RECORDS=$records, $mode handshakes $((warm + 1))..$((warm + count)) (after $warm), instructions per handshake:"
echo "  whole process       $(awk -v n="$total" -v c="$count" 'BEGIN { printf "%.3fM", n / c / 1e6 }')"
echo "  SSL_do_handshake    $(per '\?\?\?:SSL_do_handshake ')"
echo "  workers' JS thread  $(per 'node::worker::Worker::Run\(\)')"
echo "  V8 background       $(per 'PlatformWorkerThread')"
echo "    TurboFan          $(per 'OptimizingCompileDispatcher::CompileTask::RunInternal')"
echo "    marking (major)   $(per 'ConcurrentMarking::RunMajor')"
echo "  main-thread GC      $(per 'Heap::CollectGarbage\(')"
echo "    mark-compact      $(per 'MarkCompactCollector::CollectGarbage\(\)')"
echo "(callgrind dump and annotation in $dir)"
