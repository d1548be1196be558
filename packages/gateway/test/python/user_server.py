"""The test UserService (test/idl/user.thrift) with python3-thrift and no generated code.

python3 user_server.py framed|header binary|compact. Prints the port, then serves connections
one at a time until killed. Values are read and written schema-less (type id, value) so that a
struct the gateway sends comes back exactly as Python saw it on the wire:
  getUser(id): NotFound{what, id} for id 404, else User{id, name "user<id>", status ACTIVE}
  createUser(user): the user echoed; Invalid{reason, fields} when its name is "invalid"
  deleteUser(id, hard): void; NotFound for 404
  touch(id): oneway, remembered; ping(text): "pong:<text>" plus the last touched id
  search(q, limit, statuses): `limit` users named q, with statuses echoed as tags count
  statuses(ids): {id: SUSPENDED}
  getUserHz(req): User{id: req.id, name: "<fields>|<trace>"}
  echoI64(v): v
  getUserResp(req): GetUserResp{id, name "u<id>", etag "etag-<id>", code 203, version 2^53+1}
  anything else: TApplicationException UNKNOWN_METHOD
With the header transport, the info key "x-request-id" is echoed back as "x-request-id".
"""
import sys

from thrift.protocol import TBinaryProtocol, TCompactProtocol
from thrift.protocol.THeaderProtocol import THeaderProtocolFactory
from thrift.Thrift import TMessageType, TApplicationException, TType
from thrift.transport import TSocket, TTransport
from thrift.transport.THeaderTransport import THeaderClientType


def read_value(p, t):
    if t == TType.BOOL:
        return p.readBool()
    if t == TType.BYTE:
        return p.readByte()
    if t == TType.I16:
        return p.readI16()
    if t == TType.I32:
        return p.readI32()
    if t == TType.I64:
        return p.readI64()
    if t == TType.DOUBLE:
        return p.readDouble()
    if t == TType.STRING:
        return p.readBinary()
    if t == TType.STRUCT:
        return read_struct(p)
    if t in (TType.LIST, TType.SET):
        et, n = p.readListBegin() if t == TType.LIST else p.readSetBegin()
        items = [read_value(p, et) for _ in range(n)]
        p.readListEnd() if t == TType.LIST else p.readSetEnd()
        return (et, items)
    if t == TType.MAP:
        kt, vt, n = p.readMapBegin()
        items = [(read_value(p, kt), read_value(p, vt)) for _ in range(n)]
        p.readMapEnd()
        return (kt, vt, items)
    raise ValueError("type %d" % t)


def read_struct(p):
    fields = {}
    p.readStructBegin()
    while True:
        _, t, fid = p.readFieldBegin()
        if t == TType.STOP:
            break
        fields[fid] = (t, read_value(p, t))
        p.readFieldEnd()
    p.readStructEnd()
    return fields


def write_value(p, t, v):
    if t == TType.BOOL:
        p.writeBool(v)
    elif t == TType.BYTE:
        p.writeByte(v)
    elif t == TType.I16:
        p.writeI16(v)
    elif t == TType.I32:
        p.writeI32(v)
    elif t == TType.I64:
        p.writeI64(v)
    elif t == TType.DOUBLE:
        p.writeDouble(v)
    elif t == TType.STRING:
        p.writeBinary(v if isinstance(v, bytes) else v.encode())
    elif t == TType.STRUCT:
        write_struct(p, v)
    elif t in (TType.LIST, TType.SET):
        et, items = v
        p.writeListBegin(et, len(items)) if t == TType.LIST else p.writeSetBegin(et, len(items))
        for i in items:
            write_value(p, et, i)
        p.writeListEnd() if t == TType.LIST else p.writeSetEnd()
    elif t == TType.MAP:
        kt, vt, items = v
        p.writeMapBegin(kt, vt, len(items))
        for k, x in items:
            write_value(p, kt, k)
            write_value(p, vt, x)
        p.writeMapEnd()


def write_struct(p, fields):
    p.writeStructBegin("s")
    for fid in sorted(fields):
        t, v = fields[fid]
        p.writeFieldBegin("f", t, fid)
        write_value(p, t, v)
        p.writeFieldEnd()
    p.writeFieldStop()
    p.writeStructEnd()


def user(uid, name):
    return {1: (TType.I64, uid), 2: (TType.STRING, name.encode()), 4: (TType.I32, 1)}


touched = [0]


def call(name, args):
    """Returns (result fields) or raises KeyError for an unknown method."""
    if name == "getUser":
        uid = args[1][1]
        if uid == 404:
            return {1: (TType.STRUCT, {1: (TType.STRING, b"user"), 2: (TType.I64, uid)})}
        return {0: (TType.STRUCT, user(uid, "user%d" % uid))}
    if name == "createUser":
        u = args[1][1]
        if u.get(2, (0, b""))[1] == b"invalid":
            return {1: (TType.STRUCT, {1: (TType.STRING, b"bad name"), 2: (TType.LIST, (TType.STRING, [b"name"]))})}
        return {0: (TType.STRUCT, u)}
    if name == "deleteUser":
        if args[1][1] == 404:
            return {1: (TType.STRUCT, {1: (TType.STRING, b"user"), 2: (TType.I64, 404)})}
        return {}
    if name == "ping":
        return {0: (TType.STRING, b"pong:" + args[1][1] + (":%d" % touched[0]).encode())}
    if name == "search":
        q = args[1][1].decode()
        limit = args[2][1]
        return {0: (TType.LIST, (TType.STRUCT, [user(i + 1, q) for i in range(limit)]))}
    if name == "statuses":
        et, ids = args[1][1]
        return {0: (TType.MAP, (TType.I64, TType.I32, [(i, 2) for i in ids]))}
    if name == "getUserHz":
        req = args[1][1]
        fields = req.get(2, (0, b""))[1].decode()
        trace = req.get(3, (0, b""))[1].decode()
        return {0: (TType.STRUCT, user(req[1][1], fields + "|" + trace))}
    if name == "getUserResp":
        uid = args[1][1][1][1]
        return {0: (TType.STRUCT, {1: (TType.I64, uid), 2: (TType.STRING, b"u%d" % uid),
                                   3: (TType.STRING, b"etag-%d" % uid), 4: (TType.I32, 203),
                                   5: (TType.I64, 9007199254740993)})}
    if name == "echoI64":
        return {0: (TType.I64, args[1][1])}
    raise KeyError(name)


class Processor:
    def process(self, iprot, oprot):
        name, mtype, seq = iprot.readMessageBegin()
        args = read_struct(iprot)
        iprot.readMessageEnd()
        if name == "touch":
            touched[0] = args[1][1]
            return True
        rid = None
        if hasattr(iprot, "get_headers"):
            rid = iprot.get_headers().get(b"x-request-id")
        try:
            result = call(name, args)
        except KeyError:
            oprot.writeMessageBegin(name, TMessageType.EXCEPTION, seq)
            TApplicationException(TApplicationException.UNKNOWN_METHOD, "unknown " + name).write(oprot)
        else:
            if rid is not None and hasattr(oprot, "set_header"):
                oprot.set_header(b"x-request-id", rid)
            oprot.writeMessageBegin(name, TMessageType.REPLY, seq)
            write_struct(oprot, result)
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


if __name__ == "__main__":
    main()
