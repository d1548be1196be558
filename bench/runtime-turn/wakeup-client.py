#!/usr/bin/env python3
"""Client of bench/runtime/pingpong-server.ts that lets the server's thread fall asleep before
every message: N sequential round trips of SIZE bytes on one connection, GAP milliseconds of
sleep after each echo came back. So every round trip is one wakeup of the server's thread
(epoll, the ring's poll callback, its JavaScript, the flush), the regime of a quiet machine or a
proxy with few connections, whatever how slow the server runs (under callgrind, say). Blocking
sockets, TCP_NODELAY; prints the round trips and the seconds they took.

Usage: wakeup-client.py <port> <n> [size=64] [gap_ms=5]
"""
import socket
import sys
import time

port, n = int(sys.argv[1]), int(sys.argv[2])
size = int(sys.argv[3]) if len(sys.argv) > 3 else 64
gap = (float(sys.argv[4]) if len(sys.argv) > 4 else 5.0) / 1000
msg = (bytes(range(256)) * (size // 256 + 1))[:size]
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
t0 = time.monotonic()
for _ in range(n):
    s.sendall(msg)
    got = 0
    while got < size:
        b = s.recv(size - got)
        if not b:
            sys.exit("server closed early")
        got += len(b)
    time.sleep(gap)
dt = time.monotonic() - t0
s.close()
print(f"round trips {n} in {dt:.3f} s ({dt / max(n, 1) * 1e6:.1f} us each, {gap * 1e3:.1f} ms gaps)")
