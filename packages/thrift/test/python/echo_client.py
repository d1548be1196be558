"""Calls echo on a Thrift server: python3 echo_client.py PORT framed|header binary|compact [zlib].

Prints the result (or "EXCEPTION <type> <message>") on stdout, one line per call.
"""
import sys

from thrift.protocol import TBinaryProtocol, TCompactProtocol
from thrift.protocol.THeaderProtocol import THeaderProtocol
from thrift.Thrift import TApplicationException, TMessageType
from thrift.transport import TSocket, TTransport
from thrift.transport.THeaderTransport import THeaderClientType, THeaderSubprotocolID, THeaderTransformID

from echo_common import read_result, write_args


def main():
    port, transport, protocol = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    zlib = len(sys.argv) > 4 and sys.argv[4] == "zlib"
    sock = TSocket.TSocket("127.0.0.1", port)
    sock.setTimeout(10000)
    if transport == "framed":
        trans = TTransport.TFramedTransport(sock)
        proto = (TBinaryProtocol.TBinaryProtocol if protocol == "binary" else TCompactProtocol.TCompactProtocol)(trans)
    else:
        trans = TTransport.TBufferedTransport(sock)
        sub = THeaderSubprotocolID.BINARY if protocol == "binary" else THeaderSubprotocolID.COMPACT
        proto = THeaderProtocol(trans, [THeaderClientType.HEADERS], default_protocol=sub)
        if zlib:
            proto.add_transform(THeaderTransformID.ZLIB)
    trans.open()
    calls = [("hi", 1 << 40, [1, 2, 3], True), ("snø", -(1 << 62), [], False), ("big", 9223372036854775807, list(range(300)), True)]
    for seq, (text, big, nums, flag) in enumerate(calls, start=1):
        if transport == "header":
            proto.set_header(b"tenant", b"py")
        name = "fail" if text == "big" and len(sys.argv) > 5 else "echo"
        proto.writeMessageBegin(name, TMessageType.CALL, seq)
        write_args(proto, text, big, nums, flag)
        proto.writeMessageEnd()
        proto.trans.flush()
        fname, mtype, rseq = proto.readMessageBegin()
        if mtype == TMessageType.EXCEPTION:
            x = TApplicationException()
            x.read(proto)
            proto.readMessageEnd()
            print("EXCEPTION %d %s" % (x.type, x.message))
            continue
        assert rseq == seq, (rseq, seq)
        print(read_result(proto))
        proto.readMessageEnd()
        if transport == "header":
            print("HEADERS %s" % sorted(proto.get_headers().items()), file=sys.stderr)
    trans.close()


main()
