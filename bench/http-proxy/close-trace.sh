#!/usr/bin/env bash
# loch's deoptimizations under connection churn (issue 18, close-deopts-2026-12-07.md): a fresh
# loch (TREE's apps/proxy/dist/bin.js, lib.sh's loch_bench_config: 1 worker, metrics through
# [admin], the text access log to a file) runs under --trace-opt --trace-deopt-verbose while a
# node client opens WARM then N connections, one `GET /128` with `Connection: close` each,
# CONC at a time (upstream: nginx static on 127.0.0.1, keep-alive). Untimed (the trace costs CPU).
#   bench/http-proxy/close-trace.sh TREE LABEL INSTANCE OUT_DIR   (env: N=20000 WARM=2000 CONC=16,
#   FREE_PORT_RANGE=LO-HI to keep the ports to a range (bench/lib/free-port.sh); CLIENT=wrk: see load())
# Appends one line to OUT_DIR/points.jsonl in deopt-windows.sh's form (one window: the N
# connections; "w" is start-up and the WARM ones), so deopt-windows.py lists the sites by count;
# the node output stays in OUT_DIR/LABEL-INSTANCE.out.
set -euo pipefail
TREE=$1 LABEL=$2 INST=$3 OUTDIR=$4
N=${N:-20000} WARM=${WARM:-2000} CONC=${CONC:-16}
# lib.sh: free_port (FREE_PORT_RANGE keeps to a range), run_dir, pids/cleanup, wait_http,
# static_backend (the upstream: nginx static, keep-alive) and loch_bench_config (the bench's loch).
. "$(dirname "$0")/lib.sh"
mkdir -p "$OUTDIR"
out="$OUTDIR/$LABEL-$INST.out"
work=$(run_dir close-trace)
trap 'cleanup; rm -rf "$work"' EXIT
static_backend "$work" 128
PORT=$(free_port)
while [ "$PORT" = "$upstream" ]; do PORT=$(free_port); done
mkdir -p "$work/log"
loch_bench_config "$work/loch.toml" "$PORT" "$upstream" "$work/log/access.log"
(cd "$work" && exec node --trace-opt --trace-deopt-verbose "$TREE/apps/proxy/dist/bin.js" run -c "$work/loch.toml") > "$out" 2>&1 &
peer=$!
pids+=("$peer")
wait_http "$PORT" /128
# The answer may be another process's: this loch (and the upstream) must still be running.
kill -0 "$peer" 2>/dev/null || { echo "loch exited (port $PORT taken?): $out" >&2; exit 1; }
kill -0 "$static_pid" 2>/dev/null || { echo "upstream nginx exited (port $upstream taken?)" >&2; exit 1; }
connections() { # COUNT
  node -e "
const http = require('node:http');
let left = $1, live = 0, ok = 0;
function one() {
  if (left === 0) { if (live === 0) process.exit(ok === $1 ? 0 : 1); return; }
  left--; live++;
  http.get({ host: '127.0.0.1', port: $PORT, path: '/128', agent: false, headers: { connection: 'close' } }, (res) => {
    if (res.statusCode === 200) ok++;
    res.resume();
    res.on('end', () => { live--; one(); });
  }).on('error', (e) => { console.error(e); process.exit(1); });
}
if ($1 === 0) process.exit(0);
for (let i = 0; i < $CONC; i++) one();
"
}
# CLIENT=wrk: wrk -t1 -cCONNS (64) with `Connection: close`, WARM_S then SECONDS_RUN (10) seconds
# instead (its connections cut at each run's end, as deopt-windows.sh's windows).
load() { # COUNT SECONDS
  if [ "${CLIENT:-node}" = wrk ]; then
    wrk -t1 -c"${CONNS:-64}" -d"$2"s -H 'Connection: close' "http://127.0.0.1:$PORT/128" > "$work/wrk.txt"
    # A run of errors would trace the error paths, not the close paths: stop on any.
    if grep -q 'Non-2xx' "$work/wrk.txt"; then echo "wrk saw non-2xx answers:" >&2; cat "$work/wrk.txt" >&2; exit 1; fi
  else
    connections "$1"
  fi
}
load "$WARM" "${WARM_S:-3}"
sleep 0.5
from=$(stat -c %s "$out")
load "$N" "${SECONDS_RUN:-10}"
sleep 0.5
to=$(stat -c %s "$out")
kill -TERM "$peer"; wait "$peer" 2>/dev/null || true
printf '{"tree": "%s", "instance": %s, "trace": true, "out": "%s", "windows": [{"t": 0, "cpu_us": 0, "rps": 0, "from": %s, "to": %s}]}\n' \
  "$LABEL" "$INST" "$out" "$from" "$to" >> "$OUTDIR/points.jsonl"
