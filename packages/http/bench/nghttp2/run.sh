#!/usr/bin/env bash
# nghttp2 beside Loch's TypeScript HTTP/2 codec on the same bytes (issue 14's codec decision).
# Needs libnghttp2-dev (scripts/setup installs it). Prints nghttp2's numbers, then Loch's
# (vitest bench of h2-codec.bench.ts). Run from packages/http: bash bench/nghttp2/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
npx tsx --conditions=@loch/source bench/nghttp2/fixtures.ts "$dir"
cc -O2 -o "$dir/codec" bench/nghttp2/codec.c $(pkg-config --cflags --libs libnghttp2)
"$dir/codec" "$dir"
npx vitest bench --run bench/h2-codec.bench.ts
