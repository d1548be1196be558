# What the in-process counts of a proxied request share (sourced, not run: callgrind-core.sh,
# heap-sites.sh): apps/proxy/bench/proxy-core.ts as one esbuild bundle in a run dir, and its
# arguments for one run of N requests.
#   core_run_dir PREFIX     makes $OUT (or a new dir under $TMPDIR) and sets $dir to its absolute
#                           path; later runs `cd "$dir"` so node's working-directory files (V8
#                           isolate logs) stay there
#   core_bundle             $dir/core.mjs: $BUNDLE copied when set (a bundle made before, e.g. of
#                           another revision's sources), else the tree's proxy-core.ts bundled;
#                           exports LOCH_NATIVE_PATH
#   core_args N ARGS...     sets $core_args: proxy-core.ts's flags with a `--log-file` path made
#                           $dir/access-N.log (a log file per run: the two runs write the same bytes)
# Needs $here (the repository root).

core_run_dir() { # PREFIX
  dir=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/$1-XXXXXX")}
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  echo "run dir: $dir" >&2
}

core_bundle() {
  # esbuild is a dependency of tsx and vitest, not a bin of the workspace: its binary from the store.
  local esbuild=${ESBUILD:-$(ls -d "$here"/node_modules/.pnpm/esbuild@*/node_modules/esbuild/bin/esbuild | tail -1)}
  # One bundle: callgrind then counts no module loading through tsx, and V8 sees one script.
  if [ -n "${BUNDLE:-}" ]; then
    cp "$BUNDLE" "$dir/core.mjs"
  else
    (cd "$here/apps/proxy" && "$esbuild" bench/proxy-core.ts --bundle --platform=node --format=esm \
      --conditions=@loch/source --target=node20 --log-level=warning \
      --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" \
      --outfile="$dir/core.mjs")
  fi
  export LOCH_NATIVE_PATH="$here/native/build/Release/loch_native.node"
}

core_args() { # N ARGS...
  local n=$1 a
  shift
  core_args=()
  for a in "$@"; do
    if [ "$a" = "--log-file" ]; then core_args+=("$a"); continue; fi
    if [ "${#core_args[@]}" -gt 0 ] && [ "${core_args[-1]}" = "--log-file" ]; then core_args+=("$dir/access-$n.log"); continue; fi
    core_args+=("$a")
  done
}
