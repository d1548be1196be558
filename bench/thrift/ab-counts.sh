#!/usr/bin/env bash
# An interleaved A/B of two built checkouts on the Thrift relay, counted with counts.sh (issue 15):
# for each run, size and connection count, loch from checkout A then from checkout B (ROOT=...),
# so drifts of the machine's load fall on both sides alike. Every run's counts.sh output is kept;
# the summary prints each run and the medians per side: calls in the window, syscalls,
# epoll_pwait and io_uring_enter per call, and the process's CPU us per call (user + system, 100 Hz
# ticks, perf attached: compare the sides of one A/B, not with pages taken without perf).
#
# Usage: bench/thrift/ab-counts.sh <root-a> <root-b> [runs=5] [sizes=32,10240] [conns=8,64] [seconds=4] [warm=3]
# Each checkout needs its own native build (native/build/Release/loch_native.node in it).
# Env: OUT (dir for the outputs; default a new one under $TMPDIR).
set -euo pipefail
a=$(cd "${1:?root a}" && pwd)
b=$(cd "${2:?root b}" && pwd)
runs=${3:-5}
sizes=${4:-32,10240}
conns=${5:-8,64}
seconds=${6:-4}
warm=${7:-3}
here=$(cd "$(dirname "$0")/../.." && pwd)
out=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/loch-thrift-ab-XXXXXX")}
mkdir -p "$out"
echo "outputs in $out" >&2
for run in $(seq 1 "$runs"); do
  for size in ${sizes//,/ }; do
    for c in ${conns//,/ }; do
      for side in a b; do
        root=$a
        [ "$side" = b ] && root=$b
        f="$out/$size-$c-$run-$side.txt"
        ROOT=$root "$here/bench/thrift/counts.sh" "$size" "$seconds" loch "$warm" "$c" >"$f" 2>&1 || echo "run failed: $f" >&2
      done
    done
  done
done
/usr/bin/python3 - "$out" "$a" "$b" <<'EOF'
import glob, os, re, statistics, sys
out, roots = sys.argv[1], {'a': sys.argv[2], 'b': sys.argv[3]}
rows = {}
for path in sorted(glob.glob(os.path.join(out, '*-*-*-?.txt'))):
    size, conns, run, side = os.path.basename(path)[:-4].split('-')
    text = open(path).read()
    m = re.search(r'(\d+) calls in', text)
    cpu = re.search(r'user ([\d.]+) us, system ([\d.]+) us', text)
    sc = re.search(r'^syscalls ([\d.]+): (.*)$', text, re.M)
    if not (m and cpu and sc):
        print(f'{path}: incomplete'); continue
    by = dict((k, float(v)) for k, v in re.findall(r'(\w+) ([\d.]+)', sc.group(2)))
    rows.setdefault((int(size), int(conns)), {}).setdefault(side, []).append(
        (int(run), int(m.group(1)), float(sc.group(1)), by.get('epoll_pwait', 0.0), by.get('io_uring_enter', 0.0),
         float(cpu.group(1)) + float(cpu.group(2)), float(cpu.group(1)), float(cpu.group(2))))
print(f'A = {roots["a"]}, B = {roots["b"]}')
for (size, conns), sides in sorted(rows.items()):
    print(f'\n{size} B, {conns} connections: run side | calls | syscalls | epoll_pwait | io_uring_enter | cpu us (user+sys) per call')
    for side in 'ab':
        for r in sorted(sides.get(side, [])):
            print(f'  {r[0]} {side.upper()} | {r[1]} | {r[2]:.2f} | {r[3]:.2f} | {r[4]:.2f} | {r[5]:.1f} ({r[6]:.1f}+{r[7]:.1f})')
    for side in 'ab':
        rs = sides.get(side, [])
        if rs:
            med = [statistics.median(r[i] for r in rs) for i in range(1, 6)]
            print(f'  median {side.upper()} | {med[0]:.0f} | {med[1]:.2f} | {med[2]:.2f} | {med[3]:.2f} | {med[4]:.1f}')
EOF
