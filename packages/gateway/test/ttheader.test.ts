/**
 * The gateway over Kitex's TTHeader (no npm or python peer speaks it; a @loch/thrift server
 * does), binary and compact, with ClientExchange multiplexing several calls on one connection:
 * a header travels as a TTHeader string info key and back, and concurrent calls each get
 * their own answer.
 */
import { createRequest, readText } from '@loch/http';
import { createReply, type ProtocolName, ThriftServer, TType } from '@loch/thrift';
import { createRuntime, type Runtime, TcpListener, TcpStream } from '@loch/uring-runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientExchange, loadIdl, ThriftGateway } from '../src/index.js';

const idl = loadIdl('/virtual/echo.thrift', {
  readFile: () => 'service Echo {\n  string echo(1: string text, 2: i64 n)\n}\n',
});

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ driver: 'legacy', log: () => undefined });
});
afterAll(async () => {
  await runtime?.close?.();
});

describe.each(['binary', 'compact'] as ProtocolName[])('TTHeader %s', (protocol) => {
  it('calls, headers both ways, several in flight on one connection', async () => {
    const framings: string[] = [];
    const server = new ThriftServer(
      {
        async call(req) {
          framings.push(req.frame.framing);
          const r = req.reader();
          let text = '';
          let n = 0n;
          r.readStructBegin();
          for (let t = r.readFieldBegin(); t !== TType.STOP; t = r.readFieldBegin()) {
            if (r.fieldId === 1 && t === TType.STRING) text = r.readString();
            else if (r.fieldId === 2 && t === TType.I64) n = r.readI64();
            else r.skip(t);
          }
          // Later calls answer first: replies are matched by seq id, not order.
          await new Promise((resolve) => setTimeout(resolve, Number(10n - n)));
          const rid = req.frame.headers.get('x-request-id') ?? '';
          return {
            ...createReply(req, (w) => {
              w.writeStructBegin();
              w.writeFieldBegin(TType.STRING, 0);
              w.writeString(`${text}:${n}:${rid}`);
              w.writeFieldStop();
              w.writeStructEnd();
            }),
            headers: new Map([['x-request-id', rid]]),
          };
        },
      },
      { maxConcurrentCalls: 16 },
    );
    const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime });
    void server.serve(listener);
    const port = (listener.localAddress as { port: number }).port;
    let connects = 0;
    const upstream = new ClientExchange(
      () => {
        connects++;
        return TcpStream.connect({ host: '127.0.0.1', port, runtime });
      },
      { framing: 'ttheader', protocol, multiplexed: true, connections: 1 },
    );
    const gw = new ThriftGateway([
      {
        idl,
        service: 'Echo',
        function: 'echo',
        path: '/echo/{text}',
        upstream,
        protocol,
        forwardHeaders: ['x-request-id'],
      },
    ]);
    try {
      const answers = await Promise.all(
        [1, 2, 3, 4, 5].map(async (n) => {
          const res = await gw.call(
            createRequest('GET', `/echo/hi?n=${n}`, { headers: { 'x-request-id': `r${n}` } }),
          );
          return [res.status, await readText(res.body), res.headers.get('x-request-id')];
        }),
      );
      expect(answers).toEqual([1, 2, 3, 4, 5].map((n) => [200, `"hi:${n}:r${n}"`, `r${n}`]));
      expect(framings).toEqual(['ttheader', 'ttheader', 'ttheader', 'ttheader', 'ttheader']);
      expect(connects).toBe(1);
    } finally {
      await upstream.close();
      await server.close();
    }
  });
});
