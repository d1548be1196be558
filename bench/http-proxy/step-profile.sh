#!/usr/bin/env bash
# Where the 1 -> 2 worker step goes (issue 18): cpu-clock samples of every loch thread (no PMU
# needed) at 1 worker and at 2, per request, by DSO and symbol, and the rows that grew most.
# Layout: wrk -t1 -cCONNS on CPU 0 -> loch (1 worker on CPUS_1W, default 1; 2 workers on CPUS_2W,
# default 1: both on one core, where the step is largest, per-request-2026-12-07f.md) -> one nginx
# worker serving static files on CPU 0; loch as shipped (access log, metrics).
# Per worker count: a fresh loch, a WARM s warm-up, then SECONDS of wrk under
# `perf record -e cpu-clock -F FREQ -p <loch>`; us per request of a row = its samples / FREQ /
# requests. V8's generated code has no symbols unless PERF_MAP=1 (node --perf-basic-prof).
# Usage: bench/http-proxy/step-profile.sh [seconds=5] [warm=5] [size=128] [conns=64] [freq=1999]
# Env: TREE (a built clone; default this tree), CPUS_1W, CPUS_2W, PERF_MAP, YOUNG. Needs perf, wrk, nginx.
set -euo pipefail
seconds=${1:-5}
warm=${2:-5}
size=${3:-128}
conns=${4:-64}
freq=${5:-1999}
here=$(cd "$(dirname "$0")" && pwd)
tree=${TREE:-$(cd "$here/../.." && pwd)}
. "$here/lib.sh"
trap cleanup EXIT
dir=$(run_dir step-profile)
echo "run dir: $dir (tree $tree)" >&2
static_backend "$dir" "$size" 0
node_args=''
[ "${PERF_MAP:-0}" = 1 ] && node_args='--perf-basic-prof'
for n in 1 2; do
  cpu=${CPUS_1W:-1}
  [ "$n" -gt 1 ] && cpu=${CPUS_2W:-1}
  port=$(free_port)
  p="$dir/loch-$n"
  mkdir -p "$p/logs"
  loch_bench_config "$p/loch.toml" "$port" "$upstream" "$p/logs/access.log"
  sed -i "s/^workers = 1$/workers = $n/" "$p/loch.toml"
  # YOUNG=3m: runtime.worker_young_generation_bytes (default: the shipped 24m).
  [ -n "${YOUNG:-}" ] && sed -i "s/^cpu_affinity = false$/cpu_affinity = false\nworker_young_generation_bytes = \"$YOUNG\"/" "$p/loch.toml"
  # shellcheck disable=SC2086
  (cd "$tree/apps/proxy" && exec taskset -c "$cpu" node $node_args dist/bin.js run -c "$p/loch.toml") >"$p/out" 2>&1 &
  lpid=$!
  pids+=("$lpid")
  wait_http "$port" "/$size"
  url="http://127.0.0.1:$port/$size"
  taskset -c 0 wrk -t1 -c"$conns" -d"${warm}s" "$url" >/dev/null
  perf record -q -e cpu-clock -F "$freq" -p "$lpid" -o "$p/perf.data" >/dev/null 2>&1 &
  perf_pid=$!
  sleep 0.3
  taskset -c 0 wrk -t1 -c"$conns" -d"${seconds}s" "$url" >"$p/wrk"
  kill -INT "$perf_pid"
  wait "$perf_pid" || true
  kill "$lpid"
  wait "$lpid" 2>/dev/null || true
  perf report -i "$p/perf.data" --stdio --no-children --sort dso,sym -F overhead,sample,dso,sym 2>/dev/null \
    | grep -v '^#' | grep -v '^$' >"$p/report.txt" || true
  awk '/requests in/ {print $1}' "$p/wrk" >"$p/requests"
done
/usr/bin/python3 - "$dir" "$freq" <<'PY'
import re, sys
d, freq = sys.argv[1], int(sys.argv[2])
rows, tot = {}, {}
for n in (1, 2):
    req = int(open(f"{d}/loch-{n}/requests").read())
    for line in open(f"{d}/loch-{n}/report.txt"):
        m = re.match(r"\s*[\d.]+%\s+(\d+)\s+(\S+)\s+\[(.)\]\s+(.*)$", line)
        if not m:
            continue
        us = int(m.group(1)) / freq / req * 1e6
        dso, sym = m.group(2), m.group(4).strip()
        if dso.startswith("[JIT]") or sym.startswith("0x"):
            sym = "(generated code)" if not dso.startswith("[kernel") else sym
            dso = "[JIT]" if dso.startswith("[JIT]") or dso == "[unknown]" else dso
        key = (dso, sym)
        rows.setdefault(key, [0.0, 0.0])[n - 1] += us
        tot[(n, dso)] = tot.get((n, dso), 0.0) + us
print(f"us per request, 1 worker -> 2 workers (cpu-clock, {freq} Hz)")
print("| DSO | 1w | 2w | step |\n|---|---|---|---|")
dsos = sorted({k[1] for k in tot}, key=lambda x: -(tot.get((2, x), 0) - tot.get((1, x), 0)))
for x in dsos:
    a, b = tot.get((1, x), 0), tot.get((2, x), 0)
    print(f"| {x} | {a:.2f} | {b:.2f} | {b - a:+.2f} |")
a = sum(v for (n, _), v in tot.items() if n == 1); b = sum(v for (n, _), v in tot.items() if n == 2)
print(f"| all | {a:.2f} | {b:.2f} | {b - a:+.2f} ({b / a:.3f}x) |")
print("\n| DSO | symbol | 1w | 2w | step | 2w/1w |\n|---|---|---|---|---|---|")
for (dso, sym), (a, b) in sorted(rows.items(), key=lambda kv: -(kv[1][1] - kv[1][0]))[:25]:
    print(f"| {dso} | {sym[:60]} | {a:.3f} | {b:.3f} | {b - a:+.3f} | {(b / a if a else float('inf')):.2f}x |")
print("\nlargest rows at 1 worker, with their ratio:")
print("| DSO | symbol | 1w | 2w | 2w/1w |\n|---|---|---|---|---|")
for (dso, sym), (a, b) in sorted(rows.items(), key=lambda kv: -kv[1][0])[:25]:
    print(f"| {dso} | {sym[:60]} | {a:.3f} | {b:.3f} | {(b / a if a else float('inf')):.2f}x |")
PY
