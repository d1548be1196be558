#!/usr/bin/env bash
# System calls per proxied request, HTTPS against plain HTTP on one instance (issue 13), loch or
# nginx: request-counts.sh's setup (an HTTPS and a plain listener in front of one node:http
# backend answering SIZE bytes, 1 worker), not under callgrind; the Python client makes WARM
# requests on a connection, then `strace -c` attaches to every thread of the server for COUNT
# more on the same connection. Counts, not times (strace slows the server; the counts stay).
# With io_uring most of loch's socket work is SQEs, not system calls: io_uring_enter is the one
# to read (and epoll_pwait, libuv's wait).
#
# Usage: bench/https/request-syscalls.sh PEER=loch|nginx [size=3269] [warm=2000] [count=1000]
# Env: LOCH_TLS_RECORDS (openssl or loch), LOCH_ROOT (as request-counts.sh).
set -euo pipefail
peer=${1:?loch or nginx}
size=${2:-3269}
warm=${3:-2000}
count=${4:-1000}
here=$(cd "$(dirname "$0")" && pwd)
root=${LOCH_ROOT:-$(cd "$here/../.." && pwd)}
dir=$(mktemp -d /tmp/loch-request-syscalls-XXXXXX)
chmod 755 "$dir"
# A free port below the kernel's ephemeral range (32768+), where port-0 binds of other jobs on
# the machine cannot take it in the minutes a server under callgrind takes to start.
free_port() { python3 -c '
import random, socket
while True:
    p = random.randint(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        s.close()'; }
port=$(free_port)
plain=$(free_port)
backend=$(free_port)
client="$here/callgrind-requests.py"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost \
  -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
chmod 644 "$dir/key.pem" "$dir/cert.pem"
node -e "const b = Buffer.alloc($size, 120); require('node:http').createServer((q, s) => { s.setHeader('content-length', b.length); s.end(b); }).listen($backend, '127.0.0.1')" &
backend_pid=$!
if [ "$peer" = loch ]; then
  cat >"$dir/loch.toml" <<EOF
[runtime]
workers = 1
cpu_affinity = false
[log]
level = "warn"
[servers.https]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:$port" }
access_log = false
tls = { chain = "$dir/cert.pem", key = "$dir/key.pem", min_version = "TLSv1.3", max_version = "TLSv1.3", ciphersuites = "TLS_AES_128_GCM_SHA256" }
[[servers.https.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:$backend" }]
[servers.http]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:$plain" }
access_log = false
[[servers.http.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:$backend" }]
EOF
  LOCH_TLS_RECORDS=${LOCH_TLS_RECORDS:-openssl} node "$root/apps/proxy/dist/bin.js" run -c "$dir/loch.toml" >"$dir/server.out" 2>&1 &
  server=$!
else
  mkdir -p "$dir/nginx/logs"
  cat >"$dir/nginx/nginx.conf" <<EOF
worker_processes 1;
master_process off;
daemon off;
user root;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 4096; multi_accept on; }
http {
  access_log off;
  client_body_temp_path $dir/nginx/client_body;
  proxy_temp_path $dir/nginx/proxy;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  tcp_nodelay on;
  upstream backend { server 127.0.0.1:$backend; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$port ssl backlog=4096;
    listen 127.0.0.1:$plain backlog=4096;
    ssl_certificate $dir/cert.pem;
    ssl_certificate_key $dir/key.pem;
    ssl_protocols TLSv1.3;
    ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_max_temp_file_size 0; }
  }
}
EOF
  nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" >"$dir/server.out" 2>&1 &
  server=$!
fi
trap 'kill $server $backend_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $port)).close(); socket.create_connection(('127.0.0.1', $plain)).close()" 2>/dev/null && break
  sleep 0.5
done
window() { # port tls|plain
  local fifo="$dir/go.$2"
  mkfifo "$fifo"
  python3 "$client" "$1" "$count" "/$size" "$2" "$warm" <"$fifo" >"$dir/client.$2" &
  local c=$!
  exec 3>"$fifo"
  until grep -q warm "$dir/client.$2" 2>/dev/null; do sleep 0.2; done
  local args=()
  for t in /proc/"$server"/task/*; do args+=(-p "${t##*/}"); done
  strace -c -o "$dir/strace.$2" "${args[@]}" &
  local s=$!
  sleep 1
  echo go >&3
  exec 3>&-
  wait "$c"
  kill -INT "$s"
  wait "$s" 2>/dev/null || true
}
window "$port" tls
window "$plain" plain
echo "$peer${LOCH_TLS_RECORDS:+ (LOCH_TLS_RECORDS=$LOCH_TLS_RECORDS)}, 1 worker, $size B, system calls per request over $count requests on one connection (HTTPS, HTTP):"
python3 - "$dir/strace.tls" "$dir/strace.plain" "$count" <<'PY'
import sys
def rows(p):
    out = {}
    for line in open(p):
        f = line.split()
        if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
            out[f[-1]] = int(f[3])
    return out
a, b, n = rows(sys.argv[1]), rows(sys.argv[2]), int(sys.argv[3])
for k in sorted(set(a) | set(b), key=lambda k: -(a.get(k, 0) + b.get(k, 0))):
    print(f"  {k:20s} {a.get(k, 0) / n:8.2f} {b.get(k, 0) / n:8.2f}")
print(f"  {'total':20s} {sum(a.values()) / n:8.2f} {sum(b.values()) / n:8.2f}")
PY
kill "$server" "$backend_pid" 2>/dev/null || true
wait "$server" 2>/dev/null || true
trap - EXIT
rm -rf "$dir"
