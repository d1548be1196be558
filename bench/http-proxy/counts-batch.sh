#!/usr/bin/env bash
# What a wakeup costs, in user-space instructions (issue 18, worker scaling). The load split over
# two workers gives each wakeup fewer requests, so whatever a proxy pays once per wakeup is spread
# over fewer of them. This script measures that fixed cost directly with one worker and no
# scheduler in the way: the proxy (loch 1 worker, from the sources under tsx, or nginx 1 worker
# with master_process off) runs under valgrind's callgrind (instructions counted only while a
# load runs), and wrk -t1 loads it with CONNS_LIST connections in turn (1, 4, 16, 64: at most that
# many requests can be ready per wakeup). Per load: instructions (Ir) per request, epoll waits
# per request (perf stat on the proxy), loch's completion callbacks and ring submit calls per
# request (counts-preload.cjs). A least-squares fit of Ir per request against waits per request
# gives the instructions per wakeup (slope) and per request apart from wakeups (intercept).
# The per-function Ir of each load is kept (callgrind_annotate) so the fixed cost can be named:
# `callgrind_annotate --inclusive=yes <dir>/<peer>-c<conns>.cg`.
#
# This VM has no hardware counters (perf stat -e instructions:u: not supported); valgrind runs
# the threads one at a time and ~50x slower, so its batching is not a normal run's: the numbers
# here are instructions as a function of requests per wakeup, not what a given load batches.
# Kernel work is not in them.
#
# PERF_MAP=1 runs loch with --perf-basic-prof and keeps V8's map as <dir>/<peer>.perf-map, so
# `counts-batch.py diff <dir> <peer> 4 16 <dir>/<peer>.perf-map` names the JavaScript functions.
# Peers: nginx, loch (bench/http-proxy/peers.ts's config), loch-tick (LOCH_URING_FLUSH=tick).
#
# Usage: bench/http-proxy/counts-batch.sh [peers=loch,nginx] [conns_list=1,4,16,64] [seconds=10]
#          [size=128] [warm=40]
set -euo pipefail
peers=${1:-loch,nginx}
conns_list=${2:-1,4,16,64}
seconds=${3:-10}
size=${4:-128}
warm=${5:-40}
here=$(cd "$(dirname "$0")/../.." && pwd)
base=${TMPDIR:-/tmp}
dir=$(mktemp -d "$base/counts-batch-XXXXXX")
chmod 755 "$dir"
echo "run dir: $dir" >&2
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # port path tries
  for _ in $(seq 1 "${3:-300}"); do
    if curl -sf -m 5 -o /dev/null "http://127.0.0.1:$1$2"; then return 0; fi
    sleep 0.2
  done
  echo "port $1 never answered $2" >&2
  return 1
}
# Waits (up to 30 s) until every thread that wrote a line has written the mark $2 (a worker's
# preload reads the mark file every 50 ms; under valgrind that can take a while).
wait_marks() { # counts dir, mark
  for _ in $(seq 1 300); do
    local missing=0
    for f in "$1"/thread-*.txt; do
      [ -e "$f" ] || continue
      grep -q "\"mark\":\"$2\"" "$f" || missing=1
    done
    [ "$missing" = 0 ] && return 0
    sleep 0.1
  done
}
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

mkdir -p "$dir/www" "$dir/static/logs"
head -c "$size" /dev/zero | tr '\0' 'x' >"$dir/www/$size"
chmod -R 755 "$dir/www"
upstream=$(free_port)
common() { # prefix
  cat <<EOF
user root;
pid $1/nginx.pid;
error_log $1/error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 16384; multi_accept on; }
EOF
}
http_common() { # prefix
  cat <<EOF
  access_log off;
  client_body_temp_path $1/client_body;
  proxy_temp_path $1/proxy;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  tcp_nodelay on;
EOF
}
{
  echo "worker_processes 1;"
  common "$dir/static"
  echo "http {"
  http_common "$dir/static"
  cat <<EOF
  sendfile on;
  tcp_nopush on;
  open_file_cache max=64 inactive=600s;
  default_type application/octet-stream;
  server { listen 127.0.0.1:$upstream backlog=4096; root $dir/www; location / { } }
}
EOF
} >"$dir/static/nginx.conf"
taskset -c 0 nginx -p "$dir/static" -c "$dir/static/nginx.conf" -g 'daemon off;' >"$dir/static.out" 2>&1 &
pids+=($!)
wait_http "$upstream" "/$size"

cg=(valgrind --tool=callgrind --instr-atstart=no --smc-check=all-non-file)
IFS=, read -ra peer_arr <<<"$peers"
IFS=, read -ra conns_arr <<<"$conns_list"
for peer in "${peer_arr[@]}"; do
  port=$(free_port)
  p="$dir/$peer"
  mkdir -p "$p/logs" "$p/counts"
  if [ "$peer" = nginx ]; then
    {
      echo "worker_processes 1;"
      echo "master_process off;"
      common "$p"
      echo "http {"
      http_common "$p"
      cat <<EOF
  upstream backend { server 127.0.0.1:$upstream; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$port backlog=4096;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_max_temp_file_size 0;
    }
  }
}
EOF
    } >"$p/nginx.conf"
    taskset -c 1 "${cg[@]}" "--callgrind-out-file=$p/cg.%p" nginx -p "$p" -c "$p/nginx.conf" -g 'daemon off;' \
      >"$p/out" 2>&1 &
  else
    cat >"$p/loch.toml" <<EOF
[runtime]
workers = 1
cpu_affinity = false

[log]
level = "warn"

[servers.bench]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:$port" }
access_log = false
timeouts = { server_keepalive = "300s" }

[[servers.bench.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:$upstream" }]
EOF
    # No idle trim: under valgrind a pause between loads passes its 1 s, and a trim flushes the
    # compiled code (the next load would count TurboFan compiling it all again).
    perf_flag=
    [ "${PERF_MAP:-0}" = 1 ] && perf_flag=--perf-basic-prof
    flush=immediate
    [ "$peer" = loch-tick ] && flush=tick
    (cd "$here/apps/proxy" && LOCH_URING_FLUSH=$flush LOCH_IDLE_TRIM_MS=0 LOCH_COUNTS_DIR="$p/counts" \
      LOCH_COUNTS_NATIVE="$here/native/build/Release/loch_native.node" \
      exec taskset -c 1 "${cg[@]}" "--callgrind-out-file=$p/cg.%p" node $perf_flag \
      --require "$here/bench/http-proxy/counts-preload.cjs" --conditions=@loch/source --import tsx \
      src/bin.ts run -c "$p/loch.toml") >"$p/out" 2>&1 &
  fi
  proxy_pid=$!
  pids+=("$proxy_pid")
  wait_http "$port" "/$size" 1500
  taskset -c 0 wrk -t1 -c64 -d"${warm}s" "http://127.0.0.1:$port/$size" >"$p/wrk-warm"
  for c in "${conns_arr[@]}"; do
    # A short run at this concurrency first, so the counted one starts in its steady state.
    taskset -c 0 wrk -t1 -c"$c" -d2s "http://127.0.0.1:$port/$size" >/dev/null
    callgrind_control -z "$proxy_pid" >/dev/null
    perf stat -x, -e syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_io_uring_enter,raw_syscalls:sys_enter \
      -p "$proxy_pid" -o "$p/perf-c$c" &
    perf_pid=$!
    sleep 0.3
    echo "start-c$c" >"$p/counts/mark"
    callgrind_control -i on "$proxy_pid" >/dev/null
    taskset -c 0 wrk -t1 -c"$c" -d"${seconds}s" "http://127.0.0.1:$port/$size" >"$p/wrk-c$c"
    callgrind_control -i off "$proxy_pid" >/dev/null
    echo "end-c$c" >"$p/counts/mark"
    wait_marks "$p/counts" "end-c$c"
    kill -INT "$perf_pid"
    wait "$perf_pid" || true
    sleep 0.5
    callgrind_control -d "dump-c$c" "$proxy_pid" >/dev/null
    sleep 1
    # The newest dump (callgrind names them cg.<pid>.<n>).
    newest=$(ls -t "$p"/cg.*.* 2>/dev/null | head -1)
    cp "$newest" "$dir/$peer-c$c.cg"
    /usr/bin/python3 "$here/bench/http-proxy/counts-batch.py" point "$dir" "$peer" "$c" | tee -a "$dir/points.jsonl"
  done
  [ -f "/tmp/perf-$proxy_pid.map" ] && cp "/tmp/perf-$proxy_pid.map" "$dir/$peer.perf-map"
  kill "$proxy_pid"
  wait "$proxy_pid" 2>/dev/null || true
  rm -f "/tmp/perf-$proxy_pid.map"
done
/usr/bin/python3 "$here/bench/http-proxy/counts-batch.py" table "$dir/points.jsonl"
