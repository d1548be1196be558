#!/usr/bin/env bash
# loch's deoptimizations under connection churn (issue 18, close-deopts-2026-12-07.md): a fresh
# loch (TREE's apps/proxy/dist/bin.js, churn-counts.sh's config: 1 worker, metrics through
# [admin], the text access log to a file) runs under --trace-opt --trace-deopt-verbose while a
# node client opens WARM then N connections, one `GET /128` with `Connection: close` each,
# CONC at a time (upstream: nginx static on 127.0.0.1, keep-alive). Untimed (the trace costs CPU).
#   bench/http-proxy/close-trace.sh TREE LABEL INSTANCE OUT_DIR   (env: N=20000 WARM=2000 CONC=16,
#   PORT_BASE: the proxy, upstream and admin take PORT_BASE, +1, +2; unset, each is free_port's
#   (bench/lib/free-port.sh, FREE_PORT_RANGE to keep to a range); CLIENT=wrk: see load())
# Appends one line to OUT_DIR/points.jsonl in deopt-windows.sh's form (one window: the N
# connections; "w" is start-up and the WARM ones), so deopt-windows.py lists the sites by count;
# the node output stays in OUT_DIR/LABEL-INSTANCE.out.
set -euo pipefail
TREE=$1 LABEL=$2 INST=$3 OUTDIR=$4
N=${N:-20000} WARM=${WARM:-2000} CONC=${CONC:-16}
if [ -n "${PORT_BASE:-}" ]; then
  PORT=$PORT_BASE UP=$((PORT_BASE + 1)) ADMIN=$((PORT_BASE + 2))
else
  . "$(dirname "$0")/../lib/free-port.sh"
  PORT=$(free_port) UP=$(free_port) ADMIN=$(free_port)
  # free_port cannot remember what it gave: three distinct ports or stop.
  [ "$PORT" != "$UP" ] && [ "$UP" != "$ADMIN" ] && [ "$PORT" != "$ADMIN" ] || { echo "free_port gave one port twice: run again" >&2; exit 1; }
fi
mkdir -p "$OUTDIR"
out="$OUTDIR/$LABEL-$INST.out"
work=$(mktemp -d /tmp/close-trace.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/root" "$work/up/logs" "$work/log"
head -c 128 /dev/zero | tr '\0' 'x' > "$work/root/128"
cat > "$work/up/nginx.conf" <<CONF
worker_processes 1;
user root;
pid $work/up/nginx.pid;
error_log $work/up/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/up/cb;
  proxy_temp_path $work/up/proxy;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  server { listen 127.0.0.1:$UP backlog=4096; root $work/root; location / { } }
}
CONF
nginx -p "$work/up" -c "$work/up/nginx.conf" -g 'daemon off;' &
pids+=($!)
cat > "$work/loch.toml" <<CONF
[admin]
listener = { type = "socket", value = "127.0.0.1:$ADMIN" }

[runtime]
workers = 1
cpu_affinity = false

[log]
level = "warn"

[servers.bench]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:$PORT" }
access_log = { path = "$work/log/access.log", format = "text" }
timeouts = { server_keepalive = "300s" }

[[servers.bench.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:$UP" }]
CONF
for _ in $(seq 1 300); do ss -ltnH "sport = :$UP" | grep -q . && break; sleep 0.1; done
ss -ltnH "sport = :$UP" | grep -q . || { echo "upstream nginx did not start on $UP" >&2; exit 1; }
# The listener may be another process's: this nginx must still be running (it exits when its bind fails).
kill -0 "${pids[0]}" 2>/dev/null || { echo "upstream nginx exited (port $UP taken?)" >&2; exit 1; }
(cd "$work" && exec node --trace-opt --trace-deopt-verbose "$TREE/apps/proxy/dist/bin.js" run -c "$work/loch.toml") > "$out" 2>&1 &
peer=$!
pids+=("$peer")
for _ in $(seq 1 300); do ss -ltnH "sport = :$PORT" | grep -q . && break; sleep 0.1; done
curl -sf -o /dev/null "http://127.0.0.1:$PORT/128" || { echo "the proxy did not answer 200" >&2; exit 1; }
kill -0 "$peer" 2>/dev/null || { echo "loch exited (port $PORT taken?): $out" >&2; exit 1; }
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
