#!/usr/bin/env python3
"""Client of pingpong-server.ts: N sequential round trips of SIZE bytes on one connection (the
next message is sent only once the whole echo came back), so the server is woken once per
message. Blocking sockets, TCP_NODELAY; prints the round trips and the seconds they took.

Usage: pingpong-client.py <port> <n> [size=64]
"""
import socket
import sys
import time

port, n = int(sys.argv[1]), int(sys.argv[2])
size = int(sys.argv[3]) if len(sys.argv) > 3 else 64
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
dt = time.monotonic() - t0
s.close()
print(f"round trips {n} in {dt:.3f} s ({dt / max(n, 1) * 1e6:.1f} us each)")
