"""A Thrift peer for loch's end-to-end tests, on Debian's python3-thrift (no code generation).

  python3 thrift_peer.py server framed|header NAME
      serves every method (a thread per connection): args {1: string text},
      result {0: string success} = "NAME:<method>:<text>"; prints the port first.
  python3 thrift_peer.py client PORT framed|header binary|compact METHOD TEXT [KEY=VALUE]...
      calls METHOD once per TEXT word (comma separated), sending the headers (header only);
      prints each result, or "EXCEPTION <type> <message>", one line per call.
"""
import sys
import threading

from thrift.protocol import TBinaryProtocol, TCompactProtocol
from thrift.protocol.THeaderProtocol import THeaderProtocol, THeaderProtocolFactory
from thrift.Thrift import TApplicationException, TMessageType, TType
from thrift.transport import TSocket, TTransport
from thrift.transport.THeaderTransport import THeaderClientType, THeaderSubprotocolID


def write_text_struct(p, fid, text):
    p.writeStructBegin("s")
    p.writeFieldBegin("f", TType.STRING, fid)
    p.writeString(text)
    p.writeFieldEnd()
    p.writeFieldStop()
    p.writeStructEnd()


def read_text_struct(p):
    value = ""
    p.readStructBegin()
    while True:
        _, ftype, _ = p.readFieldBegin()
        if ftype == TType.STOP:
            break
        if ftype == TType.STRING:
            value = p.readString()
        else:
            p.skip(ftype)
        p.readFieldEnd()
    p.readStructEnd()
    return value


def serve_connection(client, transport, name):
    if transport == "framed":
        trans = TTransport.TFramedTransport(client)
        proto = TBinaryProtocol.TBinaryProtocol(trans)
    else:
        trans = TTransport.TBufferedTransport(client)
        proto = THeaderProtocolFactory(allowed_client_types=[THeaderClientType.HEADERS]).getProtocol(trans)
    try:
        while True:
            method, mtype, seq = proto.readMessageBegin()
            text = read_text_struct(proto)
            proto.readMessageEnd()
            if mtype == TMessageType.ONEWAY:
                continue
            if hasattr(proto, "set_header"):
                proto.set_header(b"served-by", name.encode())
            proto.writeMessageBegin(method, TMessageType.REPLY, seq)
            write_text_struct(proto, 0, "%s:%s:%s" % (name, method, text))
            proto.writeMessageEnd()
            proto.trans.flush()
    except Exception:
        pass
    client.close()


def server(transport, name):
    sock = TSocket.TServerSocket(host="127.0.0.1", port=0)
    sock.listen()
    print(sock.handle.getsockname()[1], flush=True)
    while True:
        client = sock.accept()
        threading.Thread(target=serve_connection, args=(client, transport, name), daemon=True).start()


def client(port, transport, protocol, method, texts, headers):
    sock = TSocket.TSocket("127.0.0.1", port)
    sock.setTimeout(10000)
    if transport == "framed":
        trans = TTransport.TFramedTransport(sock)
        proto = (TBinaryProtocol.TBinaryProtocol if protocol == "binary" else TCompactProtocol.TCompactProtocol)(trans)
    else:
        trans = TTransport.TBufferedTransport(sock)
        sub = THeaderSubprotocolID.BINARY if protocol == "binary" else THeaderSubprotocolID.COMPACT
        proto = THeaderProtocol(trans, [THeaderClientType.HEADERS], default_protocol=sub)
    trans.open()
    for seq, text in enumerate(texts.split(","), start=7):
        for k, v in headers:
            proto.set_header(k.encode(), v.encode())
        proto.writeMessageBegin(method, TMessageType.CALL, seq)
        write_text_struct(proto, 1, text)
        proto.writeMessageEnd()
        proto.trans.flush()
        _, mtype, rseq = proto.readMessageBegin()
        if mtype == TMessageType.EXCEPTION:
            x = TApplicationException()
            x.read(proto)
            proto.readMessageEnd()
            print("EXCEPTION %d %s" % (x.type, x.message), flush=True)
            continue
        assert rseq == seq, (rseq, seq)
        print(read_text_struct(proto), flush=True)
        proto.readMessageEnd()
    trans.close()


if sys.argv[1] == "server":
    server(sys.argv[2], sys.argv[3])
else:
    client(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6],
           [a.split("=", 1) for a in sys.argv[7:]])
