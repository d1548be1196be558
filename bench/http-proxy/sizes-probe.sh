#!/usr/bin/env bash
# What changes per proxied request as the body grows (issue 18: the 1-4 KiB step), counted on real
# sockets: bench/http-proxy's 1-worker layout (wrk -t1 -cCONNS on CPU 0 -> loch 1 worker on CPU 1,
# as shipped: metrics and the access log on -> one nginx worker serving static files on CPU 0),
# one loch for all sizes. Per size, over one measured wrk run (after a warm-up):
#   - wrk's requests/s and latency percentiles; loch's CPU us per request (utime+stime, /proc);
#   - syscalls per request of loch (all, io_uring_enter) and of the upstream nginx worker (all,
#     writev, sendfile64, recvfrom, setsockopt: how nginx sends a response), perf stat tracepoints;
#   - loch's ring crossings per request (submit calls, completion batches) and GCs, from
#     counts-preload.cjs;
#   - TCP segments per request, from `ss -tin` on the sockets themselves (data_segs_out of loch's
#     accepted sockets = segments loch sent per response; data_segs_in of loch's upstream sockets =
#     segments nginx sent per response), and the host's delayed ACKs (nstat TcpExtDelayedACKs,
#     host-wide: others' loopback traffic counts too).
# Counts do not depend on the machine's load; times do.
#
# Usage: bench/http-proxy/sizes-probe.sh [sizes=128,1024,3269,4096,11268] [seconds=5] [warm=3] [conns=64]
# Env: LOCH_NODE_ARGS (extra node flags). Output: one block per size on stdout; files in the run dir.
set -euo pipefail
sizes=${1:-128,1024,3269,4096,11268}
seconds=${2:-5}
warm=${3:-3}
conns=${4:-64}
here=$(cd "$(dirname "$0")/../.." && pwd)
# free_port, run_dir, wait_http, pids, cleanup and static_backend.
. "$here/bench/http-proxy/lib.sh"
dir=$(run_dir sizes-probe)
echo "run dir: $dir" >&2
trap cleanup EXIT

mkdir -p "$dir/loch/counts"
IFS=, read -ra size_arr <<<"$sizes"
static_backend "$dir" "$sizes" 0
static_worker=$(pgrep -P "$static_pid" | head -1)

port=$(free_port)
# The access log under logs/: not in loch.toml's directory, which loch watches (gc-2026-12-06.md).
mkdir -p "$dir/loch/logs"
loch_bench_config "$dir/loch/loch.toml" "$port" "$upstream" "$dir/loch/logs/access.log"
# shellcheck disable=SC2086
(cd "$here/apps/proxy" && LOCH_COUNTS_DIR="$dir/loch/counts" \
  LOCH_COUNTS_NATIVE="$here/native/build/Release/loch_native.node" \
  exec taskset -c 1 node --require "$here/bench/http-proxy/counts-preload.cjs" ${LOCH_NODE_ARGS:-} \
  --conditions=@loch/source --import tsx src/bin.ts run -c "$dir/loch/loch.toml") >"$dir/loch/out" 2>&1 &
loch_pid=$!
pids+=("$loch_pid")
wait_http "$port" "/${size_arr[0]}"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
delacks() { nstat -az TcpExtDelayedACKs 2>/dev/null | awk '/TcpExtDelayedACKs/ {print $2}'; }
# The last counts line of loch's worker thread with mark $1 (the preload writes it within 50 ms).
counts_line() { # mark
  for _ in $(seq 1 100); do
    local l
    l=$(grep -h "\"mark\":\"$1\"" "$dir"/loch/counts/thread-*.txt 2>/dev/null | grep -v '"submits":0,' | tail -1 || true)
    [ -n "$l" ] && {
      echo "$l"
      return 0
    }
    sleep 0.05
  done
  echo '{}'
}
events=raw_syscalls:sys_enter,syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_writev,syscalls:sys_enter_sendfile64,syscalls:sys_enter_recvfrom,syscalls:sys_enter_setsockopt,syscalls:sys_enter_sendmsg

hz=$(getconf CLK_TCK)
for s in "${size_arr[@]}"; do
  url="http://127.0.0.1:$port/$s"
  pt="$dir/$s"
  mkdir -p "$pt"
  taskset -c 0 wrk -t1 -c"$conns" -d"${warm}s" "$url" >/dev/null
  # Bytes of one response as loch sends it and as nginx sends it (head + body).
  down_bytes=$(curl -s -o /dev/null -w '%{size_header} %{size_download}' "$url" | awk '{print $1 + $2}')
  up_bytes=$(curl -s -o /dev/null -w '%{size_header} %{size_download}' "http://127.0.0.1:$upstream/$s" | awk '{print $1 + $2}')
  sleep 0.2
  echo "start-$s" >"$dir/loch/counts/mark"
  a_counts=$(counts_line "start-$s")
  a_del=$(delacks)
  c0=$(cpu_ticks "$loch_pid")
  perf stat -x, -e "$events" -p "$loch_pid" -o "$pt/perf-loch" &
  perf_a=$!
  perf stat -x, -e "$events" -p "$static_worker" -o "$pt/perf-nginx" &
  perf_b=$!
  sleep 0.3
  taskset -c 0 wrk -t1 -c"$conns" -d"${seconds}s" --latency "$url" >"$pt/wrk.txt" &
  wrk_pid=$!
  # The sockets' own counters, read twice while wrk runs (its connections close when it ends).
  sleep 1
  ss -tinH state established "( sport = :$port or dport = :$upstream )" >"$pt/ss-a"
  sleep $((seconds - 2))
  ss -tinH state established "( sport = :$port or dport = :$upstream )" >"$pt/ss-b"
  wait "$wrk_pid"
  c1=$(cpu_ticks "$loch_pid")
  b_del=$(delacks)
  echo "end-$s" >"$dir/loch/counts/mark"
  b_counts=$(counts_line "end-$s")
  kill -INT "$perf_a" "$perf_b"
  wait "$perf_a" "$perf_b" 2>/dev/null || true
  req=$(awk '/requests in/ {print $1}' "$pt/wrk.txt")
  echo "$a_counts" >"$pt/counts-a.json"
  echo "$b_counts" >"$pt/counts-b.json"
  /usr/bin/python3 - "$s" "$req" "$pt" "$hz" "$c0" "$c1" "$a_del" "$b_del" "$port" "$upstream" "$down_bytes" "$up_bytes" <<'PY'
import json, re, sys
s, req, pt, hz, c0, c1, adl, bdl, port, upstream, down_bytes, up_bytes = sys.argv[1:]
req = int(req)
wrk = open(f"{pt}/wrk.txt").read()
rps = re.search(r"Requests/sec:\s+(\S+)", wrk).group(1)
lat = " ".join(f"p{m.group(1)}={m.group(2)}" for m in re.finditer(r"^\s+(50|90|99)%\s+(\S+)", wrk, re.M))
def perf(name):
    out = {}
    for line in open(f"{pt}/{name}"):
        f = line.strip().split(",")
        if len(f) > 2 and f[0].replace(".", "").isdigit():
            out[f[2].split(":")[-1].replace("sys_enter_", "")] = int(float(f[0]))
    return out
pl, pn = perf("perf-loch"), perf("perf-nginx")
a = json.load(open(f"{pt}/counts-a.json")); b = json.load(open(f"{pt}/counts-b.json"))
per = lambda x: f"{x / req:.3f}"
cpu = (int(c1) - int(c0)) * 1e6 / int(hz) / req
print(f"{s} B: {req} requests, {rps} req/s, {lat}, loch {cpu:.1f} CPU us/req")
print(f"  loch syscalls/req: all {per(pl.get('sys_enter', 0))}, io_uring_enter {per(pl.get('io_uring_enter', 0))}")
if a.get("submits") is not None and b.get("submits") is not None:
    print(f"  loch ring: submit calls/req {per(b['submits'] - a['submits'])}, completion batches/req {per(b['callbacks'] - a['callbacks'])},"
          f" scavenges {b['minor'] - a['minor']} ({b['minorMs'] - a['minorMs']:.0f} ms), major GCs {b['major'] - a['major']}")
print(f"  upstream nginx syscalls/req: all {per(pn.get('sys_enter', 0))}, writev {per(pn.get('writev', 0))}, sendfile {per(pn.get('sendfile64', 0))},"
      f" recvfrom {per(pn.get('recvfrom', 0))}, setsockopt {per(pn.get('setsockopt', 0))}, sendmsg {per(pn.get('sendmsg', 0))}")
def ss(name):
    # ss -tinH prints a socket's line (Recv-Q Send-Q local peer), then its info line.
    socks, key = {}, None
    for line in open(f"{pt}/{name}"):
        f = line.split()
        if not f:
            continue
        if len(f) >= 4 and f[0].isdigit() and f[1].isdigit():
            key = (f[2], f[3]); socks[key] = {}
        elif key is not None:
            for kv in f:
                k, _, v = kv.partition(":")
                if k in ("bytes_sent", "bytes_received", "data_segs_out", "data_segs_in") and v.isdigit():
                    socks[key][k] = int(v)
    return socks
sa, sb = ss("ss-a"), ss("ss-b")
def delta(pred, field):
    t = 0
    for k, v in sb.items():
        if pred(k):
            t += v.get(field, 0) - sa.get(k, {}).get(field, 0)
    return t
down = lambda k: k[0].endswith(f":{port}")
up = lambda k: k[1].endswith(f":{upstream}")
resps = delta(down, "bytes_sent") / int(down_bytes)
uresps = delta(up, "bytes_received") / int(up_bytes)
print(f"  TCP data segments per response (ss, {resps:.0f} responses in the window): loch -> client {delta(down, 'data_segs_out') / resps:.3f},"
      f" nginx -> loch {delta(up, 'data_segs_in') / uresps:.3f}, loch -> nginx {delta(up, 'data_segs_out') / uresps:.3f};"
      f" host delayed ACKs/req {per(int(bdl) - int(adl))}")
PY
done
