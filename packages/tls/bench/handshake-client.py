# The client of profile-handshakes.ts: N TLS 1.3 handshakes to 127.0.0.1:PORT one after another,
# each: connect, handshake, read until the server's session ticket has arrived (the server did
# all its handshake work; a server that issues none on resumption costs a second's wait),
# close_notify both ways, close. "full" offers no session; "resumed"
# offers the one the first connection received. Prints the counts at the end.
# Usage: handshake-client.py PORT N full|resumed
import select
import socket
import ssl
import sys
import time

port, n, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.minimum_version = ssl.TLSVersion.TLSv1_3
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
session = None
resumed = 0
tickets_missing = 0
for i in range(n + (1 if mode == "resumed" else 0)):
    raw = socket.create_connection(("127.0.0.1", port))
    s = context.wrap_socket(raw, server_hostname="localhost", session=session)
    # The ticket comes after the handshake: read until it did (or a second passed).
    s.setblocking(False)
    deadline = time.monotonic() + 1
    while not (s.session is not None and s.session.has_ticket) and time.monotonic() < deadline:
        select.select([s], [], [], 0.1)
        try:
            s.recv(1)
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLError, OSError):
            break
    ticket = s.session if s.session is not None and s.session.has_ticket else None
    reused = s.session_reused
    s.setblocking(True)
    try:
        s.unwrap()
    except (ssl.SSLError, OSError):
        pass
    if reused:
        resumed += 1
    if ticket is None:
        tickets_missing += 1
    if mode == "resumed" and session is None:
        session = ticket
    raw.close()
print("done", n, "resumed", resumed, "without ticket", tickets_missing, flush=True)
