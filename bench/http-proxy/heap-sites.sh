#!/usr/bin/env bash
# JavaScript heap bytes a proxied HTTP/1.1 request allocates, by allocation site, in process
# (issue 18): apps/proxy/bench/proxy-core.ts bundled (as callgrind-core.sh bundles it) and run
# twice, N1 and N2 requests, under V8's sampling heap profiler keeping collected objects
# (heap-sites-preload.cjs); heap-sites.py prints the difference per request by site (function
# and its two callers). Every young-generation byte is scavenge work.
#
# Usage: bench/http-proxy/heap-sites.sh [size=128] [n1=5000] [n2=20000] [flags...]
#   flags go to proxy-core.ts (as shipped: --log-file X --metrics).
# Env: OUT (dir), BUNDLE (a bundle made before), TOP (sites listed, default 40),
# LOCH_HEAP_INTERVAL (sampling interval in bytes, default 32).
set -euo pipefail
size=${1:-128}
n1=${2:-5000}
n2=${3:-20000}
shift 3 || true
here=$(cd "$(dirname "$0")/../.." && pwd)
. "$here/bench/http-proxy/core-bundle.sh"
core_run_dir heap-sites
core_bundle
# Node runs in the run dir: what it writes to its working directory stays there.
cd "$dir"
for n in "$n1" "$n2"; do
  core_args "$n" "$@"
  LOCH_HEAP_OUT="$dir/sites.$n.json" node --require "$here/bench/http-proxy/heap-sites-preload.cjs" \
    "$dir/core.mjs" "$n" --size "$size" --rounds 1 "${core_args[@]}"
done
/usr/bin/python3 "$here/bench/http-proxy/heap-sites.py" "$dir/sites.$n1.json" "$dir/sites.$n2.json" "$n1" "$n2" "${TOP:-40}" | tee "$dir/report.txt"
