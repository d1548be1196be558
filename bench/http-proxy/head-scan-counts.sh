#!/usr/bin/env bash
# Whole-process instructions (callgrind Ir) of head-scan-harness.mjs at N and 2N pairs of heads
# for each built checkout given, and (Ir(2N) - Ir(N)) / N a pair: the head scanner's crossing
# and scan as the decoder calls them, start-up subtracted (issue 18). Untimed: run it polite.
# N below ~20,000 reads node start-up noise (a few million Ir run to run), not the heads.
# Usage: bench/http-proxy/head-scan-counts.sh [-n N=20000] <checkout>...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
n=20000
if [ "${1:-}" = "-n" ]; then n=$2; shift 2; fi
[ $# -gt 0 ] || { echo "usage: $0 [-n N] <checkout>..." >&2; exit 2; }
out=$(mktemp -d "${TMPDIR:-/tmp}/head-scan-counts-XXXXXX")
for tree in "$@"; do
  ir=()
  for k in "$n" $((2 * n)); do
    taskset -c "${CPU:-1}" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
      node "$here/head-scan-harness.mjs" "$tree" "$k" >"$out/out" 2>"$out/err"
    ir+=("$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/err")")
  done
  echo "$tree: Ir(N=$n) ${ir[0]}, Ir(N=$((2 * n))) ${ir[1]}, a pair of heads $(( (ir[1] - ir[0]) / n )).$(( (ir[1] - ir[0]) % n * 10 / n ))"
done
rm -rf "$out"
