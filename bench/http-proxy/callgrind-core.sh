#!/usr/bin/env bash
# User-space instructions per proxied HTTP/1.1 request of loch's JavaScript, in process
# (issue 18): apps/proxy/bench/proxy-core.ts (the server chain and the pooled client over
# in-memory streams) bundled with esbuild and run under valgrind's callgrind twice, with N1 and
# N2 requests in one round; (Ir(N2) - Ir(N1)) / (N2 - N1) is what a request costs once the
# start, the JIT's first tiers and the bundle's load are subtracted. Also the calls per request
# of named functions (crossings into native code: the head scanner, latin1Slice...) from
# callgrind_annotate's inclusive counts.
#
# Usage: bench/http-proxy/callgrind-core.sh [size=128] [n1=5000] [n2=20000] [flags...]
#   flags go to proxy-core.ts, e.g. --log-file /tmp/x.log --metrics (as shipped: both).
# Env: OUT (dir, default a new one under $TMPDIR), TOP (functions listed, default 40), BUNDLE (a
# bundle to run instead of bundling the tree: compare revisions with bundles made from each),
# PERF_MAP=1 (node --perf-basic-prof: each run's V8 map kept as <dir>/map.N, and the report names
# the JIT code by JavaScript function instead of '0x...'), INCL=a,b (also the inclusive Ir per request,
# self plus calls, of the functions whose name contains a or b).
# The runs are pinned to CPU ${CPU:-1}. Output: totals and per-request Ir, and the top functions
# by their difference per request (self), in <dir>/report.txt.
set -euo pipefail
size=${1:-128}
n1=${2:-5000}
n2=${3:-20000}
shift 3 || true
here=$(cd "$(dirname "$0")/../.." && pwd)
. "$here/bench/http-proxy/core-bundle.sh"
core_run_dir callgrind-core
top=${TOP:-40}
core_bundle
# Node runs in the run dir: what it writes to its working directory (V8 isolate logs) stays there.
cd "$dir"
for n in "$n1" "$n2"; do
  core_args "$n" "$@"
  node_flags=()
  [ "${PERF_MAP:-0}" = 1 ] && node_flags+=(--perf-basic-prof)
  # valgrind runs node in its own process: the background job's pid is node's (its map's name).
  taskset -c "${CPU:-1}" valgrind --tool=callgrind --smc-check=all-non-file \
    --callgrind-out-file="$dir/cg.$n" node "${node_flags[@]}" "$dir/core.mjs" "$n" --size "$size" --rounds 1 "${core_args[@]}" \
    >"$dir/out.$n" 2>"$dir/err.$n" &
  pid=$!
  wait "$pid"
  if [ "${PERF_MAP:-0}" = 1 ]; then mv "/tmp/perf-$pid.map" "$dir/map.$n"; fi
  cat "$dir/out.$n"
done
maps=()
[ "${PERF_MAP:-0}" = 1 ] && maps=(--maps "$dir/map.$n1" "$dir/map.$n2")
[ -n "${INCL:-}" ] && maps+=(--incl "$INCL")
/usr/bin/python3 "$here/bench/http-proxy/callgrind-core.py" "$dir/cg.$n1" "$dir/cg.$n2" "$n1" "$n2" "$top" "${maps[@]}" | tee "$dir/report.txt"
