/**
 * `loch run` as an HTTP/JSON -> Thrift gateway whose route's upstream is multiplexed
 * (`upstreams = [{ endpoint, multiplex = { max_calls = N } }]`, the Thrift proxy's spelling),
 * end to end on every available driver. The upstream is a @loch/thrift server that runs a
 * connection's calls concurrently and answers each batch of them last first: every HTTP
 * request gets the answer to its own call while the upstream sees one connection.
 */
import { TType } from '@loch/thrift';
import { createRuntime, type Runtime } from '@loch/uring-runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Gateway, startGateway } from './gateway-site.js';
import { availableDrivers } from './harness.js';
import { type ReorderingUpstream, startReorderingUpstream } from './reordering-upstream.js';

const drivers = availableDrivers();
/** Calls the upstream holds before it answers them, last first. */
const BATCH = 8;

/** UserService.getUser(id) on the reordering upstream: User { id, name "user<id>", status ACTIVE }. */
function reorderingUserService(runtime: Runtime): Promise<ReorderingUpstream> {
  return startReorderingUpstream(
    runtime,
    (req) => {
      const r = req.reader();
      r.readStructBegin();
      r.readFieldBegin();
      const id = r.readI64();
      return (w) => {
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
      };
    },
    BATCH,
  );
}

describe.each(drivers)('loch gateway route to a multiplexed upstream (driver %s)', (driver) => {
  let runtime: Runtime;
  let up: ReorderingUpstream;
  let gateway: Gateway;

  beforeAll(async () => {
    runtime = await createRuntime({ driver: 'legacy', log: () => undefined });
    up = await reorderingUserService(runtime);
    gateway = await startGateway(
      driver,
      'loch-gateway-mux-',
      `
[[servers.gw.routes]]
path = "/users/{id}"
method = "GET"
thrift = { idl = "user.thrift", service = "UserService", method = "getUser", upstreams = [{ endpoint = "127.0.0.1:${up.port}", multiplex = { max_calls = 64 } }] }
`,
    );
  });

  afterAll(async () => {
    await gateway?.loch.stop();
    await up?.close();
    await runtime?.close();
  });

  it('answers each request from its own call, the calls sharing one upstream connection', async () => {
    const ids = Array.from({ length: BATCH }, (_, i) => 100 + i);
    const answers = await Promise.all(
      ids.map(async (id) => {
        const res = await fetch(`${gateway.base}/users/${id}`);
        return { status: res.status, body: await res.json() };
      }),
    );
    expect(answers).toEqual(
      ids.map((id) => ({ status: 200, body: { id: String(id), name: `user${id}`, status: 'ACTIVE' } })),
    );
    expect(up.connections()).toBe(1);
  });
});
