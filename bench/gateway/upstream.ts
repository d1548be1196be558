/**
 * The benchmark's Thrift upstream: Bench.echo on a @loch/thrift server (framed binary), which
 * answers the Item it was sent by copying its bytes (no decoding), so nearly all the CPU of a
 * call is the gateway's. Usage: tsx upstream.ts <port>
 */
import { createReply, ThriftServer, TType } from '@loch/thrift';
import { createRuntime, TcpListener } from '@loch/uring-runtime';

const port = Number(process.argv[2]);
const runtime = await createRuntime({ log: () => undefined });
const server = new ThriftServer(
  {
    call(req) {
      const r = req.reader();
      r.readStructBegin();
      let start = 0;
      let end = 0;
      for (let t = r.readFieldBegin(); t !== TType.STOP; t = r.readFieldBegin()) {
        if (r.fieldId === 1 && t === TType.STRUCT) start = r.pos;
        r.skip(t);
        if (start !== 0 && end === 0) end = r.pos;
      }
      const item = r.buf.subarray(start, end);
      return createReply(req, (w) => {
        w.writeStructBegin();
        w.writeFieldBegin(TType.STRUCT, 0);
        w.writeRaw(item);
        w.writeFieldStop();
        w.writeStructEnd();
      });
    },
  },
  { maxConcurrentCalls: 1 },
);
void server.serve(await TcpListener.bind({ host: '127.0.0.1', port, runtime }));
console.log(`upstream on ${port}`);
