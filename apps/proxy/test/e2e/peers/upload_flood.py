# The abusive uploaders of issue 16: N connections to 127.0.0.1:PORT, each sending one POST to
# PATH with a huge Content-Length and then body bytes as fast as the kernel takes them, until
# killed (or loch answers and closes). Prints "connected" once every connection is open.
# Usage: upload_flood.py PORT N PATH
import select
import socket
import sys

port, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
head = (
    "POST %s HTTP/1.1\r\nHost: flood\r\nContent-Length: 1099511627776\r\n\r\n" % path
).encode()
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(head)
    s.setblocking(False)
    socks.append(s)
print("connected", flush=True)
chunk = b"u" * 65536
while socks:
    readable, writable, _ = select.select(socks, socks, [], 1.0)
    for s in readable:
        try:
            if not s.recv(65536):
                socks.remove(s)
                s.close()
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            socks.remove(s)
    for s in writable:
        if s not in socks:
            continue
        try:
            s.send(chunk)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            socks.remove(s)
