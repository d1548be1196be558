#!/usr/bin/env bash
# What TLS adds per proxied request under wrk's load, counted with callgrind's cache simulation
# (issue 13): request-counts.sh's setup (loch or nginx, an HTTPS and a plain HTTP listener in front
# of one node:http backend answering SIZE bytes), but each window is `wrk -t1 -cCONNS` (many
# connections at once, so their buffers share the caches) instead of one connection's requests.
# Rounds of two windows, HTTPS then HTTP; in each, one wrk runs WARM seconds (its connections
# and their handshakes), then SECONDS counted, and the window is split per request (requests: the
# backend's count) by callgrind-split.py, misses included. callgrind runs the threads one at a
# time and simulates one cache for all of them, and it does not see the kernel's copies: this
# counts the footprint of the server's own reads and writes (its buffers, its sessions, its heap)
# against a cache of the given size, not wrk's or the backend's share of a real core, and data the
# kernel just wrote (a recv buffer) counts as cold. The last level is set to one core's L2 of this
# machine (1 MiB, 8-way; LL= overrides, e.g. LL=33554432,16,64 for the L3). Under callgrind a
# response takes milliseconds: with 64 connections the handshakes alone took minutes on a loaded
# machine (bench/results/https-165k-2026-12-06.md used CONNS=32 and 90 s windows).
#
# Usage: bench/https/load-counts.sh PEER=loch|nginx [size=165854] [warm=90] [seconds=90]
# Env: CONNS (64), ROUNDS (1), WORKERS (loch: 1), LL (1048576,8,64), KEEP=1 keeps the dumps,
# LOCH_ROOT (the checkout whose apps/proxy build runs), any of loch's env (LOCH_TLS_RECORDS,
# LOCH_TLS_DIRECT_SEND...). Needs valgrind, wrk, python3, openssl, nginx; loch from apps/proxy's
# build (dist/bin.js).
set -euo pipefail
peer=${1:?loch or nginx}
size=${2:-165854}
warm=${3:-90}
seconds=${4:-90}
conns=${CONNS:-64}
rounds=${ROUNDS:-1}
ll=${LL:-1048576,8,64}
records=${LOCH_TLS_RECORDS:-loch}
here=$(cd "$(dirname "$0")" && pwd)
root=${LOCH_ROOT:-$(cd "$here/../.." && pwd)}
# shellcheck source=lib.sh
. "$here/lib.sh"
https_setup load-counts "$size"
# No worker watchdog: under callgrind a worker with 64 connections misses heartbeats for 30 s.
export LOCH_WORKER_WATCHDOG_MS=0
# Instrumented from the warm-up on (loch's workers must answer its startup within 15 s, which a
# loaded machine does not give a cache-simulated start).
https_start "$peer" valgrind --tool=callgrind --cache-sim=yes "--LL=$ll" --separate-threads=yes \
  --instr-atstart=no --callgrind-out-file="$dir/cg.%p"
https_wait 900
callgrind_control -i on "$server" >/dev/null 2>&1
# The requests of a window are the backend's (wrk is not stopped between warm-up and window: a new
# wrk would open its 64 connections, TLS handshakes included, inside the window): the backend
# counts the requests it answers and writes the count to $dir/count on SIGUSR2.
kill "$backend_pid" 2>/dev/null || true
wait "$backend_pid" 2>/dev/null || true
node -e "const b = Buffer.alloc($size, 120); let n = 0; process.on('SIGUSR2', () => require('node:fs').writeFileSync('$dir/count', String(n))); require('node:http').createServer({ keepAliveTimeout: 3600e3 }, (q, s) => { n++; s.setHeader('content-length', b.length); s.end(b); }).listen($backend, '127.0.0.1')" &
backend_pid=$!
wait_listening 30 "$backend"
answered() {
  rm -f "$dir/count"
  kill -USR2 "$backend_pid"
  until [ -s "$dir/count" ]; do sleep 0.1; done
  cat "$dir/count"
}
# A window: wrk's CONNS connections for WARM seconds, the counters zeroed, SECONDS counted (and
# the backend's requests in between), the counters dumped, wrk stopped (its timeout is long: under
# callgrind one response takes milliseconds and 64 of them queue).
window() { # URL FILE
  wrk -t1 -c"$conns" -d"$((warm + seconds + 600))s" --timeout 120s "$1/$size" >/dev/null 2>&1 &
  local load=$!
  sleep "$warm"
  callgrind_control -z "$server" >/dev/null 2>&1
  local before
  before=$(answered)
  sleep "$seconds"
  callgrind_control -d "$server" >/dev/null 2>&1
  echo $(($(answered) - before)) >"$2"
  kill "$load" 2>/dev/null || true
  wait "$load" 2>/dev/null || true
}
for r in $(seq 1 "$rounds"); do
  window "https://127.0.0.1:$port" "$dir/https.$r.requests"
  window "http://127.0.0.1:$plain" "$dir/http.$r.requests"
done
https_stop

dumps() { for f in "$dir"/cg."$server"*; do case $f in *."$1" | *."$1"-*) echo "$f" ;; esac; done; }
label=$peer
[ "$peer" = loch ] && label="loch (LOCH_TLS_RECORDS=$records, ${WORKERS:-1} worker(s))"
echo "$label, $size B responses, wrk -t1 -c$conns windows of ${seconds}s after ${warm}s on each listener, LL $ll:"
n=0
for r in $(seq 1 "$rounds"); do
  for kind in https http; do
    n=$((n + 1))
    requests=$(cat "$dir/$kind.$r.requests")
    echo "round $r, $kind: $requests requests"
    python3 "$here/callgrind-split.py" "$requests" $(dumps "$n") | sed 's/^/  /'
  done
done
if [ "${KEEP:-0}" = 1 ]; then echo "(dumps in $dir)"; else rm -rf "$dir"; fi
