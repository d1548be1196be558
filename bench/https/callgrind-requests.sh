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
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d /tmp/loch-callgrind-requests-XXXXXX)
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
port=$(free_port)
backend=$(free_port)

tls_certificate ecdsa
cat >"$dir/loch.toml" <<EOF
[runtime]
workers = 1
cpu_affinity = false

[log]
level = "warn"

[servers.https]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:$port" }
access_log = false
tls = { chain = "$dir/cert.pem", key = "$dir/key.pem", min_version = "TLSv1.3", max_version = "TLSv1.3", ciphersuites = "TLS_AES_128_GCM_SHA256" }
[[servers.https.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:$backend" }]
EOF

node -e "const b = Buffer.alloc($size, 120); require('node:http').createServer((q, s) => { s.setHeader('content-length', b.length); s.end(b); }).listen($backend, '127.0.0.1')" &
backend_pid=$!
LOCH_TLS_RECORDS=$records valgrind --tool=callgrind --callgrind-out-file="$dir/cg.%p" \
  node "$root/apps/proxy/dist/bin.js" run -c "$dir/loch.toml" >"$dir/loch.out" 2>&1 &
pid=$!
trap 'kill $pid $backend_pid 2>/dev/null || true' EXIT
# Under callgrind a worker takes a while to start (minutes on a loaded machine).
listening=0
for _ in $(seq 1 600); do
  if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port)).close()" 2>/dev/null; then
    listening=1
    break
  fi
  sleep 1
done
if [ "$listening" != 1 ]; then
  echo "loch did not listen on 127.0.0.1:$port within 600 s; its output is in $dir/loch.out" >&2
  exit 1
fi
client="$root/bench/https/callgrind-requests.py"
python3 "$client" "$port" "$warm" "/$size" >/dev/null
callgrind_control -z "$pid" >/dev/null
python3 "$client" "$port" "$count" "/$size" >/dev/null
callgrind_control -d "$pid" >/dev/null
kill "$pid" "$backend_pid"
wait "$pid" 2>/dev/null || true
trap - EXIT

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
