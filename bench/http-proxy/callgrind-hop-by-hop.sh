#!/usr/bin/env bash
# removeHopByHop's instructions per call on nginx's response head (issue 18): hop-by-hop.ts
# bundled with esbuild and run under callgrind with N1 and N2 heads, node's perf map naming the
# JIT code; callgrind-core.py prints the per-head difference by function.
# Usage: bench/http-proxy/callgrind-hop-by-hop.sh [n1=20000] [n2=80000]   (OUT: run dir)
set -euo pipefail
n1=${1:-20000}
n2=${2:-80000}
here=$(cd "$(dirname "$0")/../.." && pwd)
dir=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/callgrind-hop-XXXXXX")}
mkdir -p "$dir"
esbuild=${ESBUILD:-$(ls -d "$here"/node_modules/.pnpm/esbuild@*/node_modules/esbuild/bin/esbuild | tail -1)}
(cd "$here/packages/http" && "$esbuild" "$here/bench/http-proxy/hop-by-hop.ts" --bundle --platform=node \
  --format=esm --conditions=@loch/source --target=node20 --log-level=warning \
  --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" \
  --outfile="$dir/hop.mjs")
export LOCH_NATIVE_PATH="$here/native/build/Release/loch_native.node"
for n in "$n1" "$n2"; do
  taskset -c "${CPU:-1}" valgrind --tool=callgrind --smc-check=all-non-file \
    --callgrind-out-file="$dir/cg.$n" node --perf-basic-prof "$dir/hop.mjs" "$n" >"$dir/out.$n" 2>"$dir/err.$n" &
  pid=$!
  wait "$pid"
  mv "/tmp/perf-$pid.map" "$dir/map.$n"
done
/usr/bin/python3 "$here/bench/http-proxy/callgrind-core.py" "$dir/cg.$n1" "$dir/cg.$n2" "$n1" "$n2" 12 \
  --maps "$dir/map.$n1" "$dir/map.$n2" | tee "$dir/report.txt"
