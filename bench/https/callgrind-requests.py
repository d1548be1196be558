# The client of callgrind-requests.sh and request-counts.sh: N keep-alive requests, one after
# another, over one TLS 1.3 connection (AES-128-GCM) to 127.0.0.1:PORT, each `GET PATH` read to
# the end of its Content-Length body; with `plain`, the same over plain HTTP. With WARM > 0 it
# first makes WARM requests on the same connection, prints "warm" and waits for a line on stdin
# before the N counted ones, so a counting window holds no handshake or connection setup; every
# further line on stdin runs N more (prints "done N" after each), until stdin ends.
# Not a load generator (wrk is).
# Usage: callgrind-requests.py PORT N PATH [plain|tls] [WARM]
import socket
import ssl
import sys

port, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
plain = len(sys.argv) > 4 and sys.argv[4] == "plain"
warm = int(sys.argv[5]) if len(sys.argv) > 5 else 0
s = socket.create_connection(("127.0.0.1", port))
if not plain:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    s = context.wrap_socket(s, server_hostname="localhost")
request = f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
buffered = b""


def more():
    data = s.recv(65536)
    if not data:
        raise SystemExit("the server closed the connection")
    return data


def run(count):
    global buffered
    for _ in range(count):
        s.sendall(request)
        while b"\r\n\r\n" not in buffered:
            buffered += more()
        head, _, buffered = buffered.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(buffered) < length:
            buffered += more()
        buffered = buffered[length:]


if warm > 0:
    run(warm)
    print("warm", flush=True)
    while sys.stdin.readline():
        run(n)
        print("done", n, flush=True)
else:
    run(n)
    print("done", n, flush=True)
s.close()
