#!/usr/bin/env bash
# What one client connection costs a proxy under connection churn (issue 18): every request on a
# new connection (`Connection: close`), counted, not timed, so no hold is needed.
#   bench/http-proxy/churn-counts.sh PEER MODE N OUT
# PEER: a built checkout of this repo (its apps/proxy/dist/bin.js runs: 1 worker, metrics on
# through an [admin] listener, the text access log to a file, a 127.0.0.1 listener: bench/ab's
# config) or `nginx` (bench/lib/nginx.ts's proxy: 1 worker, upstream keep-alive, the `combined`
# access log to a file). MODE:
#   strace    strace -f -c of the whole process tree (syscalls by name)
#   uring     perf record of io_uring:io_uring_submit_req (SQEs by opcode) and
#             io_uring:io_uring_poll_arm (armed polls by opcode), summed by perf script
#   perf      perf stat of instructions and cycles, user and kernel apart (every thread; needs
#             hardware counters, which a VM may not have: then OUT reads <not supported>)
#   record    perf record -g at 999 Hz (every thread; loch with --perf-basic-prof so JIT code is
#             named); OUT gets perf report's flat table (self, by symbol)
#   callgrind valgrind --tool=callgrind on the whole process (every thread: user-space Ir; the
#             files OUT.<pid>, one per process (nginx: master and worker); loch's V8 map as
#             OUT.<pid>.map, for callgrind-core.py --maps)
# N connections, one `GET /128` each, 8 at a time, from a node client that is not traced, after
# WARM (env, default 0) connections the same way before the tracer attaches (the JIT's tiers up). The
# upstream is nginx static on 127.0.0.1 (the bench's backend). Per connection = (run at N - run
# at 0) / N: run N=0 and N=2000 and diff them (bench/uring-direct/proxy-local-address-diff.py).
set -euo pipefail
PEER=$1 MODE=$2 N=$3 OUT=$4
PORT=${PORT:-21011} UP=${UP:-21012} ADMIN=${ADMIN:-21013}
here=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/churn-counts.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # The next run binds the same ports: wait for these to go.
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# The backend: nginx static serving a 128-byte file (as bench/ab's).
mkdir -p "$work/root" "$work/up/logs" "$work/px/logs"
head -c 128 /dev/zero | tr '\0' 'x' > "$work/root/128"
cat > "$work/up/nginx.conf" <<EOF
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
EOF
nginx -p "$work/up" -c "$work/up/nginx.conf" -g 'daemon off;' &
up_pid=$!
pids+=("$up_pid")
# The upstream must be up: a failed bind would leave the proxy answering 502 and an N = 0 run
# that "succeeds" (REVIEW F249).
for _ in $(seq 1 300); do
  ss -ltnH "sport = :$UP" | grep -q . && break
  kill -0 "$up_pid" 2> /dev/null || break
  sleep 0.1
done
ss -ltnH "sport = :$UP" | grep -q . && kill -0 "$up_pid" 2> /dev/null || { echo "upstream nginx did not start on $UP" >&2; exit 1; }

if [ "$PEER" = nginx ]; then
  cat > "$work/px/nginx.conf" <<EOF
worker_processes 1;
user root;
pid $work/px/nginx.pid;
error_log $work/px/error.log warn;
events { worker_connections 16384; multi_accept on; }
http {
  access_log $work/px/access.log;
  client_body_temp_path $work/px/cb;
  proxy_temp_path $work/px/proxy;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  tcp_nodelay on;
  upstream backend { server 127.0.0.1:$UP; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$PORT backlog=4096;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_max_temp_file_size 0;
    }
  }
}
EOF
  cmd=(nginx -p "$work/px" -c "$work/px/nginx.conf" -g 'daemon off;')
else
  mkdir -p "$work/log"
  cat > "$work/loch.toml" <<EOF
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
EOF
  cmd=(node "$PEER/apps/proxy/dist/bin.js" run -c "$work/loch.toml")
fi

# The peer runs in the temp dir: what node writes to its working directory (V8 isolate logs) stays there.
cd "$work"
case "$MODE" in
  strace) "${cmd[@]}" > /dev/null 2> "$work/peer.err" & ;;
  # node's V8 map (--perf-basic-prof) names the JIT code: kept beside the run's file.
  callgrind) NODE_OPTIONS=--perf-basic-prof valgrind --tool=callgrind --smc-check=all-non-file \
      --trace-children=no --callgrind-out-file="$OUT.%p" "${cmd[@]}" > /dev/null 2> "$work/peer.err" & ;;
  uring|perf) "${cmd[@]}" > /dev/null 2> "$work/peer.err" & ;;
  record) if [ "$PEER" = nginx ]; then "${cmd[@]}" > /dev/null 2> "$work/peer.err" &
    else NODE_OPTIONS=--perf-basic-prof "${cmd[@]}" > /dev/null 2> "$work/peer.err" & fi ;;
  *) echo "MODE: strace, uring, perf, record or callgrind" >&2; exit 2 ;;
esac
peer_pid=$!
pids+=("$peer_pid")
for _ in $(seq 1 3000); do
  ss -ltnH "sport = :$PORT" | grep -q . && break
  sleep 0.1
done
ss -ltnH "sport = :$PORT" | grep -q . || { cat "$work/peer.err" >&2; exit 1; }
# connections COUNT: COUNT one-request connections, 8 at a time.
connections() {
  node -e "
const http = require('node:http');
let left = $1, live = 0, ok = 0;
function one() {
  if (left === 0) { if (live === 0) { console.error('ok', ok); process.exit(ok === $1 ? 0 : 1); } return; }
  left--; live++;
  http.get({ host: '127.0.0.1', port: $PORT, path: '/128', agent: false, headers: { connection: 'close' } }, (res) => {
    if (res.statusCode === 200) ok++;
    res.resume();
    res.on('end', () => { live--; one(); });
  }).on('error', (e) => { console.error(e); process.exit(1); });
}
for (let i = 0; i < 8; i++) one();
if ($1 === 0) process.exit(0);
"
}
# A first request warms the upstream connection and the code paths both runs share; then attach.
curl -sf -o /dev/null "http://127.0.0.1:$PORT/128" || { echo "the proxy did not answer 200" >&2; exit 1; }
connections "${WARM:-0}"
sleep 1
# The peer and its children (nginx's worker is a child of its master); strace -f and perf -p
# take every thread of each.
targets=("$peer_pid" $(pgrep -P "$peer_pid" || true))
case "$MODE" in
  strace) strace -f -c -o "$OUT" $(printf -- '-p %s ' "${targets[@]}") &
    tracer=$! ;;
  uring) perf record -q -o "$work/perf.data" -e io_uring:io_uring_submit_req -e io_uring:io_uring_poll_arm \
      -p "$(IFS=,; echo "${targets[*]}")" > /dev/null 2>&1 &
    tracer=$! ;;
  perf) perf stat -x, -o "$OUT" -e instructions:u,instructions:k,cycles:u,cycles:k \
      -p "$(IFS=,; echo "${targets[*]}")" &
    tracer=$! ;;
  record) perf record -q -g -F 999 -o "$work/perf.data" -p "$(IFS=,; echo "${targets[*]}")" > /dev/null 2>&1 &
    tracer=$! ;;
  callgrind) tracer= ;;
esac
sleep 1
connections "$N"

sleep 1
case "$MODE" in
  strace) kill -INT "$tracer"; wait "$tracer" || true ;;
  perf) kill -INT "$tracer"; wait "$tracer" || true ;;
  record) kill -INT "$tracer"; wait "$tracer" || true
    perf report -i "$work/perf.data" --no-children --sort sym --stdio -g none 2>/dev/null > "$OUT" ;;
  uring) kill -INT "$tracer"; wait "$tracer" || true
    perf script -i "$work/perf.data" -F event,trace 2>/dev/null |
      sed -E 's/^ *io_uring:(io_uring_[a-z_]+):.*opcode ([A-Z_0-9]+).*/\1 \2/' | sort | uniq -c > "$OUT" ;;
  callgrind) : ;;
esac
kill -TERM "$peer_pid"
wait "$peer_pid" || true
if [ "$MODE" = callgrind ] && [ -f "/tmp/perf-$peer_pid.map" ]; then mv "/tmp/perf-$peer_pid.map" "$OUT.$peer_pid.map"; fi
if [ "$MODE" = record ]; then rm -f "/tmp/perf-$peer_pid.map"; fi
