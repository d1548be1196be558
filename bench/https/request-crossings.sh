#!/usr/bin/env bash
# JavaScript <-> native crossings per proxied request, HTTPS against plain HTTP on one loch (issue
# 13: "A TLS request must cost no more JavaScript<->native crossings than a plain one"): lib.sh's
# setup (1 worker, an HTTPS and a plain listener in front of one node:http backend answering SIZE
# bytes), loch with count-crossings.cjs preloaded in every thread (each call into the addon counted
# by name, and the ring's completion callbacks); the Python client makes WARM requests on a
# connection, then COUNT more, one at a time, HTTPS and HTTP windows alternating (ROUNDS each).
# Counts, not times: what one request costs with nothing to batch it with.
#
# Usage: bench/https/request-crossings.sh [size=3269] [warm=2000] [count=1000]
# Env: ROUNDS (2), LOCH_TLS_RECORDS (openssl or loch), LOCH_ROOT (as request-counts.sh),
# LOCH_NATIVE_PATH (the addon to load, as @loch/native's loader).
set -euo pipefail
size=${1:-3269}
warm=${2:-2000}
count=${3:-1000}
rounds=${ROUNDS:-2}
records=${LOCH_TLS_RECORDS:-loch}
here=$(cd "$(dirname "$0")" && pwd)
root=${LOCH_ROOT:-$(cd "$here/../.." && pwd)}
# shellcheck source=lib.sh
. "$here/lib.sh"
client="$here/callgrind-requests.py"
https_setup request-crossings "$size"
mkdir "$dir/counts"
export LOCH_BENCH_CROSSINGS="$dir/counts" LOCH_ROOT="$root"
https_start loch env NODE_OPTIONS="${NODE_OPTIONS:-} --require $here/count-crossings.cjs"
https_wait 120
for kind in tls plain; do mkfifo "$dir/go.$kind"; done
python3 "$client" "$port" "$count" "/$size" tls "$warm" <"$dir/go.tls" >"$dir/client.tls" &
tls_client=$!
exec 3>"$dir/go.tls"
python3 "$client" "$plain" "$count" "/$size" plain "$warm" <"$dir/go.plain" >"$dir/client.plain" &
plain_client=$!
exec 4>"$dir/go.plain"
until grep -q warm "$dir/client.tls" 2>/dev/null && grep -q warm "$dir/client.plain" 2>/dev/null; do sleep 0.5; done
snapshot() { sleep 0.5; cat "$dir"/counts/*.json | python3 -c '
import json, sys
total = {}
for line in sys.stdin.read().replace("}{", "}\n{").splitlines():
    for k, v in json.loads(line).items():
        total[k] = total.get(k, 0) + v
print(json.dumps(total))'; }
window() { # fd client-output kind
  local before
  before=$(grep -c done "$2" || true)
  snapshot >"$dir/before.$3.$r"
  echo go >&"$1"
  until [ "$(grep -c done "$2" || true)" -gt "$before" ]; do sleep 0.2; done
  snapshot >"$dir/after.$3.$r"
}
for r in $(seq 1 "$rounds"); do
  window 3 "$dir/client.tls" tls
  window 4 "$dir/client.plain" plain
done
exec 3>&- 4>&-
wait "$tls_client" "$plain_client"
https_stop
echo "loch (LOCH_TLS_RECORDS=$records), 1 worker, $size B, calls into the addon per request over windows of $count on one warm connection after $warm (HTTPS, HTTP; every thread):"
python3 - "$dir" "$rounds" "$count" <<'PY'
import json, sys
d, rounds, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def diff(kind, r):
    a = json.load(open(f"{d}/before.{kind}.{r}"))
    b = json.load(open(f"{d}/after.{kind}.{r}"))
    return {k: (b.get(k, 0) - a.get(k, 0)) / n for k in b}
for r in range(1, rounds + 1):
    t, p = diff("tls", r), diff("plain", r)
    print(f"round {r}:")
    for k in sorted(set(t) | set(p), key=lambda k: -(t.get(k, 0) + p.get(k, 0))):
        if t.get(k, 0) or p.get(k, 0):
            print(f"  {k:24s} {t.get(k, 0):8.2f} {p.get(k, 0):8.2f}")
    print(f"  {'total':24s} {sum(t.values()):8.2f} {sum(p.values()):8.2f}")
PY
rm -rf "$dir"
