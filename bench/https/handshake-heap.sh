#!/usr/bin/env bash
# Where loch's JavaScript allocates per TLS handshake (issue 13), by allocation site: loch (apps/
# proxy's build, an HTTPS listener whose upstream is nobody, as handshake-counts.sh runs it) with
# heap-sites.cjs preloaded; the Python client of packages/tls/bench/handshake-client.py (one
# connection at a time: handshake, the server's ticket, close_notify both ways, close) makes WARM
# handshakes, V8's sampling heap profiler starts in the worker thread (objects already collected
# kept: every allocation of the window counts, not only what is alive at its end), COUNT more are
# made, the profile is written, and the bytes are summed per allocating function (its file and
# line) and per package, divided by COUNT. An estimate (one sample per INTERVAL bytes), not a
# time: repeatable on a busy machine. The total is checked against V8's own count
# (handshake-syscalls.sh's `V8 heap bytes allocated`, from --trace-gc-nvp).
#
# Usage: bench/https/handshake-heap.sh [workers=1] [ecdsa|rsa] [full|resumed] [warm=2000] [count=1000]
# Env: INTERVAL (bytes per sample, 64), TOP (sites listed, 30), LIVE=1 (only the bytes still in the
# heap at the window's end, not collected yet: what survived the young generation, i.e. promoted), KEEP=1 keeps the profile (printed
# path), LOCH_TLS_RECORDS as handshake-counts.sh.
# Needs python3, openssl; loch from apps/proxy's build (dist/bin.js).
set -euo pipefail
workers=${1:-1}
cert=${2:-ecdsa}
mode=${3:-resumed}
warm=${4:-2000}
count=${5:-1000}
records=${LOCH_TLS_RECORDS:-loch}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=$(mktemp -d /tmp/loch-handshake-heap-XXXXXX)
chmod 755 "$dir"
client="$root/packages/tls/bench/handshake-client.py"
# shellcheck source=lib.sh
. "$here/lib.sh"
port=$(free_port)

tls_certificate "$cert"
mkdir "$dir/heap"
node_args=(--require "$here/heap-sites.cjs")
handshake_start loch "$workers" env LOCH_BENCH_HEAP_SITES="$dir/heap" LOCH_BENCH_HEAP_INTERVAL="${INTERVAL:-64}" \
  LOCH_BENCH_HEAP_LIVE="${LIVE:-0}"
wait_listening 120 "$port"
python3 "$client" "$port" "$warm" "$mode" >/dev/null
touch "$dir/heap/start"
for _ in $(seq 1 100); do
  [ "$(find "$dir/heap" -name 'started-*' | wc -l)" -ge "$workers" ] && break
  sleep 0.2
done
[ "$(find "$dir/heap" -name 'started-*' | wc -l)" -ge "$workers" ] || { echo "sampling did not start: $(cat "$dir"/heap/error-* 2>/dev/null)" >&2; exit 1; }
python3 "$client" "$port" "$count" "$mode"
touch "$dir/heap/stop"
for _ in $(seq 1 150); do
  [ "$(find "$dir/heap" -name 'profile-*.json' | wc -l)" -ge "$workers" ] && break
  sleep 0.2
done
kill "$server" 2>/dev/null || true
wait "$server" 2>/dev/null || true
trap - EXIT

echo "loch (LOCH_TLS_RECORDS=$records), $workers worker(s), $cert $mode handshakes $((warm + 1))..$((warm + count)) (after $warm), V8 heap bytes allocated per handshake (sampled, ${INTERVAL:-64} B per sample):"
python3 - "$count" "${TOP:-30}" "$dir"/heap/profile-*.json <<'PY'
import json, re, sys
count, top, files = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
sites, packages, total = {}, {}, 0
def package(url):
    m = re.search(r"/(packages|apps)/([^/]+)/", url)
    if m: return f"{m.group(1)}/{m.group(2)}"
    if url.startswith("node:"): return "node"
    return "(V8: no script)" if not url else url.rsplit("/", 1)[-1]
def walk(node, stack):
    global total
    cf = node["callFrame"]
    here = stack + [cf]
    size = node.get("selfSize", 0)
    if size:
        total += size
        url = cf.get("url", "")
        site = f'{cf.get("functionName") or "(anonymous)"}  {re.sub(r"^.*/(packages|apps)/", "", url) or "-"}:{cf.get("lineNumber", -1) + 1}'
        sites[site] = sites.get(site, 0) + size
        # The package of the nearest frame that is Loch's own (packages/, apps/), else the frame's.
        owner = next((package(f.get("url", "")) for f in reversed(here) if re.search(r"/(packages|apps)/", f.get("url", ""))), package(url))
        packages[owner] = packages.get(owner, 0) + size
    for child in node.get("children", []):
        walk(child, here)
for f in files:
    walk(json.load(open(f))["head"], [])
print(f"  total {total / count:10,.0f} B per handshake")
print("  by package (the nearest Loch frame on the stack):")
for k, v in sorted(packages.items(), key=lambda kv: -kv[1]):
    if v / count >= 1: print(f"    {v / count:8,.0f}  {k}")
print(f"  top {top} allocating functions (self):")
for k, v in sorted(sites.items(), key=lambda kv: -kv[1])[:top]:
    print(f"    {v / count:8,.0f}  {k[:160]}")
PY
if [ "${KEEP:-0}" = 1 ]; then
  echo "(profiles in $dir/heap)"
else
  rm -rf "$dir"
fi
