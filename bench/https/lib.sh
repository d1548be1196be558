# What bench/https's scripts share (sourced, not run). The request scripts' setup (request-*.sh,
# callgrind-requests.sh; callgrind-h2.sh takes its ports and backend): one server, loch (1 worker,
# apps/proxy's build) or nginx (one process), with an HTTPS listener (TLS 1.3, AES-128-GCM, a
# throwaway P-256 certificate) and a plain HTTP one in front of the same node:http backend
# answering SIZE bytes, keep-alive timeouts of an hour (a connection waits idle while the other
# one's window runs).
#
#   https_setup NAME SIZE   makes $dir (a temp directory), the ports $port (HTTPS), $plain, $backend,
#                           the certificate, and starts the backend ($backend_pid)
#   https_start PEER [PREFIX...]   starts the server ($server) under the command PREFIX (valgrind...):
#                           loch (loch_start) with $WORKERS workers (1 unless set), or nginx (one
#                           process)
#   https_wait SECONDS      waits until both listeners accept (exits 1, saying where the output is)
#   https_stop              ends the server and the backend
#
# The caller sets `here` (this directory) and `root` (the checkout whose apps/proxy build runs).
#
# Also what every bench/https script shares: `free_port` (bench/lib/free-port.sh) and
#   loch_start [PREFIX...]  starts loch on the config $dir/loch.toml under the command PREFIX
#                           ($server, its output in $dir/server.out, killed on exit), with
#                           LOCH_TLS_RECORDS=$records (loch, the default, unless set) and the node
#                           flags in the array node_args (none unless set): from apps/proxy's build,
#                           or with LOCH_FROM_SOURCE=1 from its sources (tsx)
#   handshake_start PEER WORKERS [PREFIX...]   a server of TLS 1.3 handshakes on $port (AES-128-GCM,
#                           $dir/cert.pem) under PREFIX ($server): loch (an HTTPS server whose
#                           upstream is nobody, port 9) or nginx (`return 200`; one process with 1
#                           worker, a master and reuseport with more)
#   h2_loch_toml H2C_PORT TLS_PORT UPSTREAM [TLS_KEYS]   writes $dir/loch.toml for the HTTP/2 scripts:
#                           1 worker, an h2c server and a TLS 1.3 server ($dir/cert.pem; h2 by ALPN,
#                           HTTP/1.1 without it; TLS_KEYS adds keys to its tls table, e.g.
#                           ', ciphersuites = "..."'), both proxying / to 127.0.0.1:UPSTREAM
#   loch_runtime WORKERS    starts $dir/loch.toml: [runtime] (WORKERS, no CPU affinity), [log] warn
#   loch_server KEY PORT UPSTREAM [KEEPALIVE] [TLS]   appends the HTTP server KEY on 127.0.0.1:PORT
#                           (no access log; server_keepalive KEEPALIVE and the line TLS when given)
#                           proxying / to 127.0.0.1:UPSTREAM
#   tls13_table             the tls line of the scripts' HTTPS servers: $dir's certificate, TLS 1.3
#                           only, AES-128-GCM
#   nginx_main WORKERS on|off   nginx.conf's main context for the scripts' nginx (WORKERS worker
#                           processes, master on or off, in the foreground, pid and error log in
#                           $dir/nginx, 4,096 connections a worker); the http block follows it
#   wait_listening SECONDS PORT...   waits (a try a second) until 127.0.0.1:PORT accepts, for every
#                           PORT (exits 1, saying where the server's output is)
#   tls_certificate [ecdsa|rsa]   a throwaway certificate for localhost in $dir (cert.pem, key.pem;
#                           readable by nginx's workers): ECDSA P-256 (the default) or RSA 2048
#   probe GROUP/NAME BINARY SYMBOL [ARGS]   a uprobe for `perf stat -e GROUP:NAME` (idempotent; tracefs,
#                           root): file offsets from the symbol tables, less the text segment's load
#                           bias (node's and the addon's symbols have no debug info for `perf probe`)
#   drive_client PORT tls|plain CMD...   the Python client of callgrind-requests.py makes $warm
#                           requests on one connection to PORT, then CMD starts in the background
#                           (strace, perf stat: attached to $server) and $count more are made; CMD
#                           gets SIGINT after them. Needs $client, $size, $warm, $count ($dir/client.MODE
#                           holds the client's output)

# free_port: bench/lib/free-port.sh (above the ephemeral range, bounded tries).
. "$(dirname "${BASH_SOURCE[0]}")/../lib/free-port.sh"

tls_certificate() { # [ecdsa|rsa]
  local newkey
  case ${1:-ecdsa} in
    ecdsa) newkey=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1) ;;
    rsa) newkey=(-newkey rsa:2048) ;;
    *) echo "certificate kind: ecdsa or rsa" >&2; exit 2 ;;
  esac
  openssl req -x509 "${newkey[@]}" -nodes -days 1 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
  chmod 644 "$dir/key.pem" "$dir/cert.pem"
}

tracefs=/sys/kernel/tracing
probe() { # group/name binary symbol [args]
  local name=$1 bin=$2 sym=$3 args=${4:-}
  grep -q "^p:$name " "$tracefs/uprobe_events" 2>/dev/null && return 0
  local vaddr bias off
  vaddr=$( (nm "$bin" 2>/dev/null; nm -D "$bin") | awk -v s="$sym" '$3==s || $3 ~ "^"s"@@" {if (!v) v = $1} END {print v}')
  bias=$(readelf -lW "$bin" | awk '$1=="LOAD" && / E / && !b {b = $3 " " $2} END {print b}')
  off=$(python3 -c "v=int('$vaddr',16); a,b=[int(x,16) for x in '$bias'.split()]; print(hex(v-(a-b)))")
  echo "p:$name $bin:$off $args" >>"$tracefs/uprobe_events"
}

drive_client() { # PORT tls|plain CMD...
  local port=$1 mode=$2
  shift 2
  local fifo="$dir/go.$mode"
  mkfifo "$fifo"
  python3 "$client" "$port" "$count" "/$size" "$mode" "$warm" <"$fifo" >"$dir/client.$mode" &
  local c=$!
  exec 3>"$fifo"
  until grep -q warm "$dir/client.$mode" 2>/dev/null; do sleep 0.2; done
  "$@" 3>&- &  # not holding the client's stdin open
  local s=$!
  sleep 1
  echo go >&3
  exec 3>&-
  wait "$c"
  kill -INT "$s"
  wait "$s" 2>/dev/null || true
}

https_setup() { # NAME SIZE
  dir=$(mktemp -d "/tmp/loch-$1-XXXXXX")
  chmod 755 "$dir"
  port=$(free_port)
  plain=$(free_port)
  backend=$(free_port)
  tls_certificate ecdsa
  # The backend keeps an idle connection an hour (node's default: 5 s): a window's upstream
  # connection waits idle while the other window runs, and a reconnect would land in the count.
  node -e "const b = Buffer.alloc($2, 120); require('node:http').createServer({ keepAliveTimeout: 3600e3 }, (q, s) => { s.setHeader('content-length', b.length); s.end(b); }).listen($backend, '127.0.0.1')" &
  backend_pid=$!
}

https_start() { # PEER [PREFIX...]
  local peer=$1
  shift
  if [ "$peer" = loch ]; then
    loch_runtime "${WORKERS:-1}"
    loch_server https "$port" "$backend" 3600s "$(tls13_table)"
    loch_server http "$plain" "$backend" 3600s
    loch_start "$@"
  elif [ "$peer" = nginx ]; then
    mkdir -p "$dir/nginx/logs"
    # bench/lib/nginx.ts startNginxTlsProxy's server, one process (no master: callgrind counts it).
    nginx_main 1 off >"$dir/nginx/nginx.conf"
    cat >>"$dir/nginx/nginx.conf" <<EOF
http {
  access_log off;
  client_body_temp_path $dir/nginx/client_body;
  proxy_temp_path $dir/nginx/proxy;
  keepalive_requests 1000000;
  keepalive_timeout 3600s;
  tcp_nodelay on;
  upstream backend {
    server 127.0.0.1:$backend;
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$port ssl backlog=4096;
    listen 127.0.0.1:$plain backlog=4096;
    ssl_certificate $dir/cert.pem;
    ssl_certificate_key $dir/key.pem;
    ssl_protocols TLSv1.3;
    ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_max_temp_file_size 0;
    }
  }
}
EOF
    "$@" nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" >"$dir/server.out" 2>&1 &
    server=$!
  else
    echo "peer: loch or nginx" >&2
    exit 2
  fi
  trap 'kill $server $backend_pid 2>/dev/null || true' EXIT
}

loch_start() { # [PREFIX...]
  local bin=("$root/apps/proxy/dist/bin.js")
  [ "${LOCH_FROM_SOURCE:-0}" = 1 ] && bin=(--conditions=@loch/source --import tsx "$root/apps/proxy/src/bin.ts")
  LOCH_TLS_RECORDS=${records:-loch} "$@" node ${node_args[@]+"${node_args[@]}"} "${bin[@]}" run -c "$dir/loch.toml" \
    >"$dir/server.out" 2>&1 &
  server=$!
  trap 'kill $server ${backend_pid:-} 2>/dev/null || true' EXIT
}

handshake_start() { # PEER WORKERS [PREFIX...]
  local peer=$1 workers=$2
  shift 2
  if [ "$peer" = loch ]; then
    loch_runtime "$workers"
    loch_server https "$port" 9 '' "$(tls13_table)"
    loch_start "$@"
  elif [ "$peer" = nginx ]; then
    mkdir -p "$dir/nginx"
    local master=on reuse=' reuseport'
    if [ "$workers" = 1 ]; then master=off reuse=''; fi
    nginx_main "$workers" "$master" >"$dir/nginx/nginx.conf"
    cat >>"$dir/nginx/nginx.conf" <<EOF
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
    "$@" nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" >"$dir/server.out" 2>&1 &
    server=$!
    trap 'kill $server 2>/dev/null || true' EXIT
  else
    echo "peer: loch or nginx" >&2
    exit 2
  fi
}

h2_loch_toml() { # H2C_PORT TLS_PORT UPSTREAM [TLS_KEYS]
  loch_runtime 1
  loch_server h2c "$1" "$3" 300s
  loch_server h2 "$2" "$3" 300s "tls = { chain = \"$dir/cert.pem\", key = \"$dir/key.pem\", min_version = \"TLSv1.3\"${4:-} }"
}

loch_runtime() { # WORKERS
  printf '[runtime]\nworkers = %s\ncpu_affinity = false\n\n[log]\nlevel = "warn"\n' "$1" >"$dir/loch.toml"
}

loch_server() { # KEY PORT UPSTREAM [KEEPALIVE] [TLS]
  {
    printf '\n[servers.%s]\nproxy_type = "http"\n' "$1"
    printf 'listener = { type = "socket", value = "127.0.0.1:%s" }\naccess_log = false\n' "$2"
    [ -n "${4:-}" ] && printf 'timeouts = { server_keepalive = "%s" }\n' "$4"
    [ -n "${5:-}" ] && printf '%s\n' "$5"
    printf '[[servers.%s.routes]]\npath = "/"\nupstreams = [{ endpoint = "http://127.0.0.1:%s" }]\n' "$1" "$3"
  } >>"$dir/loch.toml"
}

tls13_table() {
  echo "tls = { chain = \"$dir/cert.pem\", key = \"$dir/key.pem\", min_version = \"TLSv1.3\", max_version = \"TLSv1.3\", ciphersuites = \"TLS_AES_128_GCM_SHA256\" }"
}

nginx_main() { # WORKERS MASTER
  printf 'worker_processes %s;\nmaster_process %s;\ndaemon off;\nuser root;\n' "$1" "$2"
  printf 'pid %s/nginx/nginx.pid;\nerror_log %s/nginx/error.log warn;\n' "$dir" "$dir"
  printf 'events { worker_connections 4096; multi_accept on; }\n'
}

wait_listening() { # SECONDS PORT...
  local seconds=$1 up p
  shift
  for _ in $(seq 1 "$seconds"); do
    up=1
    for p in "$@"; do
      python3 -c "import socket; socket.create_connection(('127.0.0.1', $p)).close()" 2>/dev/null || { up=0; break; }
    done
    [ "$up" = 1 ] && return 0
    sleep 1
  done
  echo "the server did not listen on 127.0.0.1 port(s) $* within $seconds s; its output is in $dir/server.out" >&2
  exit 1
}

https_wait() { # SECONDS
  wait_listening "$1" "$port" "$plain"
}

https_stop() {
  kill "$server" "$backend_pid" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  trap - EXIT
}
