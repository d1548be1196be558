"""Hand-built Echo service shared by the interop scripts (no code generation).

args   {1: string text, 2: i64 big, 3: list<i32> nums, 4: bool flag}
result {0: string success} = "text:big:sum(nums):true|false:tenant-header"
"""
from thrift.Thrift import TType, TMessageType, TApplicationException


def write_args(p, text, big, nums, flag):
    p.writeStructBegin("echo_args")
    p.writeFieldBegin("text", TType.STRING, 1)
    p.writeString(text)
    p.writeFieldEnd()
    p.writeFieldBegin("big", TType.I64, 2)
    p.writeI64(big)
    p.writeFieldEnd()
    p.writeFieldBegin("nums", TType.LIST, 3)
    p.writeListBegin(TType.I32, len(nums))
    for n in nums:
        p.writeI32(n)
    p.writeListEnd()
    p.writeFieldEnd()
    p.writeFieldBegin("flag", TType.BOOL, 4)
    p.writeBool(flag)
    p.writeFieldEnd()
    p.writeFieldStop()
    p.writeStructEnd()


def read_args(p):
    text, big, nums, flag = "", 0, [], False
    p.readStructBegin()
    while True:
        _, ftype, fid = p.readFieldBegin()
        if ftype == TType.STOP:
            break
        if fid == 1 and ftype == TType.STRING:
            text = p.readString()
        elif fid == 2 and ftype == TType.I64:
            big = p.readI64()
        elif fid == 3 and ftype == TType.LIST:
            _, size = p.readListBegin()
            nums = [p.readI32() for _ in range(size)]
            p.readListEnd()
        elif fid == 4 and ftype == TType.BOOL:
            flag = p.readBool()
        else:
            p.skip(ftype)
        p.readFieldEnd()
    p.readStructEnd()
    return text, big, nums, flag


def answer(text, big, nums, flag, tenant):
    return "%s:%d:%d:%s:%s" % (text, big, sum(nums), "true" if flag else "false", tenant)


def write_result(p, s):
    p.writeStructBegin("echo_result")
    p.writeFieldBegin("success", TType.STRING, 0)
    p.writeString(s)
    p.writeFieldEnd()
    p.writeFieldStop()
    p.writeStructEnd()


def read_result(p):
    value = None
    p.readStructBegin()
    while True:
        _, ftype, fid = p.readFieldBegin()
        if ftype == TType.STOP:
            break
        if fid == 0 and ftype == TType.STRING:
            value = p.readString()
        else:
            p.skip(ftype)
        p.readFieldEnd()
    p.readStructEnd()
    return value
