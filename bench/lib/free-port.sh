# One free TCP port for a benchmark's server, sourced by bench scripts (bench/thrift/counts.sh,
# bench/https/lib.sh). It is taken above the kernel's ephemeral range: a port the OS picks from
# that range can be taken by another process's outgoing connection before the server binds it
# (under valgrind a server starts a minute or more later: two CALLGRIND runs failed with
# EADDRINUSE while other benchmarks ran), and the ports below it are the tests'
# (packages/http/test/free-port.ts), which may run meanwhile. Bounded tries; fails loudly.
# Unlike free-port.ts it cannot remember what it gave ($(free_port) runs in a subshell): two calls
# before the first port is bound may return the same port (~1 in 4,500 with this range); a script
# that needs two ports at once checks they differ.
# FREE_PORT_RANGE=LO-HI (optional) takes the port from that range instead: a session that gives
# each of its concurrent runs a range of its own (bench/http-proxy/deopt-windows.sh's PORTS).
free_port() {
  /usr/bin/python3 - "${FREE_PORT_RANGE:-}" <<'PY'
import random, socket, sys
if sys.argv[1]:
    try:
        lo, hi = map(int, sys.argv[1].split('-'))
    except ValueError:
        sys.exit('free_port: FREE_PORT_RANGE must be LO-HI, got ' + repr(sys.argv[1]))
    if not 1024 <= lo <= hi <= 65535:
        sys.exit('free_port: FREE_PORT_RANGE must be LO-HI with 1024 <= LO <= HI <= 65535, got ' + sys.argv[1])
    where = 'in ' + sys.argv[1]
else:
    high = int(open('/proc/sys/net/ipv4/ip_local_port_range').read().split()[1])
    if high >= 65535:
        sys.exit('free_port: the ephemeral range reaches 65535: no port above it')
    lo, hi, where = high + 1, 65535, 'above the ephemeral range'
for _ in range(200):
    port = random.randrange(lo, hi + 1)
    s = socket.socket()
    try:
        s.bind(('127.0.0.1', port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
else:
    sys.exit('free_port: no free port ' + where + ' in 200 tries')
PY
}
