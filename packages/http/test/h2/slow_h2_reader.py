# Test support: an HTTP/2 client (h2c, prior knowledge) that reads its answer slowly, for the
# server write deadline's tests (h2-write-progress.test.ts). Node's http2 client reads whatever
# arrives at once and Node cannot set SO_RCVBUF or TCP_MAXSEG, so it never keeps the server's
# socket full; this peer does: a small receive buffer and a real network's MSS (on loopback's
# 65483 the kernel gives the server's socket a 4 MiB send buffer that swallows a whole answer,
# so the server's writes would never wait on the reader), then STEP bytes read every INTERVAL ms.
# Frames are built and parsed by hand (the Python h2 package is not needed): one GET of PATH on
# stream 1, with flow-control windows of 2^31-1 (connection and stream), so flow control never
# holds the server back: only the socket does.
# --stall-after N: once N body bytes arrived, stop reading for --stall-ms, then read everything
# as fast as possible (what the kernel held, then the server's end if it cut the connection).
# Prints one JSON line at the end:
#   {"bytes": body bytes of stream 1, "endStream": whether the body ended, "goaway": the GOAWAY's
#    error code or null, "closed": the server ended the connection (EOF), "reset": it was reset,
#    "seconds": how long the read took}
# Usage: slow_h2_reader.py PORT PATH [--rcvbuf B] [--mss M] [--step S] [--interval MS]
#        [--stall-after N] [--stall-ms MS] [--timeout S]
import argparse
import json
import socket
import struct
import time

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("path")
parser.add_argument("--rcvbuf", type=int, default=4096)
parser.add_argument("--mss", type=int, default=1460)
parser.add_argument("--step", type=int, default=2048)
parser.add_argument("--interval", type=float, default=20.0)
parser.add_argument("--stall-after", type=int, default=-1)
parser.add_argument("--stall-ms", type=float, default=0.0)
parser.add_argument("--timeout", type=float, default=60.0)
args = parser.parse_args()

MAX_WINDOW = 2**31 - 1


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def literal(index, value):
    # HPACK literal field without indexing, name from the static table (index < 15), raw value
    # (shorter than 127 bytes).
    v = value.encode()
    return bytes([index, len(v)]) + v


# :method GET (static 2), :scheme http (static 6), :path (name 4), :authority (name 1)
block = bytes([0x82, 0x86]) + literal(4, args.path) + literal(1, "localhost")
settings = struct.pack(">HI", 0x4, MAX_WINDOW)  # SETTINGS_INITIAL_WINDOW_SIZE
preface = (
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    + frame(0x4, 0, 0, settings)
    + frame(0x8, 0, 0, struct.pack(">I", MAX_WINDOW - 65535))  # connection WINDOW_UPDATE
    + frame(0x1, 0x5, 1, block)  # HEADERS, END_STREAM | END_HEADERS
)

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
if args.mss > 0:
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, args.mss)
s.settimeout(args.timeout)
s.connect(("127.0.0.1", args.port))
s.sendall(preface)

result = {"bytes": 0, "endStream": False, "goaway": None, "closed": False, "reset": False}
buf = b""
stalled = False
started = time.monotonic()


def handle(data):
    """Parses the frames in `data` (after what was left over); answers SETTINGS and PINGs."""
    global buf
    buf += data
    while len(buf) >= 9:
        length = int.from_bytes(buf[0:3], "big")
        if len(buf) < 9 + length:
            return
        kind, flags = buf[3], buf[4]
        stream = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
        payload = buf[9 : 9 + length]
        buf = buf[9 + length :]
        if kind == 0x0 and stream == 1:  # DATA
            pad = payload[0] + 1 if flags & 0x8 else 0
            result["bytes"] += length - pad
            if flags & 0x1:
                result["endStream"] = True
        elif kind == 0x1 and stream == 1 and flags & 0x1:  # HEADERS ending the stream
            result["endStream"] = True
        elif kind == 0x4 and not flags & 0x1:  # SETTINGS: acknowledge
            s.sendall(frame(0x4, 0x1, 0))
        elif kind == 0x6 and not flags & 0x1:  # PING: answer
            s.sendall(frame(0x6, 0x1, 0, payload))
        elif kind == 0x7:  # GOAWAY
            result["goaway"] = int.from_bytes(payload[4:8], "big")


try:
    while not result["endStream"] and time.monotonic() - started < args.timeout:
        if not stalled and 0 <= args.stall_after <= result["bytes"]:
            stalled = True
            time.sleep(args.stall_ms / 1000)
        fast = stalled
        data = s.recv(65536 if fast else args.step)
        if not data:
            result["closed"] = True
            break
        handle(data)
        if not fast:
            time.sleep(args.interval / 1000)
except (ConnectionResetError, BrokenPipeError):
    result["reset"] = True
except socket.timeout:
    pass
result["seconds"] = round(time.monotonic() - started, 2)
print(json.dumps(result), flush=True)
