#!/usr/bin/env bash
# Instructions per request that TLS costs loch on the HTTP/2 path (issues 13 and 14), counted by
# callgrind in one warm process: loch (apps/proxy's build, 1 worker; an h2c server and a TLS
# server, h2 by ALPN and HTTP/1.1 without it, in front of a node:http backend that answers SIZE
# bytes) runs under callgrind with LOCH_TLS_RECORDS=RECORDS; h2load (another process) sends WARM
# requests over one connection (MODE h2c, h2, or https: HTTP/1.1 over TLS, h2load --h1), the
# counters are zeroed, COUNT more are sent and the counters dumped. Only loch is counted (all
# its threads). Prints instructions per request: the whole process, the ring's TLS work
# (Ring::PrepTls: encryption as the flush prepares a write, Ring::TlsRecv: decryption in the
# completion drain), OpenSSL's record writes (do_ssl3_write), memmove/memcpy, malloc/free, V8's
# background threads. STREAMS requests in flight on the connection (h2 and h2c; -m of h2load).
#
# Usage: bench/https/callgrind-h2.sh [h2|h2c|https] [loch|openssl] [size=165854] [warm=200] [count=200] [streams=1]
# Needs valgrind, h2load, openssl; apps/proxy built (pnpm --filter @loch/proxy... build).
set -euo pipefail
mode=${1:-h2}
records=${2:-loch}
size=${3:-165854}
warm=${4:-200}
count=${5:-200}
streams=${6:-1}
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/loch-callgrind-h2-XXXXXX")
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
h2c_port=$(free_port)
tls_port=$(free_port)
backend=$(free_port)

tls_certificate ecdsa
server() { # key port tls
  cat <<EOT
[servers.$1]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:$2" }
access_log = false
timeouts = { server_keepalive = "300s" }
$3
[[servers.$1.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:$backend" }]
EOT
}
{
  printf '[runtime]\nworkers = 1\ncpu_affinity = false\n\n[log]\nlevel = "warn"\n\n'
  server h2c "$h2c_port" ''
  echo
  server h2 "$tls_port" "tls = { chain = \"$dir/cert.pem\", key = \"$dir/key.pem\", min_version = \"TLSv1.3\", ciphersuites = \"TLS_AES_128_GCM_SHA256\" }"
} >"$dir/loch.toml"

node -e "const b = Buffer.alloc($size, 120); require('node:http').createServer({ keepAliveTimeout: 600000 }, (q, s) => { s.setHeader('content-length', b.length); s.end(b); }).listen($backend, '127.0.0.1')" &
backend_pid=$!
LOCH_TLS_RECORDS=$records valgrind --tool=callgrind --callgrind-out-file="$dir/cg.%p" \
  node "$root/apps/proxy/dist/bin.js" run -c "$dir/loch.toml" >"$dir/loch.out" 2>&1 &
pid=$!
trap 'kill $pid $backend_pid 2>/dev/null || true' EXIT
listening=0
for _ in $(seq 1 600); do
  if python3 -c "import socket; socket.create_connection(('127.0.0.1', $tls_port)).close()" 2>/dev/null; then
    listening=1
    break
  fi
  sleep 1
done
if [ "$listening" != 1 ]; then
  echo "loch did not listen on 127.0.0.1:$tls_port within 600 s; its output is in $dir/loch.out" >&2
  exit 1
fi
case $mode in
  h2c) url="http://127.0.0.1:$h2c_port/$size"; flags=(-m"$streams") ;;
  h2) url="https://127.0.0.1:$tls_port/$size"; flags=(-m"$streams") ;;
  https) url="https://127.0.0.1:$tls_port/$size"; flags=(--h1 -m1) ;;
  *) echo "mode: h2c, h2 or https" >&2; exit 2 ;;
esac
# Warm-up and counted run on separate connections (h2load opens its own); the handshake of the
# counted connection is in the count (about 2.5M instructions, i.e. 2.5M / COUNT per request).
h2load -t1 -c1 "${flags[@]}" -n"$warm" "$url" >"$dir/warm.out" 2>&1
callgrind_control -z "$pid" >/dev/null 2>&1
h2load -t1 -c1 "${flags[@]}" -n"$count" "$url" >"$dir/count.out" 2>&1
callgrind_control -d "$pid" >/dev/null 2>&1
kill "$pid" "$backend_pid"
wait "$pid" 2>/dev/null || true
trap - EXIT
grep -h '^requests:' "$dir/warm.out" "$dir/count.out" >&2

dump=$(ls "$dir"/cg.*.1)
callgrind_annotate --inclusive=yes --threshold=100 "$dump" 2>/dev/null >"$dir/inclusive.txt"
callgrind_annotate --inclusive=no --threshold=100 "$dump" 2>/dev/null >"$dir/self.txt"
per() { # file regex
  local n
  n=$(grep -E "$2" "$dir/$1" | awk '{gsub(",", "", $1); s += $1} END {print s + 0}')
  awk -v n="${n:-0}" -v c="$count" 'BEGIN { printf "%.1fk", n / c / 1e3 }'
}
total=$(grep -m1 '^summary:' "$dump" | awk '{print $2}')
echo "loch, 1 worker, LOCH_TLS_RECORDS=$records, $mode, $size B, -m$streams, requests $((warm + 1))..$((warm + count)), instructions per request:"
echo "  whole process        $(awk -v n="$total" -v c="$count" 'BEGIN { printf "%.1fk", n / c / 1e3 }')"
echo "  Ring::PrepTls        $(per inclusive.txt 'loch::Ring::PrepTls\(' | head -1)"
echo "  Ring::TlsRecv        $(per inclusive.txt 'loch::Ring::TlsRecv\(')"
echo "  do_ssl3_write        $(per inclusive.txt ':do_ssl3_write \[')"
echo "  AES-GCM (self)       $(per self.txt 'aesni|gcm_|ghash')"
echo "  memmove/memcpy (self) $(per self.txt 'mem(move|cpy)')"
echo "  malloc/free (self)   $(per self.txt '(_int_malloc|_int_free|malloc|free|unlink_chunk|malloc_consolidate)[ .]')"
echo "  V8 background        $(per inclusive.txt 'PlatformWorkerThread')"
echo "(callgrind dump and annotations in $dir)"
