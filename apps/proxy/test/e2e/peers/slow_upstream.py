# A slow HTTP/1.1 upstream for issue 16's upload tests: it reads each request's body at about
# RATE bytes per second per connection (recv of 4 KiB, then a pause) and answers only once the
# body ended, which a flooded upload never does. Prints its port. Usage: slow_upstream.py RATE
import socket
import sys
import threading
import time

rate = int(sys.argv[1]) if len(sys.argv) > 1 else 65536
piece = 4096


def serve(conn):
    try:
        while True:
            data = conn.recv(piece)
            if not data:
                return
            time.sleep(piece / rate)
    except OSError:
        pass
    finally:
        conn.close()


listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(1024)
print(listener.getsockname()[1], flush=True)
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
