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
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# lib.sh's setup (the certificate, two ports, the node:http backend); its two ports serve TLS
# ($port) and h2c ($plain) here.
https_setup callgrind-h2 "$size"
tls_port=$port
h2c_port=$plain
h2_loch_toml "$h2c_port" "$tls_port" "$backend" ', ciphersuites = "TLS_AES_128_GCM_SHA256"'
loch_start valgrind --tool=callgrind --callgrind-out-file="$dir/cg.%p"
# Under callgrind a worker takes a while to start (minutes on a loaded machine).
wait_listening 600 "$tls_port" "$h2c_port"
case $mode in
  h2c) url="http://127.0.0.1:$h2c_port/$size"; flags=(-m"$streams") ;;
  h2) url="https://127.0.0.1:$tls_port/$size"; flags=(-m"$streams") ;;
  https) url="https://127.0.0.1:$tls_port/$size"; flags=(--h1 -m1) ;;
  *) echo "mode: h2c, h2 or https" >&2; exit 2 ;;
esac
# Warm-up and counted run on separate connections (h2load opens its own); the handshake of the
# counted connection is in the count (about 2.5M instructions, i.e. 2.5M / COUNT per request).
h2load -t1 -c1 "${flags[@]}" -n"$warm" "$url" >"$dir/warm.out" 2>&1
callgrind_control -z "$server" >/dev/null 2>&1
h2load -t1 -c1 "${flags[@]}" -n"$count" "$url" >"$dir/count.out" 2>&1
callgrind_control -d "$server" >/dev/null 2>&1
https_stop
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
