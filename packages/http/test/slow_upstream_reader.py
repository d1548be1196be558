# Test support: an upstream (HTTP/1.1, or HTTP/2 h2c prior knowledge with --h2) that reads request
# bodies slowly, for the client write deadline's tests (client-write-progress.test.ts). Each
# accepted socket has a small receive buffer and a real network's MSS (set on the listener, so
# the SYN-ACK announces it: on loopback's 65483 the client's kernel takes megabytes at once and
# its writes never wait), and reads STEP bytes every INTERVAL ms: slowly, but never stopping.
# With --stall-after N it stops reading once N body bytes came and holds the connection open.
# Each request is answered, once its body ended, 200 with the number of body bytes read as text.
# HTTP/2 frames are built and parsed by hand (the Python h2 package is not needed): SETTINGS with
# INITIAL_WINDOW_SIZE 2^31-1 and a connection WINDOW_UPDATE to the same, so flow control never
# holds the client back: only the socket does.
# Prints its port. Usage: slow_upstream_reader.py [--h2] [--rcvbuf B] [--mss M] [--step S]
#                         [--interval MS] [--stall-after N]
import argparse
import socket
import struct
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("--h2", action="store_true")
parser.add_argument("--rcvbuf", type=int, default=4096)
parser.add_argument("--mss", type=int, default=1460)
parser.add_argument("--step", type=int, default=2048)
parser.add_argument("--interval", type=float, default=20.0)
parser.add_argument("--stall-after", type=int, default=-1)
args = parser.parse_args()

MAX_WINDOW = 2**31 - 1


class Conn:
    """One connection read STEP bytes at a time, counting body bytes for the stall."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.body = 0

    def more(self):
        """Reads the next piece into buf (stalling for good once --stall-after body bytes came)."""
        if 0 <= args.stall_after <= self.body:
            # A stalled upstream: never reads again; the client must give up on its own.
            time.sleep(3600)
        data = self.sock.recv(args.step)
        if not data:
            raise EOFError
        self.buf += data
        time.sleep(args.interval / 1000)

    def take(self, n):
        while len(self.buf) < n:
            self.more()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def serve_h1(c):
    while True:
        while b"\r\n\r\n" not in c.buf:
            c.more()
        head, c.buf = c.buf.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        got = 0
        while got < length:
            if not c.buf:
                c.more()
            n = min(len(c.buf), length - got)
            c.buf = c.buf[n:]
            got += n
            c.body += n
        text = str(got).encode()
        c.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(text), text))


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def serve_h2(c):
    c.take(24)  # the client preface
    c.sock.sendall(
        frame(0x4, 0, 0, struct.pack(">HI", 0x4, MAX_WINDOW))
        + frame(0x8, 0, 0, struct.pack(">I", MAX_WINDOW - 65535))
    )
    bodies = {}
    while True:
        header = c.take(9)
        length = int.from_bytes(header[0:3], "big")
        kind, flags = header[3], header[4]
        stream = int.from_bytes(header[5:9], "big") & 0x7FFFFFFF
        if kind == 0x0:  # DATA: counted as it comes, so a stall can begin inside a frame
            left = length
            while left > 0:
                if not c.buf:
                    c.more()
                n = min(len(c.buf), left)
                c.buf = c.buf[n:]
                left -= n
                c.body += n
                bodies[stream] = bodies.get(stream, 0) + n
            payload = b""
        else:
            payload = c.take(length)
        if kind == 0x4 and not flags & 0x1:  # SETTINGS: acknowledge
            c.sock.sendall(frame(0x4, 0x1, 0))
        elif kind == 0x6 and not flags & 0x1:  # PING: answer
            c.sock.sendall(frame(0x6, 0x1, 0, payload))
        elif kind == 0x1:  # HEADERS (no CONTINUATION from these clients' small heads)
            bodies.setdefault(stream, 0)
        if kind in (0x0, 0x1) and flags & 0x1:  # END_STREAM: answer 200 (static index 8)
            text = str(bodies.pop(stream, 0)).encode()
            c.sock.sendall(frame(0x1, 0x4, stream, b"\x88") + frame(0x0, 0x1, stream, text))


def serve(sock):
    try:
        (serve_h2 if args.h2 else serve_h1)(Conn(sock))
    except (EOFError, OSError):
        pass
    finally:
        sock.close()


listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
if args.mss > 0:
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, args.mss)
listener.bind(("127.0.0.1", 0))
listener.listen(64)
print(listener.getsockname()[1], flush=True)
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
