#!/usr/bin/env python3
"""Client of pingpong-server.ts: N sequential round trips of SIZE bytes on one connection (the
next message is sent only once the whole echo came back), so the server is woken once per
message. With GAP_MS > 0 it sleeps that long after each echo, so the server's thread is asleep in
epoll when every message arrives, however slow the server runs (under callgrind, say): each round
trip is then one wakeup of the thread, the regime of a quiet machine or few connections. With 0
the next message is often there before the server's flush finished (no wakeup between them).
Blocking sockets, TCP_NODELAY; prints the round trips and the seconds they took.

Usage: pingpong-client.py <port> <n> [size=64] [gap_ms=0]
"""
import socket
import sys
import time

port, n = int(sys.argv[1]), int(sys.argv[2])
size = int(sys.argv[3]) if len(sys.argv) > 3 else 64
gap = (float(sys.argv[4]) if len(sys.argv) > 4 else 0.0) / 1000
msg = bytes(range(256)) * (size // 256 + 1)
msg = msg[:size]
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
    if gap > 0:
        time.sleep(gap)
dt = time.monotonic() - t0
s.close()
print(f"round trips {n} in {dt:.3f} s ({dt / max(n, 1) * 1e6:.1f} us each, {gap * 1e3:g} ms gaps)")
