"""Serves echo: python3 echo_server.py framed|header binary|compact.

Prints the listening port on stdout, then serves connections one at a time until killed.
"""
import sys

from thrift.protocol import TBinaryProtocol, TCompactProtocol
from thrift.protocol.THeaderProtocol import THeaderProtocolFactory
from thrift.Thrift import TMessageType, TApplicationException
from thrift.transport import TSocket, TTransport
from thrift.transport.THeaderTransport import THeaderClientType

from echo_common import answer, read_args, write_result


class Processor:
    def process(self, iprot, oprot):
        name, mtype, seq = iprot.readMessageBegin()
        args = read_args(iprot)
        iprot.readMessageEnd()
        tenant = ""
        if hasattr(iprot, "get_headers"):
            tenant = iprot.get_headers().get(b"tenant", b"").decode()
        if name != "echo":
            oprot.writeMessageBegin(name, TMessageType.EXCEPTION, seq)
            TApplicationException(TApplicationException.UNKNOWN_METHOD, "unknown " + name).write(oprot)
        else:
            if hasattr(oprot, "set_header"):
                oprot.set_header(b"served-by", b"python")
            oprot.writeMessageBegin(name, TMessageType.REPLY, seq)
            write_result(oprot, answer(*args, tenant))
        oprot.writeMessageEnd()
        oprot.trans.flush()
        return True


def main():
    transport, protocol = sys.argv[1], sys.argv[2]
    sock = TSocket.TServerSocket(host="127.0.0.1", port=0)
    if transport == "framed":
        tfactory = TTransport.TFramedTransportFactory()
        pfactory = (TBinaryProtocol.TBinaryProtocolFactory() if protocol == "binary" else TCompactProtocol.TCompactProtocolFactory())
    else:
        tfactory = TTransport.TBufferedTransportFactory()
        pfactory = THeaderProtocolFactory(allowed_client_types=[THeaderClientType.HEADERS])
    sock.listen()
    print(sock.handle.getsockname()[1], flush=True)
    processor = Processor()
    # TSimpleServer.serve() would listen() again on a new port 0; this is its loop.
    while True:
        client = sock.accept()
        itrans = tfactory.getTransport(client)
        iprot = pfactory.getProtocol(itrans)
        oprot = iprot if transport == "header" else pfactory.getProtocol(tfactory.getTransport(client))
        try:
            while True:
                processor.process(iprot, oprot)
        except Exception:
            pass
        itrans.close()


main()
