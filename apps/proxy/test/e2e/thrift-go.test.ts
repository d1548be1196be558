/**
 * `loch run` between Go thrift peers (Apache Thrift 0.17's Go library from Debian, see
 * test/thrift/go-peer.ts), end to end on every available driver: Go clients (TStandardClient,
 * which refuses a reply with another method name or seq id) and Go servers (a
 * TMultiplexedProcessor in front) over every transport/protocol pair they speak (framed and
 * THeader, binary and compact), npm thrift and python3-thrift clients to Go servers,
 * multiplexed services (and a renamed one), the declared exception passing through, oneway
 * calls, a multiplexed upstream connection under 16 concurrent Go connections, and an upstream
 * that is down or too slow answered as TApplicationException INTERNAL_ERROR.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type GoProtocol,
  type GoTransport,
  type GoUpstream,
  goClient,
  goLoad,
  goUpstream,
  hasGo,
  runGoPeer,
} from '../thrift/go-peer.js';
import { hasPython, NpmClient, pythonClient } from '../thrift/peers.js';
import { availableDrivers, freePort, type Loch, startLoch, tempDir, waitConnectable } from './harness.js';

const drivers = hasGo ? availableDrivers() : [];
const pairs: [GoTransport, GoProtocol][] = [
  ['framed', 'binary'],
  ['framed', 'compact'],
  ['header', 'binary'],
  ['header', 'compact'],
];
const INTERNAL_ERROR = 6;

describe.skipIf(!hasGo).each(drivers)('loch between Go thrift peers (driver %s)', (driver) => {
  const ups = new Map<string, GoUpstream>();
  const ports = new Map<string, number>();
  let muxPort: number;
  let loch: Loch;

  beforeAll(async () => {
    let config = '[runtime]\nworkers = 1\n';
    const down = await freePort();
    for (const [t, p] of pairs) {
      const name = `${t}-${p}`;
      const up = await goUpstream(t, p, `G-${name}`);
      ups.set(name, up);
      const port = await freePort();
      ports.set(name, port);
      config += `
[servers.${name}]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:${port}" }
timeouts = { upstream_call = "10s" }                    # long: a late machine must not time calls out
route = { upstreams = [{ endpoint = "127.0.0.1:${up.port}" }] }

[[servers.${name}.routes]]
method = "down"
upstreams = [{ endpoint = "127.0.0.1:${down}" }]

[[servers.${name}.routes]]
method = "sleep"
timeouts = { upstream_call = "150ms" }                  # the route's own, over the server's 10s
upstreams = [{ endpoint = "127.0.0.1:${up.port}" }]

[[servers.${name}.routes]]
method = "Calc:add"
rename_method = { "Calc:add" = "Calc:sum" }
upstreams = [{ endpoint = "127.0.0.1:${up.port}" }]
`;
    }
    muxPort = await freePort();
    config += `
[servers.mux]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:${muxPort}" }
route = { upstreams = [{ endpoint = "127.0.0.1:${ups.get('framed-binary')!.port}", multiplex = { max_calls = 16 } }] }
`;
    loch = await startLoch(tempDir('loch-thrift-go-'), config, { LOCH_DRIVER: driver });
    for (const port of ports.values()) await waitConnectable({ port });
    await waitConnectable({ port: muxPort });
  }, 60_000);

  afterAll(async () => {
    await loch?.stop();
    await Promise.all([...ups.values()].map((u) => u.close()));
  });

  it.each(pairs)(
    'Go client to Go server over %s %s: plain and multiplexed calls, declared exceptions',
    async (t, p) => {
      const port = ports.get(`${t}-${p}`)!;
      expect(await goClient(port, t, p, 'hello', ['a', 'b'])).toEqual([
        `G-${t}-${p}:hello:a`,
        `G-${t}-${p}:hello:b`,
      ]);
      // TMultiplexedProtocol "Echo:hi": the server answers the bare name, which Go's client checks.
      expect(await goClient(port, t, p, 'hi', ['m'], 'Echo')).toEqual([`G-${t}-${p}:hi:m`]);
      expect(await goClient(port, t, p, 'oops', ['why not'])).toEqual(['OOPS why not']);
    },
  );

  it.each(pairs)('renames Calc:add to Calc:sum over %s %s; the Go client sees its own name', async (t, p) => {
    expect(await goClient(ports.get(`${t}-${p}`)!, t, p, 'add', ['1'], 'Calc')).toEqual([
      `G-${t}-${p}:sum:1`,
    ]);
  });

  it.each(pairs)('delivers a Go ONEWAY over %s %s ahead of the next call', async (t, p) => {
    const up = ups.get(`${t}-${p}`)!;
    expect(await runGoPeer(['oneway', String(ports.get(`${t}-${p}`)), t, p, 'note', `ow-${driver}`])).toEqual(
      [`G-${t}-${p}:echo:after`],
    );
    expect(up.oneways()).toContain(`ow-${driver}`);
  });

  it("answers a down or slow upstream (the route's own upstream_call) with INTERNAL_ERROR naming the cause", async () => {
    const port = ports.get('framed-binary')!;
    const out = await goClient(port, 'framed', 'binary', 'down', ['x']);
    expect(out[0]).toMatch(new RegExp(`^EXCEPTION ${INTERNAL_ERROR} .*ERR_LOCH_THRIFT_UPSTREAM_REFUSED`));
    const slow = await goClient(port, 'framed', 'binary', 'sleep', ['3000']);
    expect(slow[0]).toMatch(new RegExp(`^EXCEPTION ${INTERNAL_ERROR} .*upstream_call timeout \\(150 ms\\)`));
  });

  it('serves npm thrift (framed) and python3-thrift (THeader) clients from Go servers', async () => {
    for (const p of ['binary', 'compact'] as const) {
      const c = await NpmClient.connect(ports.get(`framed-${p}`)!, p);
      try {
        expect(await Promise.all(['1', '2', '3'].map((x) => c.call('npm', x)))).toEqual(
          ['1', '2', '3'].map((x) => `G-framed-${p}:npm:${x}`),
        );
      } finally {
        c.close();
      }
      if (hasPython)
        expect(await pythonClient(ports.get(`header-${p}`)!, 'header', p, 'py', ['q'])).toEqual([
          `G-header-${p}:py:q`,
        ]);
    }
  });

  it('carries 16 concurrent Go connections over a multiplexed upstream connection without a mismatch', async () => {
    const r = await goLoad(muxPort, 'framed', 'binary', 16, 0.5, 100);
    // Each call checks its reply's method, seq id and payload size: any mix-up is an error.
    expect(r.errors).toBe(0);
    expect(r.calls).toBeGreaterThan(16);
  });
});
