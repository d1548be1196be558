"""A raw HTTPS upstream on Python's ssl for loch's e2e tests (not a server to copy).

Answers every request with a close-delimited body (no Content-Length, not chunked) of
BODY_BYTES bytes, then ends the connection one of two ways, chosen by the request path:
  /notify...  TLS close_notify (SSLSocket.unwrap), then close: a complete body
  /cut...     a bare TCP shutdown, no close_notify: a truncation by RFC 8446 6.1
Any other path is answered with the SNI name the client sent and the connection's serial
number, Content-Length framed (keep-alive).
Prints its port on the first line of stdout. Usage: tls_upstream.py CERT KEY
"""
import socket
import ssl
import sys
import threading

BODY_BYTES = 100_000

context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
names = {}
serial = [0]
serial_lock = threading.Lock()


def remember_sni(sock, name, _ctx):
    names[id(sock)] = name


context.sni_callback = remember_sni

listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(128)
print(listener.getsockname()[1], flush=True)


def serve(raw):
    with serial_lock:
        serial[0] += 1
        number = serial[0]
    raw.settimeout(5)
    try:
        tls = context.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError):
        raw.close()
        return
    try:
        while True:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = tls.recv(65536)
                if not chunk:
                    return
                head += chunk
            path = head.split(b" ", 2)[1]
            if path.startswith(b"/notify") or path.startswith(b"/cut"):
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"x" * BODY_BYTES)
                if path.startswith(b"/notify"):
                    try:
                        tls.unwrap()
                    except (ssl.SSLError, OSError):
                        pass
                else:
                    tls.shutdown(socket.SHUT_RDWR)
                return
            body = ("sni=%s conn=%d path=%s" % (names.get(id(tls), None), number, path.decode())).encode()
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    except (ssl.SSLError, OSError):
        pass
    finally:
        try:
            tls.close()
        except OSError:
            pass


while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
