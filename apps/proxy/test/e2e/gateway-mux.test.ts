/**
 * `loch run` as an HTTP/JSON -> Thrift gateway whose route's upstream is multiplexed
 * (`upstreams = [{ endpoint, multiplex = { max_calls = N } }]`, the Thrift proxy's spelling),
 * end to end on every available driver. The upstream is a @loch/thrift server that runs a
 * connection's calls concurrently and answers each batch of them last first: every HTTP
 * request gets the answer to its own call while the upstream sees one connection.
 */
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createReply, type ThriftRequest, ThriftServer, TType } from '@loch/thrift';
import { createRuntime, type Runtime, TcpListener } from '@loch/uring-runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableDrivers, freePort, type Loch, startLoch, tempDir, waitConnectable } from './harness.js';

const fixtures = fileURLToPath(new URL('../../../../packages/gateway/test/', import.meta.url));
const drivers = availableDrivers();
/** Calls the upstream holds before it answers them, last first. */
const BATCH = 8;

/** UserService.getUser(id) on a @loch/thrift server: User { id, name "user<id>", status ACTIVE }. */
async function reorderingUserService(runtime: Runtime) {
  const held: (() => void)[] = [];
  const server = new ThriftServer(
    {
      call(req: ThriftRequest) {
        const r = req.reader();
        r.readStructBegin();
        r.readFieldBegin();
        const id = r.readI64();
        return new Promise((resolve) => {
          held.push(() =>
            resolve(
              createReply(req, (w) => {
                w.writeStructBegin();
                w.writeFieldBegin(TType.STRUCT, 0);
                w.writeStructBegin();
                w.writeFieldBegin(TType.I64, 1);
                w.writeI64(id);
                w.writeFieldBegin(TType.STRING, 2);
                w.writeString(`user${id}`);
                w.writeFieldBegin(TType.I32, 4);
                w.writeI32(1);
                w.writeFieldStop();
                w.writeStructEnd();
                w.writeFieldStop();
                w.writeStructEnd();
              }),
            ),
          );
          if (held.length >= BATCH)
            setImmediate(() => {
              for (const answer of held.splice(0).reverse()) answer();
            });
        });
      },
    },
    { maxConcurrentCalls: 256 },
  );
  const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime });
  const address = listener.localAddress;
  void server.serve(listener);
  return {
    port: address.family === 'unix' ? 0 : address.port,
    connections: () => server.connections,
    close: () => server.close(),
  };
}

describe.each(drivers)('loch gateway route to a multiplexed upstream (driver %s)', (driver) => {
  let runtime: Runtime;
  let up: Awaited<ReturnType<typeof reorderingUserService>>;
  let loch: Loch;
  let base: string;

  beforeAll(async () => {
    runtime = await createRuntime({ driver: 'legacy', log: () => undefined });
    up = await reorderingUserService(runtime);
    const port = await freePort();
    const dir = tempDir('loch-gateway-mux-');
    copyFileSync(join(fixtures, 'idl/user.thrift'), join(dir, 'user.thrift'));
    copyFileSync(join(fixtures, 'idl/shared.thrift'), join(dir, 'shared.thrift'));
    loch = await startLoch(
      dir,
      `
[runtime]
workers = 1

[servers.gw]
listener = { type = "socket", value = "127.0.0.1:${port}" }

[[servers.gw.routes]]
path = "/users/{id}"
method = "GET"
thrift = { idl = "user.thrift", service = "UserService", method = "getUser", upstreams = [{ endpoint = "127.0.0.1:${up.port}", multiplex = { max_calls = 64 } }] }
`,
      { LOCH_DRIVER: driver },
    );
    await waitConnectable({ port });
    base = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await loch?.stop();
    await up?.close();
    await runtime?.close();
  });

  it('answers each request from its own call, the calls sharing one upstream connection', async () => {
    const ids = Array.from({ length: BATCH }, (_, i) => 100 + i);
    const answers = await Promise.all(
      ids.map(async (id) => {
        const res = await fetch(`${base}/users/${id}`);
        return { status: res.status, body: await res.json() };
      }),
    );
    expect(answers).toEqual(
      ids.map((id) => ({ status: 200, body: { id: String(id), name: `user${id}`, status: 'ACTIVE' } })),
    );
    expect(up.connections()).toBe(1);
  });
});
