#!/usr/bin/env bash
# What TLS adds to one proxied request, counted (issue 13): loch or nginx under callgrind (every
# thread), one instance with an HTTPS and a plain HTTP listener in front of the same node:http
# backend (SIZE-byte responses), the Python client of callgrind-requests.py in other processes:
# one keep-alive connection over TLS 1.3 (AES-128-GCM) and one over plain HTTP, WARM requests on
# each, then rounds of two windows (HTTPS, HTTP): the counters zeroed, COUNT requests, dumped
# (keep-alive timeouts of an hour: a connection waits idle while the other one's window runs).
# bench/https/callgrind-split.py splits each window per request (OpenSSL, loch's C++,
# JavaScript, V8/node C++, libc, nginx; malloc and N-API calls; SSL_read/SSL_write calls) and the
# difference HTTPS minus HTTP is printed: what TLS adds, as the Targets table's "TLS adds" row of
# bench/results/https.md measures in CPU time on a quiet machine, but in instructions, which the
# load does not change. A loch worker's JavaScript keeps tiering up for thousands of requests
# under callgrind: compare rounds (or ONLY=-NN, the worker thread's dumps) before reading a JS or
# V8 difference as TLS's. One connection at a time: what a request costs, not how requests batch
# under wrk's 64 connections.
#
# Usage: bench/https/request-counts.sh PEER=loch|nginx [size=3269] [warm=2000] [count=1000]
# Env: ROUNDS (2: HTTPS, HTTP, HTTPS, HTTP windows), ONLY (a dump suffix such as -12, a loch
# worker thread's: count that thread alone), LOCH_TLS_RECORDS (loch: loch, the default, or
# openssl), CACHESIM=1 (callgrind's cache simulation: D1 and LL misses per request, see
# callgrind-split.py; several times slower), KEEP=1 keeps the dumps, LOCH_ROOT the checkout whose apps/proxy build runs (default:
# this script's). Copy the script elsewhere before editing it while it runs (bash reads on).
# Needs valgrind, python3, openssl, nginx; loch from apps/proxy's build (dist/bin.js).
set -euo pipefail
peer=${1:?loch or nginx}
size=${2:-3269}
warm=${3:-2000}
count=${4:-1000}
rounds=${ROUNDS:-2}
records=${LOCH_TLS_RECORDS:-loch}
here=$(cd "$(dirname "$0")" && pwd)
root=${LOCH_ROOT:-$(cd "$here/../.." && pwd)}
# shellcheck source=lib.sh
. "$here/lib.sh"
client="$here/callgrind-requests.py"
https_setup request-counts "$size"
cachesim=()
[ "${CACHESIM:-0}" = 1 ] && cachesim=(--cache-sim=yes)
https_start "$peer" valgrind --tool=callgrind "${cachesim[@]}" --separate-threads=yes --callgrind-out-file="$dir/cg.%p"
https_wait 900
# Both clients connect and make WARM requests first (so both paths are compiled and warm alike),
# then ROUNDS rounds of two windows, HTTPS then HTTP: the counters zeroed, COUNT requests on the
# warm connection, the counters dumped. A window holds requests only (no handshake, no accept).
for kind in tls plain; do mkfifo "$dir/go.$kind"; done
python3 "$client" "$port" "$count" "/$size" tls "$warm" <"$dir/go.tls" >"$dir/client.tls" &
tls_client=$!
exec 3>"$dir/go.tls"
python3 "$client" "$plain" "$count" "/$size" plain "$warm" <"$dir/go.plain" >"$dir/client.plain" &
plain_client=$!
exec 4>"$dir/go.plain"
until grep -q warm "$dir/client.tls" 2>/dev/null && grep -q warm "$dir/client.plain" 2>/dev/null; do sleep 0.5; done
window() { # fd client-output
  local before
  before=$(grep -c done "$2" || true)
  callgrind_control -z "$server" >/dev/null 2>&1
  echo go >&"$1"
  until [ "$(grep -c done "$2" || true)" -gt "$before" ]; do sleep 0.2; done
  callgrind_control -d "$server" >/dev/null 2>&1
}
for _ in $(seq 1 "$rounds"); do
  window 3 "$dir/client.tls"
  window 4 "$dir/client.plain"
done
exec 3>&- 4>&-
wait "$tls_client" "$plain_client"
sleep 1
https_stop

dumps() { for f in "$dir"/cg."$server"*; do case $f in *."$1" | *."$1"-*) echo "$f" ;; esac; done; }
split() { python3 "$here/callgrind-split.py" ${ONLY:+--only "$ONLY"} "$count" $(dumps "$1"); }
label=$peer
[ "$peer" = loch ] && label="loch (LOCH_TLS_RECORDS=$records)"
echo "$label, 1 worker, $size B responses, windows of $count keep-alive requests on one warm connection each after $warm${ONLY:+, dumps *$ONLY only}:"
for r in $(seq 1 "$rounds"); do
  split $((2 * r - 1)) >"$dir/https.$r.txt"
  split $((2 * r)) >"$dir/http.$r.txt"
  echo "round $r:"
  python3 - "$dir/https.$r.txt" "$dir/http.$r.txt" <<'PY'
import re, sys
def rows(path):
    out = {}
    for line in open(path):
        if line.startswith("top "):
            break
        m = re.match(r"^\s+(\S+)\s+([\d,.]+)", line)
        if m and m.group(1) not in out:
            out[m.group(1)] = float(m.group(2).replace(",", ""))
    return out
tls, plain = rows(sys.argv[1]), rows(sys.argv[2])
print(f"  {'per request':16s} {'HTTPS':>12s} {'HTTP':>12s} {'TLS adds':>12s}")
for k in ["whole", "openssl", "loch", "js", "v8", "libc", "nginx", "other", "malloc", "free", "napi_callback", "napi_call_js", "SSL_read_ex", "SSL_write_ex", "SSL_read", "SSL_write", "EVP_EncryptUpdate", "EVP_DecryptUpdate", "D1miss", "LLdmiss", "LLimiss"]:
    if k in tls or k in plain:
        a, b = tls.get(k, 0), plain.get(k, 0)
        fmt = "{:12,.0f}" if k in ("whole", "openssl", "loch", "js", "v8", "libc", "nginx", "other", "D1miss", "LLdmiss", "LLimiss") else "{:12.2f}"
        print(f"  {k:16s} {fmt.format(a)} {fmt.format(b)} {fmt.format(a - b)}")
PY
done
echo "last round, HTTPS window:"; sed 's/^/  /' "$dir/https.$rounds.txt"
echo "last round, HTTP window:"; sed 's/^/  /' "$dir/http.$rounds.txt"
if [ "${KEEP:-0}" = 1 ]; then echo "(dumps in $dir)"; else rm -rf "$dir"; fi
