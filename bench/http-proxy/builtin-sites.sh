#!/usr/bin/env bash
# Calls per proxied request of the builtins builtin-sites.mjs wraps (hasOwnProperty, bind,
# TypedArray set/subarray, typed-array and DataView constructors, Set.add), by the source line
# that made them: apps/proxy/bench/proxy-core.ts run twice (N1 and N2 requests, one round each)
# with the preload, and the difference per request printed (start-up calls cancel). Loch's own
# calls only: Node's library calls its primordials, which no preload can wrap (issue 18).
# Usage: bench/http-proxy/builtin-sites.sh [size=128] [n1=2000] [n2=6000] [proxy-core flags...]
#   e.g. bench/http-proxy/builtin-sites.sh 128 2000 6000 --log-file X --metrics
# (`--log-file X`: each run writes its own log under the run dir.) Counting only: no time read
# with the preload loaded means anything.
set -euo pipefail
size=${1:-128}
n1=${2:-2000}
n2=${3:-6000}
shift 3 || true
here=$(cd "$(dirname "$0")/../.." && pwd)
dir=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/builtin-sites-XXXXXX")}
mkdir -p "$dir"
for n in "$n1" "$n2"; do
  args=()
  for a in "$@"; do
    if [ "${#args[@]}" -gt 0 ] && [ "${args[-1]}" = "--log-file" ]; then args+=("$dir/access-$n.log"); continue; fi
    args+=("$a")
  done
  (cd "$here/apps/proxy" && node --conditions=@loch/source --import tsx \
    --import ../../bench/http-proxy/builtin-sites.mjs bench/proxy-core.ts "$n" --rounds 1 --size "$size" "${args[@]}" \
    >"$dir/out.$n" 2>"$dir/sites.$n")
done
/usr/bin/python3 - "$dir/sites.$n1" "$dir/sites.$n2" "$n1" "$n2" <<'PY'
import sys
def load(p):
    d = {}
    for line in open(p):
        if line.startswith("SITE\t"):
            _, n, k = line.rstrip("\n").split("\t", 2)
            d[k] = int(n)
    return d
a, b = load(sys.argv[1]), load(sys.argv[2])
per = (int(sys.argv[4]) - int(sys.argv[3]))
rows = sorted((((b.get(k, 0) - a.get(k, 0)) / per), k) for k in set(a) | set(b))
print("calls/request  builtin  caller (source line)")
for v, k in sorted(rows, reverse=True):
    if abs(v) >= 0.01:
        print(f"{v:12.2f}  {k}")
PY
