#!/usr/bin/env bash
# What a foreign working set on the core costs each proxy (issue 18, the 1 -> 2 worker step).
# Layout of counts-scaling.sh at 1 worker: wrk -t1 -cCONNS on CPU 0 -> proxy, 1 worker, on CPU 1
# -> one nginx worker serving static files on CPU 0; the proxies as shipped (nginx's access log;
# loch's access log and metrics: lib.sh's loch_bench_config). Beside the proxy on CPU 1 runs
# cache-sweeper.c: every PERIOD_US it wakes and writes one byte a line over BYTES (0: wakes only).
# The proxy's CPU per request with the sweeper against without it, over the sweeps, is the CPU the
# proxy spends per foreign interval on its core: "us a sweep" (extra proxy CPU per second / sweeps
# per second). With BYTES = 0 that is a bare switch; with BYTES at the L2's size (1 MiB here) it
# is a switch plus refilling what the sweeper evicted. Two loch workers taking turns on a core
# evict each other the same way (per-request-2026-12-07f.md, section 2, point 4).
#
# Usage: bench/http-proxy/cache-share.sh [peers=nginx,loch] [sweeps=off,0,1048576] [period_us=1000]
#          [seconds=5] [warm=5] [rounds=2] [size=128] [conns=64]
# Env: TREE (a built clone; default this tree), LOCH_NODE_ARGS (extra node flags for loch).
# Per (round, peer): a fresh proxy, a WARM s wrk warm-up, then per sweep setting (order rotated
# round by round) a SECONDS wrk run with the sweeper started 0.3 s before. Output: one JSON line a
# point (and <dir>/points.jsonl), then the table (cache-share.py). Needs nginx, wrk, gcc, taskset.
set -euo pipefail
peers=${1:-nginx,loch}
sweeps=${2:-off,0,1048576}
period=${3:-1000}
seconds=${4:-5}
warm=${5:-5}
rounds=${6:-2}
size=${7:-128}
conns=${8:-64}
here=$(cd "$(dirname "$0")" && pwd)
tree=${TREE:-$(cd "$here/../.." && pwd)}
. "$here/lib.sh"
trap cleanup EXIT
dir=$(run_dir cache-share)
echo "run dir: $dir (tree $tree)" >&2
gcc -O2 -o "$dir/sweeper" "$here/cache-sweeper.c"
static_backend "$dir" "$size" 0

proxy_pid=
start_proxy() { # peer port
  local p="$dir/$1-$2"
  mkdir -p "$p/logs"
  if [ "$1" = nginx ]; then
    cat >"$p/nginx.conf" <<NG
worker_processes 1;
user root;
pid $p/nginx.pid;
error_log $p/error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 16384; multi_accept on; }
http {
  access_log $p/logs/access.log;
  client_body_temp_path $p/client_body;
  proxy_temp_path $p/proxy;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  tcp_nodelay on;
  upstream backend { server 127.0.0.1:$upstream; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$2 backlog=4096;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_max_temp_file_size 0;
    }
  }
}
NG
    taskset -c 1 nginx -p "$p" -c "$p/nginx.conf" -g 'daemon off;' >"$p/out" 2>&1 &
  else
    loch_bench_config "$p/loch.toml" "$2" "$upstream" "$p/logs/access.log"
    # shellcheck disable=SC2086
    (cd "$tree/apps/proxy" && exec taskset -c 1 node ${LOCH_NODE_ARGS:-} dist/bin.js run -c "$p/loch.toml") >"$p/out" 2>&1 &
  fi
  proxy_pid=$!
  pids+=("$proxy_pid")
  wait_http "$2" "/$size"
}

# "utime stime switches" summed over every thread of the proxy's tree (ticks; switches from status).
usage() { # pid
  local all=("$1") c t
  for c in $(pgrep -P "$1" || true); do all+=("$c"); done
  for c in "${all[@]}"; do
    for t in /proc/"$c"/task/*; do
      local stat rest
      stat=$(cat "$t/stat" 2>/dev/null) || continue
      rest=${stat##*) }
      # shellcheck disable=SC2086
      set -- $rest
      echo "${12} ${13} $(awk '/ctxt_switches/ {s += $2} END {print s}' "$t/status" 2>/dev/null || echo 0)"
    done
  done | awk '{u += $1; s += $2; w += $3} END {print u, s, w}'
}

IFS=, read -ra peer_arr <<<"$peers"
IFS=, read -ra sweep_arr <<<"$sweeps"
hz=$(getconf CLK_TCK)
: >"$dir/points.jsonl"
for round in $(seq 1 "$rounds"); do
  order=("${peer_arr[@]}")
  if [ $((round % 2)) -eq 0 ]; then
    order=()
    for ((i = ${#peer_arr[@]} - 1; i >= 0; i--)); do order+=("${peer_arr[$i]}"); done
  fi
  n=${#sweep_arr[@]}
  for peer in "${order[@]}"; do
    port=$(free_port)
    start_proxy "$peer" "$port"
    url="http://127.0.0.1:$port/$size"
    taskset -c 0 wrk -t1 -c"$conns" -d"${warm}s" "$url" >/dev/null
    for ((k = 0; k < n; k++)); do
      sw=${sweep_arr[$(((k + round - 1) % n))]}
      swpid=
      if [ "$sw" != off ]; then
        taskset -c 1 "$dir/sweeper" "$sw" "$period" >"$dir/sweep.out" &
        swpid=$!
        sleep 0.3
      fi
      a=$(usage "$proxy_pid")
      taskset -c 0 wrk -t1 -c"$conns" -d"${seconds}s" "$url" >"$dir/wrk.out"
      b=$(usage "$proxy_pid")
      swline="sweeps 0 cpu_us 0"
      if [ -n "$swpid" ]; then
        kill -TERM "$swpid"
        wait "$swpid" || true
        swline=$(cat "$dir/sweep.out")
      fi
      reqs=$(awk '/requests in/ {print $1}' "$dir/wrk.out")
      secs=$(awk '/requests in/ {sub(/s,/, "", $4); print $4}' "$dir/wrk.out")
      read -r u0 s0 w0 <<<"$a"
      read -r u1 s1 w1 <<<"$b"
      read -r _ nsw _ swcpu <<<"$swline"
      /usr/bin/python3 -c '
import json, sys
r, peer, sw, reqs, secs, du, ds, dw, nsw, swcpu, hz = sys.argv[1:]
reqs = int(reqs); hz = int(hz); secs = float(secs)
tick = 1e6 / hz
print(json.dumps({"round": int(r), "peer": peer, "sweep": sw, "requests": reqs, "rps": round(reqs / secs),
  "cpu_us": round((int(du) + int(ds)) * tick / reqs, 3), "user_us": round(int(du) * tick / reqs, 3),
  "sys_us": round(int(ds) * tick / reqs, 3), "switches": round(int(dw) / reqs, 4),
  "sweeps_per_s": round(int(nsw) / (secs + 0.3), 1), "sweeper_cpu_us_per_sweep": round(float(swcpu) / max(int(nsw), 1), 1)}))
' "$round" "$peer" "$sw" "$reqs" "$secs" $((u1 - u0)) $((s1 - s0)) $((w1 - w0)) "$nsw" "$swcpu" "$hz" |
        tee -a "$dir/points.jsonl"
    done
    kill "$proxy_pid"
    wait "$proxy_pid" 2>/dev/null || true
  done
done
/usr/bin/python3 "$here/cache-share.py" "$dir/points.jsonl"
