/**
 * ClientExchange over a @loch/thrift server on loopback: a call goes to an idle connection,
 * so a held call does not block the next one; replies given back with release() let the
 * connection receive the next ones into the same memory.
 */
import { createReply, type ThriftReply, type ThriftRequest, ThriftServer, TType } from '@loch/thrift';
import { createRuntime, type Runtime, TcpListener, TcpStream } from '@loch/uring-runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoMessage, echoText as textOf } from '../../../thrift/test/echo-call.js';
import { ClientExchange } from './client-exchange.js';

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ driver: 'legacy', log: () => undefined });
});
afterAll(async () => {
  await runtime?.close?.();
});

const callOf = (text: string) => echoMessage(text, 0);

/** The `text` argument of a `ping(1: string text)` call the server got. */
function textArg(req: ThriftRequest): string {
  const r = req.reader();
  r.readStructBegin();
  r.readFieldBegin();
  return r.readString();
}

/** The echo server's answer to `req`: a reply whose success (field 0) is `text`. */
function echoReply(req: ThriftRequest, text: string): ThriftReply {
  return createReply(req, (w) => {
    w.writeStructBegin();
    w.writeFieldBegin(TType.STRING, 0);
    w.writeString(text);
    w.writeFieldStop();
    w.writeStructEnd();
  });
}

describe('ClientExchange', () => {
  it('sends a call to an idle connection, not behind a held one', async () => {
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const server = new ThriftServer({
      async call(req) {
        const text = textArg(req);
        // "slow" is answered only after a "fast" call that came after it was answered.
        if (text === 'slow') await held;
        if (text === 'fast-2') release();
        return echoReply(req, text);
      },
    });
    const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime });
    void server.serve(listener);
    const port = (listener.localAddress as { port: number }).port;
    const ex = new ClientExchange(() => TcpStream.connect({ host: '127.0.0.1', port, runtime }), {
      connections: 2,
    });
    try {
      const slow = ex.send(callOf('slow'), {});
      const fast1 = await ex.send(callOf('fast-1'), {});
      expect(textOf(fast1)).toBe('fast-1');
      // Round robin would queue this behind "slow" on the first connection: neither would ever
      // answer. The second connection is idle.
      const fast2 = await ex.send(callOf('fast-2'), {});
      expect(textOf(fast2)).toBe('fast-2');
      expect(textOf(await slow)).toBe('slow');
    } finally {
      await ex.close();
      await server.close();
    }
  });

  it('release(reply) gives the reply memory back to its client: serial calls share one buffer', async () => {
    const server = new ThriftServer({
      call: (req) => echoReply(req, textArg(req)),
    });
    const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime });
    void server.serve(listener);
    const port = (listener.localAddress as { port: number }).port;
    const ex = new ClientExchange(() => TcpStream.connect({ host: '127.0.0.1', port, runtime }), {
      connections: 1,
    });
    try {
      const buffers = new Set<ArrayBufferLike>();
      const big = 'x'.repeat(2048);
      for (let i = 0; i < 100; i++) {
        const reply = await ex.send(callOf(`${big}${i}`), {});
        expect(textOf(reply)).toBe(`${big}${i}`);
        buffers.add((reply!.payload as Uint8Array).buffer);
        ex.release(reply!);
        ex.release(reply!); // a second release is ignored
      }
      // Without release every few replies need a new buffer (the reader appends).
      expect(buffers.size).toBe(1);
    } finally {
      await ex.close();
      await server.close();
    }
  });
});
