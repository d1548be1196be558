#!/usr/bin/env bash
# Loch's long event-loop turns, counted (issue 18: p99 latency and requests/s below nginx's at
# small bodies): bench/http-proxy's 1-worker layout (wrk -t1 -cCONNS on CPU 0 -> proxy on CPU 1
# -> one nginx worker serving static files on CPU 0), loch as shipped (metrics recorded: an
# [admin] listener; the access log to a file) unless a variant says otherwise, each worker thread
# counting its turns with turns-preload.cjs (turn lengths, what ran in the long ones, GC pauses,
# scavenges per second). nginx as a proxy in the same run for its latency.
#
# Per (round, size, variant): a fresh proxy, a WARM s wrk warm-up, then one SECONDS s wrk run
# with --latency (the mark file brackets it, so the worker's counts are that run's).
#
# Variants (comma list): nginx; loch (metrics + access log to a file, as shipped); loch-bare
# (neither); loch-nolog (metrics only); loch-nometrics (access log only); loch-noturns (as
# shipped, no preload: the preload's own cost on latency). LOCH_NODE_ARGS: extra node flags
# (e.g. "--trace-gc" lands in <dir>/<variant>.../out).
#
# Usage: bench/http-proxy/turns.sh [sizes=0,128,4096] [variants=nginx,loch,loch-bare]
#          [seconds=10] [warm=3] [rounds=1] [conns=64]
# Output: per point, wrk's req/s and latency percentiles and the worker's turn counts (one JSON
# line per thread in <dir>/<point>/turns/turns-<tid>.txt); summary lines on stdout. Loch runs
# from the sources under tsx. Needs nginx, wrk, taskset; root.
set -euo pipefail
sizes=${1:-0,128,4096}
variants=${2:-nginx,loch,loch-bare}
seconds=${3:-10}
warm=${4:-3}
rounds=${5:-1}
conns=${6:-64}
here=$(cd "$(dirname "$0")/../.." && pwd)
base=${TMPDIR:-/tmp}
dir=$(mktemp -d "$base/turns-XXXXXX")
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
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

mkdir -p "$dir/www" "$dir/static/logs"
IFS=, read -ra size_arr <<<"$sizes"
for s in "${size_arr[@]}"; do head -c "$s" /dev/zero | tr '\0' 'x' >"$dir/www/$s"; done
chmod -R 755 "$dir/www"
upstream=$(free_port)
nginx_prelude() { # prefix
  cat <<EOF
worker_processes 1;
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
  nginx_prelude "$dir/static"
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
start_proxy() { # variant port dir -> sets proxy_pid
  local v=$1 port=$2 p=$3
  mkdir -p "$p/logs" "$p/turns"
  if [ "$v" = nginx ]; then
    {
      nginx_prelude "$p"
      echo "http {"
      http_common "$p"
      cat <<EOF
  upstream backend {
    server 127.0.0.1:$upstream;
    keepalive 64;
    keepalive_requests 1000000;
  }
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
    taskset -c 1 nginx -p "$p" -c "$p/nginx.conf" -g 'daemon off;' >"$p/out" 2>&1 &
    proxy_pid=$!
  else
    local admin='' log=false preload=(--require "$here/bench/http-proxy/turns-preload.cjs")
    case "$v" in
      loch | loch-noturns | loch-nometrics) log="{ path = \"$p/access.log\" }" ;;
    esac
    case "$v" in
      loch | loch-noturns | loch-nolog)
        admin="[admin]
listener = { type = \"socket\", value = \"127.0.0.1:$(free_port)\" }
"
        ;;
    esac
    [ "$v" = loch-noturns ] && preload=()
    cat >"$p/loch.toml" <<EOF
$admin
[runtime]
workers = 1
cpu_affinity = false

[log]
level = "warn"

[servers.bench]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:$port" }
access_log = $log
timeouts = { server_keepalive = "300s" }

[[servers.bench.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:$upstream" }]
EOF
    # shellcheck disable=SC2086
    (cd "$here/apps/proxy" && LOCH_TURNS_DIR="$p/turns" LOCH_COUNTS_NATIVE="$native_node" \
      exec taskset -c 1 node "${preload[@]}" ${LOCH_NODE_ARGS:-} \
      --conditions=@loch/source --import tsx src/bin.ts run -c "$p/loch.toml") >"$p/out" 2>&1 &
    proxy_pid=$!
  fi
  pids+=("$proxy_pid")
  wait_http "$port" "/${size_arr[0]}"
}
cpu_ticks() { # pid: utime+stime of the process and its children (nginx's workers), ticks
  local t=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$t"
}
# "tid comm utime+stime(ticks) nonvoluntary_switches voluntary_switches" for every thread of pid.
threads_snapshot() { # pid out
  for t in /proc/"$1"/task/*; do
    local stat rest comm
    stat=$(cat "$t/stat" 2>/dev/null) || continue
    comm=${stat#*(}
    comm=${comm%%)*}
    rest=${stat##*) }
    # shellcheck disable=SC2086
    set -- $rest
    echo "${t##*/} ${comm// /_} $((${12} + ${13})) $(awk '/^nonvoluntary_ctxt_switches/ {n=$2} /^voluntary_ctxt_switches/ {v=$2} END {print n, v}' "$t/status" 2>/dev/null)"
  done >"$2"
}
# Per thread: CPU ms and switches during the run (difference of two snapshots); threads that
# neither ran nor switched are left out.
threads_diff() { # before after hz
  awk -v hz="$3" 'NR == FNR { cpu[$1] = $3; inv[$1] = $4; vol[$1] = $5; next }
    { c = ($3 - cpu[$1]) * 1000 / hz; i = $4 - inv[$1]; v = $5 - vol[$1]
      if (c > 0 || i > 0 || v > 0) printf "    thread %s %s: %.0f ms CPU, %d involuntary / %d voluntary switches\n", $1, $2, c, i, v }' "$1" "$2"
}

IFS=, read -ra var_arr <<<"$variants"
hz=$(getconf CLK_TCK)
for round in $(seq 1 "$rounds"); do
  for s in "${size_arr[@]}"; do
    order=("${var_arr[@]}")
    if [ $((round % 2)) -eq 0 ]; then
      order=()
      for ((i = ${#var_arr[@]} - 1; i >= 0; i--)); do order+=("${var_arr[$i]}"); done
    fi
    for v in "${order[@]}"; do
      port=$(free_port)
      pt="$dir/r$round-$s-$v"
      mkdir -p "$pt"
      start_proxy "$v" "$port" "$pt"
      url="http://127.0.0.1:$port/$s"
      taskset -c 0 wrk -t1 -c"$conns" -d"${warm}s" "$url" >/dev/null
      echo "before" >"$pt/turns/mark"
      sleep 0.3
      c0=$(cpu_ticks "$proxy_pid")
      threads_snapshot "$proxy_pid" "$pt/threads-a"
      taskset -c 0 wrk -t1 -c"$conns" -d"${seconds}s" --latency "$url" >"$pt/wrk.txt"
      c1=$(cpu_ticks "$proxy_pid")
      threads_snapshot "$proxy_pid" "$pt/threads-b"
      echo "after" >"$pt/turns/mark"
      sleep 0.5
      kill "$proxy_pid" 2>/dev/null || true
      wait "$proxy_pid" 2>/dev/null || true
      req=$(awk '/requests in/ {print $1}' "$pt/wrk.txt")
      rps=$(awk '/Requests\/sec/ {print $2}' "$pt/wrk.txt")
      lat=$(awk '/^ +(50|90|99|99\.9)%/ {printf "%s=%s ", $1, $2}' "$pt/wrk.txt")
      maxl=$(awk '/^ +Latency/ {print $4}' "$pt/wrk.txt")
      us=$(awk -v a="$c0" -v b="$c1" -v r="$req" -v hz="$hz" 'BEGIN { printf "%.1f", (b - a) * 1e6 / hz / r }')
      echo "round $round $s B $v: $rps req/s, latency $lat max $maxl, $us CPU us/req"
      threads_diff "$pt/threads-a" "$pt/threads-b" "$hz"
      for f in "$pt"/turns/turns-*.txt; do
        [ -e "$f" ] || continue
        /usr/bin/python3 "$here/bench/http-proxy/turns.py" "$f" after
      done
    done
  done
done
