# The slow readers of issue 16: N connections to 127.0.0.1:PORT, each with a small receive
# buffer (SO_RCVBUF set before connect, so the window it advertises stays small), sending
# REQUESTS pipelined keep-alive GETs of PATH (each with "seed=<k>" appended, k the request's
# index on its connection) and then reading the answers STEP bytes per connection every
# INTERVAL ms: slowly, but never stopping. Responses are parsed (status line, Content-Length)
# and, with --pattern, every body byte is checked against the pattern the e2e upstream sends
# (byte o of the body for seed k is PATTERN[(o + k) % 251]), so a byte lost, repeated or taken
# from another response is counted as bad.
#
# Prints "connected N" once every connection is open and its requests are sent, then a JSON
# line of totals every second, and a last one with "final": true when every connection got all
# its answers or was closed, or on SIGTERM/SIGINT:
#   {"t": s, "bytes": body bytes read, "responses": complete answers, "ok200": of them 200,
#    "bad": bytes that were not the pattern, "closed": connections the server closed,
#    "complete": connections that got every answer, "errors": connections reset}
# --mss M announces a maximum segment size of M (TCP_MAXSEG before connect), as a client across
# a real network would (1460): on loopback (MSS 65483) the server's send buffer autotunes to
# 4 MiB at once and takes a whole response, so its writes never wait on the reader; with a
# real MSS it stays ~100 KiB and the server's writes wait for the reader, as they would.
# Usage: slow_reader.py PORT N PATH [--requests K] [--rcvbuf B] [--mss M] [--step S]
#        [--interval MS] [--pattern] [--until-done]
import argparse
import json
import select
import signal
import socket
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("n", type=int)
parser.add_argument("path")
parser.add_argument("--requests", type=int, default=1)
parser.add_argument("--rcvbuf", type=int, default=4096)
parser.add_argument("--mss", type=int, default=0)
parser.add_argument("--step", type=int, default=1)
parser.add_argument("--interval", type=float, default=20.0)
parser.add_argument("--pattern", action="store_true")
parser.add_argument("--until-done", action="store_true")
args = parser.parse_args()

PATTERN = bytes((ord("a") + (i * 7) % 26) for i in range(251))
# Long enough that any slice a recv returns starts within its first 251 bytes.
REPEATED = PATTERN * (1 + (args.step + 251) // 251 + 1)


class Reader:
    """One connection: a response parser fed a few bytes at a time."""

    def __init__(self, sock):
        self.sock = sock
        self.head = b""
        self.left = -1  # body bytes still due for the response being read; -1 while in its head
        self.offset = 0
        self.seed = 0  # which request of this connection is being answered
        self.status = 0
        self.done = False

    def feed(self, data):
        while data:
            if self.done:
                # More than every answer asked for: bytes from nowhere.
                totals["bad"] += len(data)
                return
            if self.left < 0:
                self.head += data
                end = self.head.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.head) > 16384:
                        raise ValueError("head too long")
                    return
                rest = self.head[end + 4 :]
                lines = self.head[:end].split(b"\r\n")
                self.head = b""
                self.status = int(lines[0].split(b" ")[1])
                self.left = 0
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        self.left = int(value.strip())
                self.offset = 0
                data = rest
                if self.left == 0:
                    self.finish()
                continue
            take = data[: self.left]
            data = data[self.left :]
            totals["bytes"] += len(take)
            if args.pattern:
                start = (self.offset + self.seed) % 251
                if take != REPEATED[start : start + len(take)]:
                    totals["bad"] += sum(
                        1
                        for i, b in enumerate(take)
                        if b != PATTERN[(self.offset + i + self.seed) % 251]
                    )
            self.offset += len(take)
            self.left -= len(take)
            if self.left == 0:
                self.finish()

    def finish(self):
        totals["responses"] += 1
        if self.status == 200:
            totals["ok200"] += 1
        self.left = -1
        self.seed += 1
        if self.seed == args.requests:
            self.done = True
            totals["complete"] += 1


totals = {"bytes": 0, "responses": 0, "ok200": 0, "bad": 0, "closed": 0, "complete": 0, "errors": 0}
started = time.monotonic()


def report(final=False):
    line = dict(totals, t=round(time.monotonic() - started, 2))
    if final:
        line["final"] = True
    print(json.dumps(line), flush=True)


def stop(*_):
    report(final=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)

readers = []
for _ in range(args.n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
    if args.mss > 0:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, args.mss)
    s.connect(("127.0.0.1", args.port))
    sep = "&" if "?" in args.path else "?"
    requests = "".join(
        "GET %s%sseed=%d HTTP/1.1\r\nHost: slow-reader\r\n\r\n" % (args.path, sep, k)
        for k in range(args.requests)
    )
    s.sendall(requests.encode())
    s.setblocking(False)
    readers.append(Reader(s))
print("connected %d" % args.n, flush=True)
# poll, not select: more than 1,024 descriptors is fine
poller = select.poll()
for r in readers:
    poller.register(r.sock, select.POLLIN)


def drop(r):
    poller.unregister(r.sock)
    r.sock.close()
    r.sock = None


last_report = time.monotonic()
while True:
    live = [r for r in readers if r.sock is not None]
    if not live or (args.until_done and all(r.done for r in live)):
        break
    # Wait a tick, then take at most STEP bytes from each connection that has some.
    time.sleep(args.interval / 1000)
    ready = {fd for fd, _ in poller.poll(0)}
    for r in live:
        if r.sock.fileno() not in ready:
            continue
        try:
            data = r.sock.recv(args.step)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:
            totals["errors"] += 1
            drop(r)
            continue
        if not data:
            totals["closed"] += 1
            drop(r)
            continue
        try:
            r.feed(data)
        except ValueError:
            totals["bad"] += 1
    now = time.monotonic()
    if now - last_report >= 1:
        last_report = now
        report()
report(final=True)
