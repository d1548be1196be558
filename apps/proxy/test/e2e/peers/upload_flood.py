# The abusive uploaders of issue 16: N connections to 127.0.0.1:PORT, each sending one POST to
# PATH with a Content-Length of BYTES (default 1 TiB: endless) and then body bytes as fast as the
# kernel takes them, until the body is sent and answered, or killed. With "tls" as the fifth
# argument each connection is HTTPS (TLS 1.3, the server's certificate not checked: the flood is
# what is tested). Prints "connected" once every connection is open.
# Usage: upload_flood.py PORT N PATH [BYTES] [tls]
import select
import socket
import ssl
import sys

port, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
size = int(sys.argv[4]) if len(sys.argv) > 4 else 1 << 40
secure = len(sys.argv) > 5 and sys.argv[5] == "tls"
head = ("POST %s HTTP/1.1\r\nHost: flood\r\nContent-Length: %d\r\n\r\n" % (path, size)).encode()
context = None
if secure:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
# Not yet taken by the kernel (TLS) or by the peer: try again on the next round.
WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
left = {}
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    if context is not None:
        s = context.wrap_socket(s, server_hostname="localhost")
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
        except WOULD_BLOCK:
            pass
        except OSError:
            socks.remove(s)
    for s in writable:
        if s not in socks or left[s] == 0:
            continue
        try:
            left[s] -= s.send(chunk[: min(len(chunk), left[s])])
        except WOULD_BLOCK:
            pass
        except OSError:
            socks.remove(s)
