# Sourced by counts.sh and wakeups.sh: the peers both start the same way, so that their numbers
# compare (the Go thrift server on CPU 0, loch's and nginx stream's configs for it, the proxy on
# CPU 1). The caller sets `here` (the checkout), `dir` (the run directory) and `pids` (killed at
# its EXIT), and `set -euo pipefail`.

wait_port() { # port [tries of 0.1 s]
  for _ in $(seq 1 "${2:-200}"); do
    if /usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', $1)).close()" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "port $1 never opened" >&2
  return 1
}

# Builds the Go peer (Debian's golang thrift) into $dir and starts its server (framed binary,
# `bench(text)` answered as sent) on CPU 0; sets server_pid and upstream (its port).
start_go_server() {
  GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= GOPROXY=off \
    go build -o "$dir/thrift_peer" "$here/apps/proxy/test/thrift/go/thrift_peer.go"
  taskset -c 0 "$dir/thrift_peer" server framed binary G >"$dir/server.out" 2>&1 &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 1 100); do
    grep -qE '^[0-9]+$' "$dir/server.out" 2>/dev/null && break
    sleep 0.1
  done
  upstream=$(head -1 "$dir/server.out")
  wait_port "$upstream"
}

write_loch_config() { # port: $dir/loch.toml, 1 worker relaying every call to $upstream (MUX=1: multiplexed)
  cat >"$dir/loch.toml" <<EOF
[runtime]
workers = 1
cpu_affinity = false

[log]
level = "warn"

[servers.bench]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:$1" }
access_log = false
route = { upstreams = [{ endpoint = "127.0.0.1:$upstream"$([ "${MUX:-0}" = 1 ] && echo ', multiplex = true') }] }
EOF
}

start_nginx() { # port: nginx stream (L4), 1 worker, on CPU 1; sets proxy_pid
  mkdir -p "$dir/nginx/logs"
  cat >"$dir/nginx/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 1;
user root;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 16384; multi_accept on; }
stream {
  upstream backend { server 127.0.0.1:$upstream; }
  server {
    listen 127.0.0.1:$1 backlog=4096;
    proxy_pass backend;
    tcp_nodelay on;
  }
}
EOF
  taskset -c 1 nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -g 'daemon off;' >"$dir/nginx.out" 2>&1 &
  proxy_pid=$!
}
