"""A TLS client on Python's ssl for https-own-records-peers.test.ts: what a foreign peer's record
layer sends loch (OpenSSL's, as Python links it), not what node:tls sends. No verification (the
test is about records, not certificates). Prints one JSON line.

Usage:
  tls_records_client.py upload PORT VERSION SIZE CHUNK
      POSTs SIZE bytes to /echo in writes of CHUNK bytes (each write is one record of at most
      16 KiB: CHUNK 1000 sends ~1,000-byte records), Connection: close. VERSION: 1.2 or 1.3.
      -> {version, status, body, sha, size}: body is what /echo answered, sha the SHA-256 (hex)
      of what was sent.
  pipeline PORT COUNT SPLIT
      COUNT requests in one go: GET /p/<i>, and every 10th a POST /echo of 20,000 bytes; the
      last says Connection: close. SPLIT 0 writes them all at once (a few records), SPLIT n in
      writes of n bytes (records that end mid-request, mid-header, mid-body).
      -> {version, answers: [[status, body], ...], shas: {index: sha of the POST's body}}
  mtls PORT CERT KEY COUNT
      COUNT pipelined GET /xfcc on one connection with the client certificate CERT (key KEY), each
      claiming an x-forwarded-client-cert of its own; the last says Connection: close.
      -> {version, answers: [[status, body], ...]}
  close-notify PORT PATH TRAILER
      GET PATH (keep-alive) and close_notify in one write, the socket left open (no FIN); with
      TRAILER 1 the close_notify is followed, in the same write, by bytes that must be ignored
      (RFC 8446 6.1). Reads until loch closes the connection or 20 s pass.
      -> {version, answer, closeNotify, eof, error}: answer is the plaintext received,
      closeNotify whether loch's close_notify came, eof whether loch closed the TCP connection.
"""
import hashlib
import json
import socket
import ssl
import sys


def context(version, cert=None, key=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cert is not None:
        ctx.load_cert_chain(cert, key)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    v = ssl.TLSVersion.TLSv1_3 if version == "1.3" else ssl.TLSVersion.TLSv1_2
    ctx.minimum_version = v
    ctx.maximum_version = v
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def connect(port, version):
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    return context(version).wrap_socket(raw, server_hostname="localhost")


def read_all(tls):
    data = b""
    while True:
        chunk = tls.recv(65536)
        if not chunk:
            return data
        data += chunk


def pattern(size):
    # (i * 7919) & 0xff: no run of equal bytes, so a lost or doubled record shows.
    period = bytes((i * 7919) & 0xFF for i in range(256))
    return (period * (size // 256 + 1))[:size]


def parse_responses(data):
    """HTTP/1.1 responses back to back (Content-Length or chunked) -> [(status, body)]."""
    out = []
    at = 0
    while at < len(data):
        end = data.index(b"\r\n\r\n", at)
        lines = data[at:end].split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip()
        at = end + 4
        if b"content-length" in fields:
            n = int(fields[b"content-length"])
            body = data[at : at + n]
            at += n
        elif fields.get(b"transfer-encoding", b"").lower() == b"chunked":
            body = b""
            while True:
                eol = data.index(b"\r\n", at)
                n = int(data[at:eol].split(b";")[0], 16)
                at = eol + 2
                body += data[at : at + n]
                at += n + 2
                if n == 0:
                    break
        else:
            body = data[at:]
            at = len(data)
        out.append([status, body.decode("latin1")])
    return out


def upload(port, version, size, chunk):
    body = pattern(size)
    with connect(port, version) as tls:
        head = "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % size
        tls.sendall(head.encode())
        for at in range(0, size, chunk):
            tls.sendall(body[at : at + chunk])
        [(status, answer)] = parse_responses(read_all(tls))
        return {
            "version": tls.version(),
            "status": status,
            "body": answer,
            "sha": hashlib.sha256(body).hexdigest(),
            "size": size,
        }


def pipeline(port, count, split):
    wire = b""
    shas = {}
    for i in range(count):
        close = "Connection: close\r\n" if i == count - 1 else ""
        if i % 10 == 5:
            body = pattern(20000 + i)
            shas[i] = hashlib.sha256(body).hexdigest()
            head = "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n%s\r\n" % (len(body), close)
            wire += head.encode() + body
        else:
            wire += ("GET /p/%d HTTP/1.1\r\nHost: localhost\r\n%s\r\n" % (i, close)).encode()
    with connect(port, "1.3") as tls:
        if split == 0:
            tls.sendall(wire)
        else:
            for at in range(0, len(wire), split):
                tls.sendall(wire[at : at + split])
        return {"version": tls.version(), "answers": parse_responses(read_all(tls)), "shas": shas}


def mtls(port, cert, key, count):
    wire = b""
    for i in range(count):
        close = "Connection: close\r\n" if i == count - 1 else ""
        wire += (
            "GET /xfcc HTTP/1.1\r\nHost: localhost\r\n"
            'X-Forwarded-Client-Cert: Hash=forged;Subject="CN=admin"\r\n%s\r\n' % close
        ).encode()
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    with context("1.3", cert, key).wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(wire)
        return {"version": tls.version(), "answers": parse_responses(read_all(tls))}


def close_notify(port, path, trailer):
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context("1.3").wrap_bio(incoming, outgoing, server_hostname="localhost")

    def flush(extra=b""):
        data = outgoing.read() + extra
        if data:
            raw.sendall(data)

    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            flush()
            data = raw.recv(65536)
            if not data:
                raise RuntimeError("loch closed during the handshake")
            incoming.write(data)
    flush()
    tls.write(("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path).encode())
    try:
        tls.unwrap()  # queues close_notify, then would wait for loch's
    except ssl.SSLWantReadError:
        pass
    # The request and the close_notify in one write (loch reads them together, whatever the
    # load), then with TRAILER a protected-looking record: to be ignored, not read.
    flush(b"\x17\x03\x03\x00\x20" + b"\x5a" * 32 if trailer else b"")
    answer = b""
    result = {"version": tls.version(), "closeNotify": False, "eof": False, "error": None}
    try:
        while not result["eof"]:
            data = raw.recv(65536)
            if not data:
                result["eof"] = True
                break
            incoming.write(data)
            while not result["closeNotify"]:
                try:
                    data = tls.read(65536)
                except ssl.SSLWantReadError:
                    break
                except ssl.SSLZeroReturnError:
                    data = b""
                if not data:
                    result["closeNotify"] = True
                answer += data
    except socket.timeout:
        result["error"] = "timeout"
    except (ssl.SSLError, OSError) as e:
        result["error"] = str(e)
    raw.close()
    result["answer"] = answer.decode("latin1")
    return result


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "upload":
        out = upload(port, sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif mode == "pipeline":
        out = pipeline(port, int(sys.argv[3]), int(sys.argv[4]))
    elif mode == "mtls":
        out = mtls(port, sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif mode == "close-notify":
        out = close_notify(port, sys.argv[3], sys.argv[4] == "1")
    else:
        raise SystemExit("unknown mode " + mode)
    print(json.dumps(out))


main()
