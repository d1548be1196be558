#!/usr/bin/env bash
# What one TLS handshake costs the server, counted (issue 13), loch or nginx, split by where it
# goes. The server runs under callgrind (--separate-threads=yes, every thread and, for nginx, every
# worker process counted); a Python client in another process (packages/tls/bench/handshake-client.py:
# connect, TLS 1.3 handshake, the server's ticket, close_notify both ways, close; one connection at
# a time) makes WARM handshakes, the counters are zeroed (callgrind_control -z PID), COUNT more are
# made, the counters dumped (callgrind_control -d PID), and bench/https/callgrind-split.py splits
# the instructions per handshake into OpenSSL, loch's C++, JavaScript (JIT code and V8 builtins),
# V8/node C++, libc; with the exact call counts of malloc/free, N-API callbacks (JavaScript ->
# native) and N-API calls into JavaScript, and OpenSSL's entry points (SSL_new, SSL_do_handshake...).
# Same certificate kinds, suite and version as bench:https's handshake part: TLS 1.3,
# TLS_AES_128_GCM_SHA256, ECDSA P-256 or RSA 2048; nginx as bench:https runs it (tickets on, no
# session cache), loch as its config does (tickets with shared keys).
#
# Usage: bench/https/handshake-counts.sh PEER=loch|nginx [workers=1] [ecdsa|rsa] [full|resumed]
#          [warm=1000] [count=300]
# Needs valgrind, python3, openssl, nginx; loch from apps/proxy's build (dist/bin.js).
# Env: KEEP=1 keeps the dumps (printed path), LOCH_ENV="A=1" passed to loch, LOCH_TLS_RECORDS
# (loch, the default: the record layer loch takes each connection over to after its handshake;
# or openssl).
set -euo pipefail
peer=${1:?loch or nginx}
workers=${2:-1}
cert=${3:-ecdsa}
mode=${4:-full}
warm=${5:-1000}
count=${6:-300}
records=${LOCH_TLS_RECORDS:-loch}
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d /tmp/loch-handshake-counts-XXXXXX)
chmod 755 "$dir"
client="$root/packages/tls/bench/handshake-client.py"
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
port=$(free_port)

tls_certificate "$cert"

# The server (lib.sh handshake_start: loch's HTTPS listener with an upstream nobody answers, or
# nginx's `return 200`, one process for 1 worker) under callgrind.
node_args=()
if [ "$peer" = nginx ]; then
  handshake_start nginx "$workers" valgrind --tool=callgrind --separate-threads=yes --trace-children=yes \
    --callgrind-out-file="$dir/cg.%p"
else
  # shellcheck disable=SC2086
  handshake_start "$peer" "$workers" env ${LOCH_ENV:-} valgrind --tool=callgrind --separate-threads=yes \
    --callgrind-out-file="$dir/cg.%p"
fi
wait_listening 900 "$port"
python3 "$client" "$port" "$warm" "$mode" >/dev/null
# Every process of the server under callgrind: nginx's workers are the master's children.
pids=("$server")
if [ "$peer" = nginx ] && [ "$workers" != 1 ]; then
  mapfile -t pids < <(pgrep -P "$server")
fi
for p in "${pids[@]}"; do callgrind_control -z "$p" >/dev/null; done
python3 "$client" "$port" "$count" "$mode"
for p in "${pids[@]}"; do callgrind_control -d "$p" >/dev/null; done
sleep 1
kill "$server" 2>/dev/null || true
wait "$server" 2>/dev/null || true
trap - EXIT

dumps=()
for p in "${pids[@]}"; do
  for f in "$dir"/cg."$p"*; do
    case $f in *.1 | *.1-*) dumps+=("$f") ;; esac
  done
done
label=$peer
[ "$peer" = loch ] && label="loch (LOCH_TLS_RECORDS=$records)"
echo "$label, $workers worker(s), $cert $mode handshakes $((warm + 1))..$((warm + count)) (after $warm):"
python3 "$root/bench/https/callgrind-split.py" "$count" "${dumps[@]}"
# Per thread role (loch: one process, every thread a dump): the worker thread (node::worker::Worker::Run),
# V8's platform threads (node's PlatformWorkerThread: TurboFan jobs, concurrent marking, parallel
# scavenging, sweeping), the main thread (dump -01), libuv's threadpool (uv's `worker`), and what
# each spends on V8's collectors and compiler, from callgrind_annotate's inclusive counts.
if [ "$peer" = loch ]; then
  echo "per thread role, instructions per handshake (inclusive):"
  for f in "${dumps[@]}"; do
    callgrind_annotate --inclusive=yes --threshold=100 "$f" 2>/dev/null >"$f.inclusive" || true
    total=$(grep -m1 '^totals:' "$f" | awk '{print $2}')
    # The inclusive count of the first function matching $1 (0 when none does).
    incl() { awk -v re="$1" '$0 ~ re { gsub(",", "", $1); n = $1 + 0; exit } END { print n + 0 }' "$f.inclusive"; }
    if [ "$(incl 'node::worker::Worker::Run[(][)]')" != 0 ]; then role=worker
    elif [ "$(incl 'PlatformWorkerThread')" != 0 ]; then role=platform
    elif [[ $f == *-01 ]]; then role=main
    elif [ "$(incl '[?][?][?]:worker ')" != 0 ]; then role=threadpool
    else role=other; fi
    printf '%s %s %s %s %s %s %s %s\n' "$role" "${total:-0}" "$(incl 'OptimizingCompileDispatcher::CompileTask::RunInternal')" \
      "$(incl 'ConcurrentMarking::Run')" "$(incl 'ScavengerCollector::JobTask::Run')" "$(incl 'Sweeper::')" \
      "$(incl 'Heap::CollectGarbage[(]')" "$(incl 'Scavenger::ScavengePage|ScavengerCollector::CollectGarbage')"
    rm -f "$f.inclusive"
  done | awk -v c="$count" '
    { n[$1]++; t[$1] += $2; tf[$1] += $3; cm[$1] += $4; ps[$1] += $5; sw[$1] += $6; gc[$1] += $7; sc[$1] += $8 }
    END { for (r in t) if (t[r] / c >= 100)
      printf "  %-10s (%2d threads) %10.0f   TurboFan %8.0f  concurrent marking %8.0f  parallel scavenge %8.0f  sweeping %8.0f  GC on this thread %8.0f (scavenges %8.0f)\n",
        r, n[r], t[r] / c, tf[r] / c, cm[r] / c, ps[r] / c, sw[r] / c, gc[r] / c, sc[r] / c }'
fi
if [ "${KEEP:-0}" = 1 ]; then
  echo "(dumps in $dir)"
else
  rm -rf "$dir"
fi
