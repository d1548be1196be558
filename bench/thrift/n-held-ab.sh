#!/usr/bin/env bash
# A held A/B of two built checkouts, loch only, in rounds of alternating order (issue 15; page
# bench/thrift/readings-2026-12-07n.md): held-rounds.sh without its nginx run, so that a hold
# fits more rounds of the pair. Per round `ROOT=<tree> NOPERF=1 WINDOWS=3 counts.sh SIZE 4 loch
# WARM 64` for A then B (odd rounds) or B then A (even rounds); each run's window lines go to
# OUT/rows.txt tagged "round N <label>", the format held-rounds.py reads (its A/B column; no
# nginx). Run it under the machine's hold (~30 s a run at 10 KiB with WARM 10).
# Usage: A=<tree> B=<tree> [LA=a] [LB=b] [SIZE=10240] [WARM=10] [FROM=1] [TO=6] OUT=<dir>
#        bench/thrift/n-held-ab.sh; then bench/thrift/held-rounds.py OUT/rows.txt LA LB
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
la=${LA:-a} lb=${LB:-b} size=${SIZE:-10240} warm=${WARM:-10} out=${OUT:?OUT=<dir>}
mkdir -p "$out"
cd "$here"
for r in $(seq "${FROM:-1}" "${TO:-6}"); do
  if [ $((r % 2)) = 1 ]; then order="$la $lb"; else order="$lb $la"; fi
  for t in $order; do
    if [ "$t" = "$la" ]; then tree=$A; else tree=$B; fi
    # A run that fails, or reads fewer windows than asked, stops the A/B: a round read with one
    # side missing would be paired wrongly by held-rounds.py (REVIEW F274).
    ROOT="$tree" NOPERF=1 WINDOWS=3 bench/thrift/counts.sh "$size" 4 loch "$warm" 64 >"$out/r$r-$t.log" 2>&1 ||
      { echo "round $r $t failed: $out/r$r-$t.log" >&2; exit 1; }
    rows=$(grep '^== .*window' "$out/r$r-$t.log" || true)
    if [ "$(printf '%s\n' "$rows" | grep -c .)" != 3 ]; then
      echo "round $r $t: expected 3 window lines in $out/r$r-$t.log" >&2
      exit 1
    fi
    printf '%s\n' "$rows" | sed "s/^/round $r $t /" >>"$out/rows.txt"
  done
done
