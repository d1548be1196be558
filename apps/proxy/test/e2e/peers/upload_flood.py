# The abusive uploaders of issue 16: N connections to 127.0.0.1:PORT, each sending one POST to
# PATH with a Content-Length of BYTES (default 1 TiB: endless) and then body bytes as fast as the
# kernel takes them, until the body is sent and answered, or killed. Prints "connected" once every
# connection is open. Usage: upload_flood.py PORT N PATH [BYTES]
import select
import socket
import sys

port, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
size = int(sys.argv[4]) if len(sys.argv) > 4 else 1 << 40
head = ("POST %s HTTP/1.1\r\nHost: flood\r\nContent-Length: %d\r\n\r\n" % (path, size)).encode()
left = {}
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(head)
    s.setblocking(False)
    socks.append(s)
    left[s] = size
print("connected", flush=True)
chunk = b"u" * 65536
while socks:
    writers = [s for s in socks if left[s] > 0]
    readable, writable, _ = select.select(socks, writers, [], 1.0)
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
        if s not in socks or left[s] == 0:
            continue
        try:
            left[s] -= s.send(chunk[: min(len(chunk), left[s])])
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            socks.remove(s)
