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
dir=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/heap-sites-XXXXXX")}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
echo "run dir: $dir" >&2
esbuild=${ESBUILD:-$(ls -d "$here"/node_modules/.pnpm/esbuild@*/node_modules/esbuild/bin/esbuild | tail -1)}
if [ -n "${BUNDLE:-}" ]; then
  cp "$BUNDLE" "$dir/core.mjs"
else
  (cd "$here/apps/proxy" && "$esbuild" bench/proxy-core.ts --bundle --platform=node --format=esm \
    --conditions=@loch/source --target=node20 --log-level=warning \
    --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" \
    --outfile="$dir/core.mjs")
fi
export LOCH_NATIVE_PATH="$here/native/build/Release/loch_native.node"
for n in "$n1" "$n2"; do
  log_args=()
  for a in "$@"; do
    if [ "$a" = "--log-file" ]; then log_args+=("$a"); continue; fi
    if [ "${#log_args[@]}" -gt 0 ] && [ "${log_args[-1]}" = "--log-file" ]; then log_args+=("$dir/access-$n.log"); continue; fi
    log_args+=("$a")
  done
  LOCH_HEAP_OUT="$dir/sites.$n.json" node --require "$here/bench/http-proxy/heap-sites-preload.cjs" \
    "$dir/core.mjs" "$n" --size "$size" --rounds 1 "${log_args[@]}"
done
/usr/bin/python3 "$here/bench/http-proxy/heap-sites.py" "$dir/sites.$n1.json" "$dir/sites.$n2.json" "$n1" "$n2" "${TOP:-40}" | tee "$dir/report.txt"
