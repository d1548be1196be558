#!/usr/bin/env bash
# From 1 to 2 workers, counted (issue 18, "worker scaling"): what one proxied HTTP/1.1 request
# costs loch and nginx in events rather than time, with 1 and 2 workers, in bench/http-proxy's
# layout: wrk -t1 -cCONNS on CPU 0 -> proxy (1 worker: CPU 1; 2 workers: CPUs 0-1, sharing CPU 0
# with wrk and the backend) -> one nginx worker serving static files on CPU 0 (the same nginx
# configs as bench/lib/nginx.ts; loch's config is bench/http-proxy/peers.ts's).
#
# Per (round, size, workers, peer), on a fresh proxy: a WARM s wrk warm-up, then two measured wrk
# runs of SECONDS each:
#   1. nothing attached: CPU us per request (utime+stime of every thread of the proxy, /proc) and
#      requests/s (time, so load-dependent: the machine is shared);
#   2. under `perf stat --per-thread -p <proxy pids>` (software events and tracepoints only: this
#      VM has no hardware counters, `instructions:u` is not supported): syscalls, epoll_wait /
#      epoll_pwait, io_uring_enter, io_uring submissions and completions, futex, context
#      switches and CPU migrations per request; voluntary / involuntary switches per request from
#      /proc/<pid>/task/<tid>/status; and for loch, from each worker thread (counts-preload.cjs):
#      completion callbacks into JS (batches), ring submit calls, GCs by kind and their ms.
# "wakeups" are epoll waits of the threads that serve (nginx workers; loch's worker threads: a
# libuv loop turn each), so requests per wakeup = requests / those waits; requests per batch =
# requests / loch's completion callbacks.
#
# Peers: nginx, loch (bench/http-proxy/peers.ts's config), loch-tick (the same with
# LOCH_URING_FLUSH=tick: the ring flushes in process.nextTick instead of setImmediate), loch-pin
# (cpu_affinity = true: worker i pinned to CPU i).
#
# AS_SHIPPED=1: the proxies log as issue 18 measures them (bench/http-proxy/peers.ts): nginx
# `access_log <file>;` (combined, unbuffered), loch `access_log = { path }` and metrics (an
# [admin] listener). The static backend logs nothing either way. Default: both off, as before.
#
# CPUS_1W / CPUS_2W (taskset lists, default 1 and 0-1) move the proxy: CPUS_2W=1 puts both
# workers on CPU 1, away from wrk and the backend (do 2 workers lose to each other's cold
# caches, or to sharing CPU 0? compare its CPU per request with the default's, on a quiet machine).
#
# Usage: bench/http-proxy/counts-scaling.sh [sizes=0,128] [workers=1,2] [peers=nginx,loch]
#          [seconds=5] [warm=2] [rounds=1] [conns=64]
# Output: one JSON line per point on stdout (and in <dir>/points.jsonl), then a table of medians
# per (size, peer, workers) with [min, max] over rounds. Loch runs from the sources under tsx
# (no build needed); its main thread is idle under load. Needs nginx, wrk, perf, taskset; root.
set -euo pipefail
sizes=${1:-0,128}
workers_list=${2:-1,2}
peers=${3:-nginx,loch}
seconds=${4:-5}
warm=${5:-2}
rounds=${6:-1}
conns=${7:-64}
here=$(cd "$(dirname "$0")/../.." && pwd)
base=${TMPDIR:-/tmp}
dir=$(mktemp -d "$base/counts-scaling-XXXXXX")
chmod 755 "$dir"
echo "run dir: $dir" >&2
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # port path
  for _ in $(seq 1 300); do
    if curl -sf -o /dev/null "http://127.0.0.1:$1$2"; then return 0; fi
    sleep 0.1
  done
  echo "port $1 never answered $2" >&2
  return 1
}
# Waits (up to 30 s) until every loch thread that wrote a line has written the mark $2 (its
# preload reads the mark file every 50 ms); nginx writes none.
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

# The static backend: bench/lib/nginx.ts's startNginxStatic, one worker on CPU 0.
mkdir -p "$dir/www" "$dir/static/logs"
IFS=, read -ra size_arr <<<"$sizes"
for s in "${size_arr[@]}"; do head -c "$s" /dev/zero | tr '\0' 'x' >"$dir/www/$s"; done
chmod -R 755 "$dir/www"
upstream=$(free_port)
nginx_prelude() { # prefix workers
  cat <<EOF
worker_processes $2;
user root;
pid $1/nginx.pid;
error_log $1/error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 16384; multi_accept on; }
EOF
}
http_common() { # prefix [access log file]
  cat <<EOF
  access_log ${2:-off};
  client_body_temp_path $1/client_body;
  proxy_temp_path $1/proxy;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  tcp_nodelay on;
EOF
}
{
  nginx_prelude "$dir/static" 1
  echo "http {"
  http_common "$dir/static"
  cat <<EOF
  sendfile on;
  tcp_nopush on;
  open_file_cache max=64 inactive=600s;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:$upstream backlog=4096;
    root $dir/www;
    location / { }
  }
}
EOF
} >"$dir/static/nginx.conf"
taskset -c 0 nginx -p "$dir/static" -c "$dir/static/nginx.conf" -g 'daemon off;' >"$dir/static.out" 2>&1 &
pids+=($!)
wait_http "$upstream" "/${size_arr[0]}"

native_node="$here/native/build/Release/loch_native.node"
proxy_pid=
start_proxy() { # peer workers port -> sets proxy_pid
  local peer=$1 n=$2 port=$3 cpu=${CPUS_1W:-1}
  [ "$n" -gt 1 ] && cpu=${CPUS_2W:-0-1}
  local p="$dir/$peer-$n-$port"
  mkdir -p "$p/logs" "$p/counts"
  if [ "$peer" = nginx ]; then
    local reuse=''
    [ "$n" -gt 1 ] && reuse=' reuseport'
    {
      nginx_prelude "$p" "$n"
      echo "http {"
      if [ "${AS_SHIPPED:-0}" = 1 ]; then http_common "$p" "$p/logs/access.log"; else http_common "$p"; fi
      cat <<EOF
  upstream backend {
    server 127.0.0.1:$upstream;
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$port backlog=4096$reuse;
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
    taskset -c "$cpu" nginx -p "$p" -c "$p/nginx.conf" -g 'daemon off;' >"$p/out" 2>&1 &
    proxy_pid=$!
  else
    local pin=false
    [ "$peer" = loch-pin ] && pin=true
    local admin='' access_log=false
    if [ "${AS_SHIPPED:-0}" = 1 ]; then
      admin="[admin]
listener = { type = \"socket\", value = \"127.0.0.1:$(free_port)\" }
"
      access_log="{ path = \"$p/logs/access.log\" }"
    fi
    cat >"$p/loch.toml" <<EOF
$admin
[runtime]
workers = $n
cpu_affinity = $pin

[log]
level = "warn"

[servers.bench]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:$port" }
access_log = $access_log
timeouts = { server_keepalive = "300s" }

[[servers.bench.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:$upstream" }]
EOF
    local flush=immediate
    [ "$peer" = loch-tick ] && flush=tick
    (cd "$here/apps/proxy" && LOCH_URING_FLUSH=$flush LOCH_COUNTS_DIR="$p/counts" LOCH_COUNTS_NATIVE="$native_node" \
      exec taskset -c "$cpu" node --require "$here/bench/http-proxy/counts-preload.cjs" \
      --conditions=@loch/source --import tsx src/bin.ts run -c "$p/loch.toml") >"$p/out" 2>&1 &
    proxy_pid=$!
  fi
  pids+=("$proxy_pid")
  wait_http "$port" "/${size_arr[0]}"
}

# Every thread of the proxy's process tree: "pid tid" lines.
threads() { # pid
  local all=("$1")
  for c in $(pgrep -P "$1" || true); do all+=("$c"); done
  for p in "${all[@]}"; do
    for t in /proc/"$p"/task/*; do echo "$p ${t##*/}"; done
  done
}
# "tid utime stime voluntary nonvoluntary comm" for every thread of the tree.
snapshot() { # pid out
  threads "$1" | while read -r p t; do
    local stat st
    stat=$(cat "/proc/$p/task/$t/stat" 2>/dev/null) || continue
    st=$(grep -E '^(voluntary|nonvoluntary)_ctxt_switches' "/proc/$p/task/$t/status" 2>/dev/null | awk '{print $2}' | tr '\n' ' ')
    # fields after the ")" of comm: 14 utime, 15 stime (1-based over the whole line)
    local rest=${stat##*) }
    local comm=${stat#*(}
    comm=${comm%%)*}
    set -- $rest
    echo "$t ${12} ${13} $st${comm// /_}"
  done >"$2"
}
wrk_requests() { # file
  awk '/requests in/ {print $1}' "$1"
}
EVENTS=task-clock,context-switches,cpu-migrations,page-faults,raw_syscalls:sys_enter,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_epoll_pwait2,syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_futex,io_uring:io_uring_submit_req,io_uring:io_uring_complete,io_uring:io_uring_poll_arm,io_uring:io_uring_task_add

: >"$dir/points.jsonl"
IFS=, read -ra workers_arr <<<"$workers_list"
IFS=, read -ra peer_arr <<<"$peers"
for round in $(seq 1 "$rounds"); do
  for n in "${workers_arr[@]}"; do
    # Alternate the order of the peers round by round.
    order=("${peer_arr[@]}")
    if [ $((round % 2)) -eq 0 ]; then
      order=()
      for ((i = ${#peer_arr[@]} - 1; i >= 0; i--)); do order+=("${peer_arr[$i]}"); done
    fi
    for peer in "${order[@]}"; do
      port=$(free_port)
      start_proxy "$peer" "$n" "$port"
      pt="$dir/$peer-$n-$port"
      for s in "${size_arr[@]}"; do
        url="http://127.0.0.1:$port/$s"
        taskset -c 0 wrk -t1 -c"$conns" -d"${warm}s" "$url" >/dev/null
        # 1. nothing attached: CPU per request.
        snapshot "$proxy_pid" "$pt/cpu-a-$s"
        taskset -c 0 wrk -t1 -c"$conns" -d"${seconds}s" "$url" >"$pt/wrk-a-$s"
        snapshot "$proxy_pid" "$pt/cpu-b-$s"
        # 2. counted.
        plist=$(threads "$proxy_pid" | awk '{print $1}' | sort -u | paste -sd,)
        perf stat --per-thread -x, -e "$EVENTS" -p "$plist" -o "$pt/perf-$s" &
        perf_pid=$!
        sleep 0.5
        echo "start-$s" >"$pt/counts/mark"
        snapshot "$proxy_pid" "$pt/st-a-$s"
        taskset -c 0 wrk -t1 -c"$conns" -d"${seconds}s" "$url" >"$pt/wrk-b-$s"
        snapshot "$proxy_pid" "$pt/st-b-$s"
        echo "end-$s" >"$pt/counts/mark"
        wait_marks "$pt/counts" "end-$s"
        kill -INT "$perf_pid"
        wait "$perf_pid" || true
        sleep 0.2
        /usr/bin/python3 "$here/bench/http-proxy/counts-scaling.py" point "$pt" "$peer" "$n" "$s" "$round" \
          | tee -a "$dir/points.jsonl"
      done
      kill "$proxy_pid"
      wait "$proxy_pid" 2>/dev/null || true
    done
  done
done
/usr/bin/python3 "$here/bench/http-proxy/counts-scaling.py" table "$dir/points.jsonl"
