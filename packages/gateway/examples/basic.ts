/**
 * A Loch Thrift server (UserService of examples/user.thrift), the gateway in front of it over
 * framed binary, and a few HTTP requests answered by the gateway service directly. Run:
 * pnpm --filter @loch/gateway example
 */
import { fileURLToPath } from 'node:url';
import { createRequest, readText } from '@loch/http';
import { createReply, ThriftServer, TType } from '@loch/thrift';
import { createRuntime, TcpListener, TcpStream } from '@loch/uring-runtime';
import { ClientExchange, loadIdl, ThriftGateway } from '../src/index.js';

const runtime = await createRuntime({ log: () => undefined });

// The upstream: getUser(id) answers User{id, name} or NotFound for id 404.
const thriftServer = new ThriftServer({
  call(req) {
    const r = req.reader();
    r.readStructBegin();
    let id = 0n;
    for (let t = r.readFieldBegin(); t !== TType.STOP; t = r.readFieldBegin()) {
      if (r.fieldId === 1 && t === TType.I64) id = r.readI64();
      else r.skip(t);
    }
    return createReply(req, (w) => {
      w.writeStructBegin();
      w.writeFieldBegin(TType.STRUCT, id === 404n ? 1 : 0);
      w.writeStructBegin();
      if (id === 404n) {
        w.writeFieldBegin(TType.STRING, 1);
        w.writeString('user');
      } else {
        w.writeFieldBegin(TType.I64, 1);
        w.writeI64(id);
        w.writeFieldBegin(TType.STRING, 2);
        w.writeString(`user ${id}`);
      }
      w.writeFieldStop();
      w.writeStructEnd();
      w.writeFieldStop();
      w.writeStructEnd();
    });
  },
});
const thriftListener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime });
void thriftServer.serve(thriftListener);
const port = (thriftListener.localAddress as { port: number }).port;

// The gateway.
const idl = loadIdl(fileURLToPath(new URL('./user.thrift', import.meta.url)));
const upstream = new ClientExchange(() => TcpStream.connect({ host: '127.0.0.1', port, runtime }), {
  timeout: 2_000,
});
const gateway = new ThriftGateway([
  { idl, service: 'UserService', function: 'getUser', path: '/users/{id}', httpMethod: 'GET', upstream },
]);

for (const target of ['/users/42', '/users/404', '/users/x', '/users/1/more']) {
  const res = await gateway.call(createRequest('GET', target));
  console.log(`GET ${target} -> ${res.status} ${await readText(res.body)}`);
}

await upstream.close();
await thriftServer.close();
await runtime.close?.();
