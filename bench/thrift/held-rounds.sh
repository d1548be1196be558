#!/usr/bin/env bash
# A held A/B of two built checkouts against nginx stream, in rotated rounds (issue 15): per round
# `ROOT=<tree> NOPERF=1 WINDOWS=3 counts.sh SIZE 4 loch 3 64` for A and B and the same for nginx
# stream, order rotated (A B nginx / B nginx A / nginx A B); each run's window lines go to
# OUT/rows.txt tagged "round N <label>". Run it under the machine's hold, a few rounds a hold
# (FROM..TO; ~55 s a round at 10 KiB), then summarize with held-rounds.py OUT/rows.txt LA LB.
# A tree's environment can differ too: ENV_A / ENV_B (e.g. "LOCH_FOO=1") are set for its runs.
# Usage: A=<tree> B=<tree> [LA=a] [LB=b] [SIZE=10240] [FROM=1] [TO=5] OUT=<dir> bench/thrift/held-rounds.sh
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
la=${LA:-a} lb=${LB:-b} size=${SIZE:-10240} out=${OUT:?OUT=<dir>}
mkdir -p "$out"
cd "$here"
for r in $(seq "${FROM:-1}" "${TO:-5}"); do
  order=("$la $lb nginx" "$lb nginx $la" "nginx $la $lb")
  for t in ${order[$(((r - 1) % 3))]}; do
    if [ "$t" = nginx ]; then
      NOPERF=1 WINDOWS=3 bench/thrift/counts.sh "$size" 4 nginx 3 64 >"$out/r$r-$t.log" 2>&1
    elif [ "$t" = "$la" ]; then
      # shellcheck disable=SC2086 # ENV_A: assignments
      env ${ENV_A:-} ROOT="$A" NOPERF=1 WINDOWS=3 bench/thrift/counts.sh "$size" 4 loch 3 64 >"$out/r$r-$t.log" 2>&1
    else
      # shellcheck disable=SC2086
      env ${ENV_B:-} ROOT="$B" NOPERF=1 WINDOWS=3 bench/thrift/counts.sh "$size" 4 loch 3 64 >"$out/r$r-$t.log" 2>&1
    fi
    grep '^== .*window' "$out/r$r-$t.log" | sed "s/^/round $r $t /" >>"$out/rows.txt"
  done
done
