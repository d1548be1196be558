#!/usr/bin/env bash
# What one TLS handshake costs the server, counted (issue 13), loch or nginx, split by where it
# goes. The server runs under callgrind (--separate-threads=yes, every thread and, for nginx, every
# worker process counted); a Python client in another process (packages/tls/bench/handshake-client.py:
# connect, TLS 1.3 handshake, the server's ticket, close_notify both ways, close; one connection at
# a time) makes WARM handshakes, the counters are zeroed (callgrind_control -z PID), COUNT more are
# made, the counters dumped (callgrind_control -d PID), and bench/https/callgrind-split.py splits
# the instructions per handshake into OpenSSL, loch's C++, JavaScript (JIT code and V8 builtins),
# V8/node C++, libc; with the exact call counts of malloc/free, N-API callbacks (JavaScript ->
# native) and N-API calls into JavaScript, and OpenSSL's entry points (SSL_new, SSL_do_handshake...).
# Same certificate kinds, suite and version as bench:https's handshake part: TLS 1.3,
# TLS_AES_128_GCM_SHA256, ECDSA P-256 or RSA 2048; nginx as bench:https runs it (tickets on, no
# session cache), loch as its config does (tickets with shared keys).
#
# Usage: bench/https/handshake-counts.sh PEER=loch|nginx [workers=1] [ecdsa|rsa] [full|resumed]
#          [warm=1000] [count=300]
# Needs valgrind, python3, openssl, nginx; loch from apps/proxy's build (dist/bin.js).
# Env: KEEP=1 keeps the dumps (printed path), LOCH_ENV="A=1" passed to loch, LOCH_TLS_RECORDS
# (loch, the default: the record layer loch takes each connection over to after its handshake;
# or openssl).
set -euo pipefail
peer=${1:?loch or nginx}
workers=${2:-1}
cert=${3:-ecdsa}
mode=${4:-full}
warm=${5:-1000}
count=${6:-300}
records=${LOCH_TLS_RECORDS:-loch}
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d /tmp/loch-handshake-counts-XXXXXX)
chmod 755 "$dir"
client="$root/packages/tls/bench/handshake-client.py"
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
port=$(free_port)

tls_certificate "$cert"

pids=()
if [ "$peer" = loch ]; then
  cat >"$dir/loch.toml" <<EOF
[runtime]
workers = $workers
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
upstreams = [{ endpoint = "http://127.0.0.1:9" }]
EOF
  # shellcheck disable=SC2086
  env LOCH_TLS_RECORDS="$records" ${LOCH_ENV:-} valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$dir/cg.%p" \
    node "$root/apps/proxy/dist/bin.js" run -c "$dir/loch.toml" >"$dir/server.out" 2>&1 &
  server=$!
elif [ "$peer" = nginx ]; then
  mkdir -p "$dir/nginx"
  master=on
  [ "$workers" = 1 ] && master=off
  reuse=''
  [ "$workers" != 1 ] && reuse=' reuseport'
  cat >"$dir/nginx/nginx.conf" <<EOF
worker_processes $workers;
master_process $master;
daemon off;
user root;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 4096; multi_accept on; }
http {
  access_log off;
  server {
    listen 127.0.0.1:$port ssl backlog=4096$reuse;
    ssl_certificate $dir/cert.pem;
    ssl_certificate_key $dir/key.pem;
    ssl_protocols TLSv1.3;
    ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;
    location / { return 200; }
  }
}
EOF
  valgrind --tool=callgrind --separate-threads=yes --trace-children=yes --callgrind-out-file="$dir/cg.%p" \
    nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" >"$dir/server.out" 2>&1 &
  server=$!
else
  echo "peer: loch or nginx" >&2
  exit 2
fi
trap 'kill $server 2>/dev/null || true' EXIT
listening=0
for _ in $(seq 1 900); do
  if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port)).close()" 2>/dev/null; then
    listening=1
    break
  fi
  sleep 1
done
if [ "$listening" != 1 ]; then
  echo "$peer did not listen on 127.0.0.1:$port; its output is in $dir/server.out" >&2
  exit 1
fi
python3 "$client" "$port" "$warm" "$mode" >/dev/null
# Every process of the server under callgrind: nginx's workers are the master's children.
pids=("$server")
if [ "$peer" = nginx ] && [ "$workers" != 1 ]; then
  mapfile -t pids < <(pgrep -P "$server")
fi
for p in "${pids[@]}"; do callgrind_control -z "$p" >/dev/null; done
python3 "$client" "$port" "$count" "$mode"
for p in "${pids[@]}"; do callgrind_control -d "$p" >/dev/null; done
sleep 1
kill "$server" 2>/dev/null || true
wait "$server" 2>/dev/null || true
trap - EXIT

dumps=()
for p in "${pids[@]}"; do
  for f in "$dir"/cg."$p"*; do
    case $f in *.1 | *.1-*) dumps+=("$f") ;; esac
  done
done
label=$peer
[ "$peer" = loch ] && label="loch (LOCH_TLS_RECORDS=$records)"
echo "$label, $workers worker(s), $cert $mode handshakes $((warm + 1))..$((warm + count)) (after $warm):"
python3 "$root/bench/https/callgrind-split.py" "$count" "${dumps[@]}"
if [ "${KEEP:-0}" = 1 ]; then
  echo "(dumps in $dir)"
else
  rm -rf "$dir"
fi
