# One free TCP port for a benchmark's server, sourced by bench scripts (bench/thrift/counts.sh,
# bench/https/lib.sh). It is taken above the kernel's ephemeral range: a port the OS picks from
# that range can be taken by another process's outgoing connection before the server binds it
# (under valgrind a server starts a minute or more later: two CALLGRIND runs failed with
# EADDRINUSE while other benchmarks ran), and the ports below it are the tests'
# (packages/http/test/free-port.ts), which may run meanwhile. Bounded tries; fails loudly.
# Unlike free-port.ts it cannot remember what it gave ($(free_port) runs in a subshell): two calls
# before the first port is bound may return the same port (~1 in 4,500 with this range); a script
# that needs two ports at once checks they differ.
free_port() {
  /usr/bin/python3 - <<'PY'
import random, socket, sys
high = int(open('/proc/sys/net/ipv4/ip_local_port_range').read().split()[1])
if high >= 65535:
    sys.exit('free_port: the ephemeral range reaches 65535: no port above it')
for _ in range(200):
    port = random.randrange(high + 1, 65536)
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
    sys.exit('free_port: no free port above the ephemeral range in 200 tries')
PY
}
