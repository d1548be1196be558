"""A TLS client on Python's ssl for loch's e2e tests: GETs a path twice over two connections,
the second resuming the first's session, verifying loch's certificate against CAFILE and NAME.
Prints one JSON line: each exchange's version, ALPN, whether it resumed, status line and body.
Usage: tls_client.py PORT CAFILE NAME PATH
"""
import json
import socket
import ssl
import sys

port, cafile, name, path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
context = ssl.create_default_context(cafile=cafile)
context.set_alpn_protocols(["http/1.1"])


def exchange(session):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=name, session=session) as tls:
            request = "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, name)
            tls.sendall(request.encode())
            data = b""
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            return {
                "version": tls.version(),
                "alpn": tls.selected_alpn_protocol(),
                "resumed": tls.session_reused,
                "status": head.split(b"\r\n")[0].decode(),
                "body": body.decode("latin1"),
            }, tls.session


first, session = exchange(None)
second, _ = exchange(session)
print(json.dumps([first, second]))
