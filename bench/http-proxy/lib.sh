# What bench/http-proxy's scripts share (sourced, not run; sizes-probe.sh so far, the older ones
# when next touched):
#   free_port               a port for a server: bench/lib/free-port.sh (above the ephemeral range,
#                           bounded tries)
#   run_dir NAME            makes and prints a new directory under $TMPDIR (or /tmp), readable by
#                           nginx's workers
#   wait_http PORT PATH [TRIES]   waits (0.1 s a try, 300 tries unless set) until PATH answers on
#                           127.0.0.1:PORT; exits 1 saying which port never did
#   pids, cleanup           the processes a script started (pids+=($!)); `trap cleanup EXIT` ends
#                           them, each by its own id

# free_port: bench/lib/free-port.sh.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/free-port.sh"

run_dir() { # NAME
  local d
  d=$(mktemp -d "${TMPDIR:-/tmp}/$1-XXXXXX")
  chmod 755 "$d"
  echo "$d"
}

wait_http() { # PORT PATH [TRIES]
  for _ in $(seq 1 "${3:-300}"); do
    if curl -sf -m 5 -o /dev/null "http://127.0.0.1:$1$2"; then return 0; fi
    sleep 0.1
  done
  echo "port $1 never answered $2" >&2
  exit 1
}

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
