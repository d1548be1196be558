# The client of callgrind-requests.sh: N keep-alive requests, one after another, over one TLS 1.3
# connection (AES-128-GCM) to 127.0.0.1:PORT, each `GET PATH` read to the end of its
# Content-Length body. Prints the count at the end. Not a load generator (wrk is).
# Usage: callgrind-requests.py PORT N PATH
import socket
import ssl
import sys

port, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.minimum_version = ssl.TLSVersion.TLSv1_3
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
s = context.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
request = f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
buffered = b""
for _ in range(n):
    s.sendall(request)
    while b"\r\n\r\n" not in buffered:
        buffered += s.recv(65536)
    head, _, buffered = buffered.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(buffered) < length:
        buffered += s.recv(65536)
    buffered = buffered[length:]
s.close()
print("done", n, flush=True)
