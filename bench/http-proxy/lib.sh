# What bench/http-proxy's scripts share (sourced, not run; sizes-probe.sh and gc-pauses.sh so far,
# the older ones when next touched):
#   free_port               a port for a server: bench/lib/free-port.sh (above the ephemeral range,
#                           bounded tries)
#   run_dir NAME            makes and prints a new directory under $TMPDIR (or /tmp), readable by
#                           nginx's workers
#   wait_http PORT PATH [TRIES]   waits (0.1 s a try, 300 tries unless set) until PATH answers on
#                           127.0.0.1:PORT; exits 1 saying which port never did
#   pids, cleanup           the processes a script started (pids+=($!)); `trap cleanup EXIT` ends
#                           them, each by its own id
#   static_backend DIR SIZES [CPU]   the results pages' upstream: one nginx worker (pinned to CPU
#                           when given) serving a file of each size from DIR/www; sets $upstream
#                           (its port) and $static_pid, adds it to pids, waits until it answers
#   loch_bench_config FILE PORT UPSTREAM ACCESS_LOG   writes the bench's loch config as shipped:
#                           an [admin] metrics listener, 1 worker (cpu_affinity off), warn level,
#                           one HTTP server on 127.0.0.1:PORT logging to the file ACCESS_LOG,
#                           keep-alive 300 s, one route to http://127.0.0.1:UPSTREAM

# free_port: bench/lib/free-port.sh.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/free-port.sh"

run_dir() { # NAME
  local d
  d=$(mktemp -d "${TMPDIR:-/tmp}/$1-XXXXXX")
  chmod 755 "$d"
  echo "$d"
}

wait_http() { # PORT PATH [TRIES]
  for _ in $(seq 1 "${3:-300}"); do
    if curl -sf -m 5 -o /dev/null "http://127.0.0.1:$1$2"; then return 0; fi
    sleep 0.1
  done
  echo "port $1 never answered $2" >&2
  exit 1
}

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}

static_backend() { # DIR SIZES [CPU]
  local d=$1 cpu=${3:-} s
  local -a sizes
  IFS=, read -ra sizes <<<"$2"
  mkdir -p "$d/www" "$d/static/logs"
  for s in "${sizes[@]}"; do head -c "$s" /dev/zero | tr '\0' 'x' >"$d/www/$s"; done
  chmod -R 755 "$d/www"
  upstream=$(free_port)
  cat >"$d/static/nginx.conf" <<EOF
worker_processes 1;
user root;
pid $d/static/nginx.pid;
error_log $d/static/error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 16384; multi_accept on; }
http {
  access_log off;
  client_body_temp_path $d/static/client_body;
  proxy_temp_path $d/static/proxy;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  tcp_nodelay on;
  sendfile on;
  tcp_nopush on;
  open_file_cache max=64 inactive=600s;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:$upstream backlog=4096;
    root $d/www;
    location / { }
  }
}
EOF
  if [ -n "$cpu" ]; then
    taskset -c "$cpu" nginx -p "$d/static" -c "$d/static/nginx.conf" -g 'daemon off;' >"$d/static.out" 2>&1 &
  else
    nginx -p "$d/static" -c "$d/static/nginx.conf" -g 'daemon off;' >"$d/static.out" 2>&1 &
  fi
  static_pid=$!
  pids+=("$static_pid")
  wait_http "$upstream" "/${sizes[0]}"
}

loch_bench_config() { # FILE PORT UPSTREAM ACCESS_LOG
  local admin
  # free_port may give PORT again (it cannot remember what it gave: lib/free-port.sh).
  admin=$(free_port)
  while [ "$admin" = "$2" ] || [ "$admin" = "$3" ]; do admin=$(free_port); done
  cat >"$1" <<EOF
[admin]
listener = { type = "socket", value = "127.0.0.1:$admin" }

[runtime]
workers = 1
cpu_affinity = false

[log]
level = "warn"

[servers.bench]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:$2" }
access_log = { path = "$4" }
timeouts = { server_keepalive = "300s" }

[[servers.bench.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:$3" }]
EOF
}
