#!/usr/bin/env bash
# Instructions per loop turn of the ring's machinery (wakeups-turn.mjs), counted by callgrind:
# two runs of N1 and N2 turns after the same warm-up, (Ir2 - Ir1) / (N2 - N1) for the process and
# per function (self and inclusive, callgrind_annotate), so startup and JIT warm-up cancel out.
# Counts need no held machine (valgrind counts instructions whatever the load).
#
# Usage: ROOT=<tree> bench/thrift/wakeups-turn.sh [n1=2000] [n2=12000] [warm=20000] [top=30]
# ROOT defaults to this tree; the tree's native addon must be built. Output dir on stderr.
set -euo pipefail
root=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
n1=${1:-2000}
n2=${2:-12000}
warm=${3:-20000}
top=${4:-30}
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/wakeups-turn-XXXXXX")
echo "run dir: $dir" >&2
for n in "$n1" "$n2"; do
  valgrind --tool=callgrind --callgrind-out-file="$dir/cg.$n" --smc-check=all-non-file \
    node "$here/wakeups-turn.mjs" "$root/native/index.js" "$n" "$warm" >"$dir/out.$n" 2>"$dir/vg.$n"
done
for mode in no yes; do
  for n in "$n1" "$n2"; do
    callgrind_annotate --inclusive="$mode" --threshold=100 "$dir/cg.$n" >"$dir/annotate-$mode.$n" 2>/dev/null
  done
done
/usr/bin/python3 - "$dir" "$n1" "$n2" "$top" <<'EOF'
import re, sys
d, n1, n2, top = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def rows(path):
    out, total = {}, None
    for line in open(path):
        m = re.match(r'\s*([\d,]+) \([^)]*\)\s+(\S.*)$', line) or re.match(r'\s*([\d,]+)\s+(\S.*)$', line)
        if not m:
            continue
        ir = int(m.group(1).replace(',', ''))
        name = m.group(2)
        if 'PROGRAM TOTALS' in name:
            total = ir
            continue
        name = re.sub(r'^[^:]*:', '', name, count=1) if ':' in name.split('(')[0] else name
        out[name] = out.get(name, 0) + ir
    return out, total
turns = n2 - n1
for mode, label in (('no', 'self'), ('yes', 'inclusive')):
    a, ta = rows(f'{d}/annotate-{mode}.{n1}')
    b, tb = rows(f'{d}/annotate-{mode}.{n2}')
    if mode == 'no':
        print(f'process: {(tb - ta) / turns:,.0f} Ir per turn ({n1} and {n2} turns after the warm-up)')
    diff = sorted(((b.get(k, 0) - a.get(k, 0)) / turns, k) for k in set(a) | set(b))
    diff.reverse()
    print(f'\n| function ({label}) | Ir per turn |\n|---|---|')
    for v, k in diff[:top]:
        print(f'| `{k[:110]}` | {v:,.0f} |')
EOF
