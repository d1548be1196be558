#!/usr/bin/env bash
# What one proxied request makes loch's ring and OpenSSL do, HTTPS against plain HTTP on one
# instance (issue 13), counted with perf on the live server, not under callgrind (minutes to start
# on a loaded machine): request-counts.sh's setup (an HTTPS and a plain listener in front of one
# node:http backend answering SIZE bytes, 1 worker unless WORKERS), the Python client of
# callgrind-requests.py makes WARM requests on a connection, then `perf stat -p` counts COUNT
# more on it: io_uring submissions and completions (every SQE, every CQE posted), io_uring_enter,
# page faults, context switches, and uprobes on the ring's TLS entry points (loch_native.node:
# Ring::PrepTls = writes encrypted, Ring::OnTlsSend = ciphertext sends completed, Ring::TlsRecv =
# ciphertext recv completions fed) and OpenSSL's (node's: SSL_write_ex, do_ssl3_write = records
# sealed, by the default record layer) and malloc (with the calls of 64 KiB or more apart). Counts,
# not times: what a busy machine changes is how long the window takes, not what it holds.
# With CONNS set, the windows are wrk's instead (CONNS connections, one thread: WARM seconds of
# warm-up, then COUNT seconds counted, divided by the requests wrk made): the buffers of many
# responses in flight at once, which one connection does not show (large mallocs, page faults).
#
# Usage: bench/https/request-probes.sh [size=165854] [warm=500] [count=300]
# Env: LOCH_TLS_RECORDS (openssl or loch), WORKERS, CONNS (e.g. 64: wrk windows, warm and count
# in seconds), LOCH_ROOT (lib.sh). Needs perf (root: tracefs); wrk with CONNS.
set -euo pipefail
size=${1:-165854}
warm=${2:-500}
count=${3:-300}
records=${LOCH_TLS_RECORDS:-loch}
here=$(cd "$(dirname "$0")" && pwd)
root=${LOCH_ROOT:-$(cd "$here/../.." && pwd)}
# shellcheck source=lib.sh
. "$here/lib.sh"
client="$here/callgrind-requests.py"

# Uprobes: probe (lib.sh).
libc=$(readlink -f /lib/x86_64-linux-gnu/libc.so.6)
node_bin=$(readlink -f "$(command -v node)")
addon=$(readlink -f "$root/native/build/Release/loch_native.node")
probe probe_libc/malloc "$libc" malloc
probe probe_libc/mallocsz "$libc" malloc 'size=%di:u64'
probe probe_node/SSL_write_ex "$node_bin" SSL_write_ex
probe probe_node/do_ssl3_write "$node_bin" do_ssl3_write
# The addon is rebuilt in place: its probes are made again for every run (offsets move).
for p in PrepTls OnTlsSend TlsRecv; do
  echo "-:probe_loch/$p" >>"$tracefs/uprobe_events" 2>/dev/null || true
done
probe probe_loch/PrepTls "$addon" _ZN4loch4Ring7PrepTlsEN4Napi3EnvEPKiijNS1_5ValueEj
probe probe_loch/OnTlsSend "$addon" _ZN4loch4Ring9OnTlsSendEjiPm
probe probe_loch/TlsRecv "$addon" _ZN4loch4Ring7TlsRecvEPNS_7TlsConnEjijPm

https_setup request-probes "$size"
https_start loch
https_wait 300
events="io_uring:io_uring_submit_req,io_uring:io_uring_complete,syscalls:sys_enter_io_uring_enter"
events+=",page-faults,context-switches,probe_libc:malloc"
events+=",probe_node:SSL_write_ex,probe_node:do_ssl3_write,probe_loch:PrepTls,probe_loch:OnTlsSend,probe_loch:TlsRecv"
window() { # port tls|plain
  if [ -n "${CONNS:-}" ]; then
    local url
    url="$([ "$2" = tls ] && echo https || echo http)://127.0.0.1:$1/$size"
    wrk -t1 -c"$CONNS" -d"${warm}s" "$url" >/dev/null
    perf stat -x, -o "$dir/stat.$2" -e "$events" -e probe_libc:mallocsz --filter 'size >= 65536' -p "$server" \
      -- wrk -t1 -c"$CONNS" -d"${count}s" "$url" >"$dir/wrk.$2"
    awk '/requests in/ {print $1}' "$dir/wrk.$2" >"$dir/n.$2"
    return
  fi
  echo "$count" >"$dir/n.$2"
  drive_client "$1" "$2" perf stat -x, -o "$dir/stat.$2" -e "$events" -e probe_libc:mallocsz --filter 'size >= 65536' -p "$server"
}
window "$port" tls
window "$plain" plain
if [ -n "${CONNS:-}" ]; then
  echo "loch (LOCH_TLS_RECORDS=$records), ${WORKERS:-1} worker(s), $size B, per request, wrk -c$CONNS for $count s after $warm s (HTTPS $(cat "$dir/n.tls"), HTTP $(cat "$dir/n.plain") requests):"
else
  echo "loch (LOCH_TLS_RECORDS=$records), ${WORKERS:-1} worker(s), $size B, per request over $count requests on one connection after $warm (HTTPS, HTTP):"
fi
python3 - "$dir/stat.tls" "$dir/stat.plain" "$(cat "$dir/n.tls")" "$(cat "$dir/n.plain")" <<'PY'
import sys
def rows(p):
    out = {}
    for line in open(p):
        f = line.strip().split(',')
        if len(f) >= 3 and f[0].replace('.', '').isdigit():
            name = f[2] + (' (>=64K)' if f[2] == 'probe_libc:mallocsz' else '')
            out[name] = float(f[0])
    return out
a, b, n, m = rows(sys.argv[1]), rows(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for k in a:
    print(f"  {k:32s} {a[k] / n:9.3f} {b.get(k, 0) / m:9.3f}")
PY
https_stop
rm -rf "$dir"
