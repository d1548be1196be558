#!/usr/bin/env bash
# Syscalls of loch (every thread: strace -f -c) per short client connection on a WILDCARD
# listener (0.0.0.0), for REVIEW F217: does a connection cost its local address (getsockname; on
# a direct stream also FIXED_FD_INSTALL's enter and a close) when nobody reads it?
#   bench/uring-direct/proxy-local-address.sh TREE DIRECT_FILES PATH N OUT
# TREE: a built clone (its apps/proxy/dist/bin.js runs); DIRECT_FILES: runtime.direct_files (0 off);
# PATH: /plain (an upstream without PROXY header) or /proxied (send_proxy_protocol = "v1": the
# header's destination is the local address, read per connection by design); N connections, one
# GET each (Connection: close), 8 at a time, from a node client that strace does not trace.
# OUT gets strace's table. Per connection = (table at N - table at 0) / N: run N=0 and N=1000 and
# diff them with proxy-local-address-diff.py. One worker, metrics and the access log on (to
# /dev/null) as shipped. A count, no hold needed (the rows that matter are exact).
set -euo pipefail
TREE=$1 DIRECT=$2 REQ_PATH=$3 N=$4 OUT=$5
PORT=${PORT:-47311} UP=${UP:-47312}
work=$(mktemp -d)
trap 'kill $up_pid 2>/dev/null || true; rm -rf "$work"' EXIT

# The upstream: 200 "ok" for every request head; a PROXY v1 line before the first is skipped.
node -e "
require('node:net').createServer((s) => {
  let got = '';
  s.setEncoding('latin1');
  s.on('error', () => {});
  s.on('data', (d) => {
    got += d;
    if (got.startsWith('PROXY ') && got.includes('\r\n')) got = got.slice(got.indexOf('\r\n') + 2);
    while (got.includes('\r\n\r\n')) {
      got = got.slice(got.indexOf('\r\n\r\n') + 4);
      s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    }
  });
}).listen($UP, '127.0.0.1');
" &
up_pid=$!

cat > "$work/loch.toml" <<EOF
log = { level = "error" }
[runtime]
workers = 1
direct_files = $DIRECT
[servers.web]
listener = { type = "socket", value = "0.0.0.0:$PORT" }
[[servers.web.routes]]
path = "/plain"
upstreams = [{ endpoint = "http://127.0.0.1:$UP" }]
[[servers.web.routes]]
path = "/proxied"
upstreams = [{ endpoint = "http://127.0.0.1:$UP", send_proxy_protocol = "v1" }]
EOF

strace -f -c -o "$OUT" node "$TREE/apps/proxy/dist/bin.js" run -c "$work/loch.toml" > /dev/null 2> "$work/loch.err" &
strace_pid=$!
# Ready when the port listens (asked of ss, not by connecting: that would be a connection).
for _ in $(seq 1 200); do
  ss -ltnH "sport = :$PORT" | grep -q . && break
  sleep 0.1
done
ss -ltnH "sport = :$PORT" | grep -q . || { cat "$work/loch.err" >&2; exit 1; }

node -e "
const http = require('node:http');
let left = $N, live = 0, ok = 0;
function one() {
  if (left === 0) { if (live === 0) { console.error('ok', ok); process.exit(ok === $N ? 0 : 1); } return; }
  left--; live++;
  http.get({ host: '127.0.0.1', port: $PORT, path: '$REQ_PATH', agent: false, headers: { connection: 'close' } }, (res) => {
    if (res.statusCode === 200) ok++;
    res.resume();
    res.on('end', () => { live--; one(); });
  }).on('error', (e) => { console.error(e); process.exit(1); });
}
for (let i = 0; i < 8; i++) one();
if ($N === 0) process.exit(0);
"
sleep 1
kill -TERM "$(pgrep -P $strace_pid -x node)"
wait $strace_pid || true
