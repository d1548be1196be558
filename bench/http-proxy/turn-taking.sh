#!/usr/bin/env bash
# Who had the core before each proxy worker's turn (issue 18, the 1 -> 2 worker step), in
# counts-scaling.sh's layout: wrk -t1 -cCONNS on CPU 0 -> proxy (1 worker on CPUS_1W, default 1;
# 2 workers on CPUS_2W, default 0-1) -> one nginx worker serving static files on CPU 0; the
# proxies as shipped (nginx's access log; loch's access log and metrics).
# Per (round, workers, peer), a fresh proxy, a WARM s wrk warm-up, then two SECONDS wrk runs:
#   1. nothing attached: CPU us per request (every thread of the proxy, /proc) and of its worker
#      threads (the N busiest threads: loch's isolates; nginx's worker processes);
#   2. under `perf record -e sched:sched_switch -a`: per request, the workers' switch-ins and
#      "foreign turns" (a worker starts on a core where another task ran since its own last turn
#      there, or on another core), by who ran before (turn-taking.py).
# With cache-share.sh's cost of a foreign turn, (foreign turns at 2 workers - at 1) x that cost is
# what the step would be if refilling the caches is it.
# Peers: nginx, loch, loch+young=3m (runtime.worker_young_generation_bytes), loch+buf=2m
# (worker_buffer_bytes), any peer +spin: a SCHED_IDLE spinner on each CPU during its point, and
# +pin: worker i on CPU i (loch cpu_affinity = true; nginx worker_cpu_affinity 01 10).
# Usage: bench/http-proxy/turn-taking.sh [workers=1,2] [peers=nginx,loch] [seconds=5] [warm=5]
#          [rounds=1] [size=128] [conns=64]
# Env: TREE (a built clone; default this tree), CPUS_1W, CPUS_2W, TURNS (0: skip run 2), WINDOWS
# (K more windows after run 1, CPU us per request each: "windows" in the point; for loch at 2
# workers "stacked": the share of 10 ms samples with both workers runnable on one CPU, "on_cpu0":
# with a worker last on CPU 0, beside wrk and the backend), LOCH_NODE_ARGS
# (node flags for loch, e.g. --trace-gc or --trace-deopt: its lines land in the point's out file;
# "log_lines" per window counts them). Needs nginx, wrk, perf, taskset.
set -euo pipefail
workers_list=${1:-1,2}
peers=${2:-nginx,loch}
seconds=${3:-5}
warm=${4:-5}
rounds=${5:-1}
size=${6:-128}
conns=${7:-64}
here=$(cd "$(dirname "$0")" && pwd)
tree=${TREE:-$(cd "$here/../.." && pwd)}
. "$here/lib.sh"
trap cleanup EXIT
dir=$(run_dir turn-taking)
echo "run dir: $dir (tree $tree)" >&2
static_backend "$dir" "$size" 0
gcc -O2 -o "$dir/sweeper" "$here/cache-sweeper.c"

proxy_pid=
start_proxy() { # peer workers port
  local p="$dir/$1-$2-$3" cpu=${CPUS_1W:-1}
  [ "$2" -gt 1 ] && cpu=${CPUS_2W:-0-1}
  mkdir -p "$p/logs"
  if [ "${1%%+*}" = nginx ]; then
    local reuse=''
    [ "$2" -gt 1 ] && reuse=' reuseport'
    local affinity=''
    # nginx+pin: worker i on CPU i (worker_cpu_affinity), as loch+pin's cpu_affinity = true.
    [[ $1 == *+pin* ]] && [ "$2" -gt 1 ] && affinity='worker_cpu_affinity 01 10;'
    cat >"$p/nginx.conf" <<NG
worker_processes $2;
$affinity
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
    listen 127.0.0.1:$3 backlog=4096$reuse;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_max_temp_file_size 0;
    }
  }
}
NG
    taskset -c "$cpu" nginx -p "$p" -c "$p/nginx.conf" -g 'daemon off;' >"$p/out" 2>&1 &
  else
    loch_bench_config "$p/loch.toml" "$3" "$upstream" "$p/logs/access.log"
    sed -i "s/^workers = 1$/workers = $2/" "$p/loch.toml"
    # Variants: loch+young=3m sets runtime.worker_young_generation_bytes, loch+buf=2m
    # runtime.worker_buffer_bytes (and stream_buffer_bytes, which may not exceed it).
    local v extra=''
    IFS=+ read -ra v <<<"$1"
    for kv in "${v[@]:1}"; do
      case $kv in
        spin) ;;
        pin) sed -i "s/^cpu_affinity = false$/cpu_affinity = true/" "$p/loch.toml" ;;
        young=*) extra+="worker_young_generation_bytes = \"${kv#young=}\"\n" ;;
        buf=*) extra+="worker_buffer_bytes = \"${kv#buf=}\"\nstream_buffer_bytes = \"${kv#buf=}\"\n" ;;
        *) echo "unknown variant $kv" >&2; exit 1 ;;
      esac
    done
    [ -n "$extra" ] && sed -i "s/^\(cpu_affinity = [a-z]*\)$/\1\n${extra%\\n}/" "$p/loch.toml"
    # shellcheck disable=SC2086
    (cd "$tree/apps/proxy" && exec taskset -c "$cpu" node ${LOCH_NODE_ARGS:-} dist/bin.js run -c "$p/loch.toml") >"$p/out" 2>&1 &
  fi
  proxy_pid=$!
  pids+=("$proxy_pid")
  wait_http "$3" "/$size"
}

# "tid utime stime" for every thread of the proxy's tree.
thread_times() { # pid
  local all=("$1") c t
  for c in $(pgrep -P "$1" || true); do all+=("$c"); done
  for c in "${all[@]}"; do
    for t in /proc/"$c"/task/*; do
      local stat rest
      stat=$(cat "$t/stat" 2>/dev/null) || continue
      rest=${stat##*) }
      # shellcheck disable=SC2086
      set -- $rest
      echo "${t##*/} ${12} ${13}"
    done
  done
}

IFS=, read -ra workers_arr <<<"$workers_list"
IFS=, read -ra peer_arr <<<"$peers"
hz=$(getconf CLK_TCK)
backend_pids=$(
  echo "$static_pid"
  pgrep -P "$static_pid" || true
)
: >"$dir/points.jsonl"
for round in $(seq 1 "$rounds"); do
  for n in "${workers_arr[@]}"; do
    order=("${peer_arr[@]}")
    if [ $((round % 2)) -eq 0 ]; then
      order=()
      for ((i = ${#peer_arr[@]} - 1; i >= 0; i--)); do order+=("${peer_arr[$i]}"); done
    fi
    for peer in "${order[@]}"; do
      port=$(free_port)
      start_proxy "$peer" "$n" "$port"
      # +spin (any peer): a SCHED_IDLE spinner on each CPU for this point, so no vCPU halts
      # (cache-sweeper.c with no buffer and no sleep; it runs only when nothing else would).
      spinners=()
      if [[ $peer == *+spin* ]]; then
        for c in 0 1; do
          chrt -i 0 taskset -c "$c" "$dir/sweeper" 0 0 >/dev/null &
          spinners+=($!)
          pids+=($!) # the EXIT trap's cleanup ends them if the point fails (REVIEW F237)
        done
      fi
      url="http://127.0.0.1:$port/$size"
      pt="$dir/$peer-$n-$port"
      taskset -c 0 wrk -t1 -c"$conns" -d"${warm}s" "$url" >/dev/null
      thread_times "$proxy_pid" >"$pt/t0"
      taskset -c 0 wrk -t1 -c"$conns" -d"${seconds}s" "$url" >"$pt/wrk-a"
      thread_times "$proxy_pid" >"$pt/t1"
      # The N busiest threads of the measured window are the workers.
      ta_line=$(/usr/bin/python3 -c '
import sys
n, hz, req, f0, f1 = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
t0 = {l.split()[0]: l.split()[1:] for l in open(f0)}
d = {}
for l in open(f1):
    t, u, s = l.split()
    a = t0.get(t, ["0", "0"])
    d[t] = int(u) + int(s) - int(a[0]) - int(a[1])
top = sorted(d, key=d.get, reverse=True)[:n]
k = 1e6 / hz / req
print(",".join(top), round(sum(d.values()) * k, 3), round(sum(d[t] for t in top) * k, 3))
' "$n" "$hz" "$(awk '/requests in/ {print $1}' "$pt/wrk-a")" "$pt/t0" "$pt/t1")
      read -r wtids cpu_req worker_req <<<"$ta_line"
      rps_a=$(awk '/Requests\/sec/ {print int($2)}' "$pt/wrk-a")
      # WINDOWS=K: K more SECONDS windows on the same instance, CPU us per request each (how the
      # cost settles with time since start).
      windows=''
      sampler=
      if [ "${WINDOWS:-0}" -gt 0 ] && [ "$n" -gt 1 ]; then
        # Where the workers are, every 10 ms (placement-sampler.py), for "stacked" per window.
        /usr/bin/python3 "$here/placement-sampler.py" "$proxy_pid" "$wtids" >"$pt/placement" &
        sampler=$!
        pids+=("$sampler")
      fi
      for ((w = 0; w < ${WINDOWS:-0}; w++)); do
        ws=$(date +%s.%N)
        log0=$(wc -l <"$pt/out")
        thread_times "$proxy_pid" >"$pt/w0"
        taskset -c 0 wrk -t1 -c"$conns" -d"${seconds}s" "$url" >"$pt/wrk-w"
        thread_times "$proxy_pid" >"$pt/w1"
        windows+="${windows:+, }$(/usr/bin/python3 -c '
import sys
hz, req, f0, f1 = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
t0 = {l.split()[0]: l.split()[1:] for l in open(f0)}
d = sum(int(u) + int(s) - int(t0.get(t, ["0", "0"])[0]) - int(t0.get(t, ["0", "0"])[1]) for t, u, s in (l.split() for l in open(f1)))
k = 1e6 / hz / req
per = {t: int(u) + int(s) - int(t0.get(t, ["0", "0"])[0]) - int(t0.get(t, ["0", "0"])[1]) for t, u, s in (l.split() for l in open(f1))}
ws = sys.argv[5].split(",")
cpus = []
for t in ws:
    try:
        cpus.append(int(open(f"/proc/{t}/stat").read().rsplit(")", 1)[1].split()[36]))
    except Exception:
        cpus.append(-1)
both = same = on0 = 0
try:
    for line in open(sys.argv[9]):
        f = line.split()
        if len(f) < 3 or not (float(sys.argv[8]) <= float(f[0]) <= float(sys.argv[10])):
            continue
        st = [x.split(":") for x in f[1:]]
        both += 1
        same += st[0][1] == st[1][1] and st[0][0] == "R" and st[1][0] == "R"
        on0 += any(x[1] == "0" for x in st)
except OSError:
    pass
print(__import__("json").dumps({"log_lines": int(sys.argv[12]) - int(sys.argv[11]), "stacked": round(same / both, 3) if both else None,
  "on_cpu0": round(on0 / both, 3) if both else None, "cpu_us": round(d * k, 3), "workers": [round(per.get(t, 0) * k, 3) for t in ws],
  "others": round((d - sum(per.get(t, 0) for t in ws)) * k, 3), "last_cpu": cpus, "rps": round(req / float(sys.argv[7]))}))
' "$hz" "$(awk '/requests in/ {print $1}' "$pt/wrk-w")" "$pt/w0" "$pt/w1" "$wtids" "$proxy_pid" "$seconds" "$ws" "$pt/placement" "$(date +%s.%N)" "$log0" "$(wc -l <"$pt/out")")"
      done
      if [ -n "$sampler" ]; then kill "$sampler"; wait "$sampler" 2>/dev/null || true; fi
      counts=null
      if [ "${TURNS:-1}" = 1 ]; then
        perf record -q -e sched:sched_switch -a -m 4M -o "$pt/sched.data" >/dev/null 2>&1 &
        perf_pid=$!
        # Per worker: its CPU and its io_uring submissions (~2 a proxied request: the upstream
        # send and the client's response) over this run, for CPU per request per worker.
        perf stat --per-thread -x, -e io_uring:io_uring_submit_req -p "$proxy_pid" -o "$pt/sqes" &
        stat_pid=$!
        thread_times "$proxy_pid" >"$pt/t2"
        sleep 0.5
        taskset -c 0 wrk -t1 -c"$conns" -d"${seconds}s" "$url" >"$pt/wrk-b" &
        wrk_pid=$!
        sleep 0.3
        wrk_tids=$(ls /proc/"$wrk_pid"/task | paste -sd,)
        wait "$wrk_pid"
        thread_times "$proxy_pid" >"$pt/t3"
        kill -INT "$stat_pid"
        wait "$stat_pid" || true
        kill -INT "$perf_pid"
        wait "$perf_pid" || true
        perf script -i "$pt/sched.data" -F cpu,trace >"$pt/sched.txt" 2>/dev/null
        ptids=$(awk '{print $1}' "$pt/t1" | paste -sd,)
        reqs_b=$(awk '/requests in/ {print $1}' "$pt/wrk-b")
        per_worker=$(/usr/bin/python3 -c '
import sys
hz, wt, f2, f3, fs = int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3], sys.argv[4], sys.argv[5]
t2 = {l.split()[0]: l.split()[1:] for l in open(f2)}
t3 = {l.split()[0]: l.split()[1:] for l in open(f3)}
sq = {}
for l in open(fs):
    f = l.strip().split(",")
    if len(f) > 2 and f[1].replace(".", "").isdigit():
        sq[f[0].rsplit("-", 1)[-1]] = float(f[1])
out = []
for t in wt:
    if t in t2 and t in t3 and sq.get(t):
        cpu = sum(int(b) - int(a) for a, b in zip(t2[t], t3[t])) * 1e6 / hz
        out.append({"tid": int(t), "requests": round(sq[t] / 2), "cpu_us": round(cpu / (sq[t] / 2), 3)})
print(__import__("json").dumps(out))
' "$hz" "$wtids" "$pt/t2" "$pt/t3" "$pt/sqes")
        counts=$(/usr/bin/python3 "$here/turn-taking.py" "$pt/sched.txt" "$reqs_b" "$wtids" "$ptids" "$wrk_tids" "$(echo $backend_pids | tr ' ' ,)")
        counts="${counts%\}}, \"per_worker\": $per_worker}"
        rm -f "$pt/sched.data"
      fi
      echo "{\"round\": $round, \"peer\": \"$peer\", \"workers\": $n, \"rps\": $rps_a, \"cpu_us\": $cpu_req, \"worker_cpu_us\": $worker_req, \"turns\": $counts, \"windows\": [$windows]}" |
        tee -a "$dir/points.jsonl"
      for sp in "${spinners[@]}"; do kill "$sp"; wait "$sp" 2>/dev/null || true; done
      kill "$proxy_pid"
      wait "$proxy_pid" 2>/dev/null || true
    done
  done
done
