/**
 * How many idle HTTP/1.1 upstream connections loch keeps per endpoint (`upstream_keepalive`,
 * nginx's `keepalive N`), on every available driver. An upstream holds its answers until a
 * whole burst of concurrent requests has arrived, so loch needs one upstream connection per
 * request of the burst; once they are answered, loch keeps up to its cap of them idle and
 * closes the rest, and the next burst of the same size reuses the idle ones. With the default
 * cap a burst of 100 (below h2load -c16 -m16's 256 streams) opens no connection the second time.
 */
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableDrivers, freePort, type Loch, rawExchange, startLoch, tempDir } from './harness.js';

const drivers = availableDrivers();
const BURST = 100;

/** Resolves once `done()` holds, or throws naming `what` after `ms`. */
async function eventually(what: string, done: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await done())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** An upstream that answers requests only in bursts of `BURST`, counting its connections. */
async function burstUpstream(): Promise<{
  port: number;
  accepted: () => number;
  closed: () => number;
  close(): Promise<void>;
}> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  let closed = 0;
  let held: net.Socket[] = [];
  const server = net.createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on('close', () => {
      closed++;
      sockets.delete(s);
    });
    s.on('error', () => {});
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let i = buf.indexOf('\r\n\r\n'); i >= 0; i = buf.indexOf('\r\n\r\n')) {
        buf = buf.slice(i + 4);
        held.push(s);
        if (held.length < BURST) continue;
        for (const h of held) h.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
        held = [];
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => accepted,
    closed: () => closed,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** BURST concurrent requests through loch, each on its own client connection; their bodies. */
async function burst(port: number): Promise<string[]> {
  const answers = await Promise.all(
    Array.from({ length: BURST }, (_, i) =>
      rawExchange(port, `GET /${i} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`, 10_000),
    ),
  );
  return answers.map((a) => a.slice(a.indexOf('\r\n\r\n') + 4));
}

describe.each(drivers)(
  'upstream_keepalive: idle upstream connections kept per endpoint (driver %s)',
  (driver) => {
    let upstream: Awaited<ReturnType<typeof burstUpstream>>;
    const lochs: Loch[] = [];

    /** A loch in front of the burst upstream, with `keepalive` as its server's upstream_keepalive. */
    async function start(
      keepalive: number | undefined,
    ): Promise<{ port: number; idle: () => Promise<number> }> {
      const port = await freePort();
      const adminPort = await freePort();
      const loch = await startLoch(
        tempDir('loch-upstream-keepalive-'),
        `
[runtime]
workers = 1

[admin]
listener = { type = "socket", value = "127.0.0.1:${adminPort}" }

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
${keepalive === undefined ? '' : `upstream_keepalive = ${keepalive}`}

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream.port}" }]
`,
        { LOCH_DRIVER: driver },
      );
      lochs.push(loch);
      const idle = async () => {
        const stats = (await (await fetch(`http://127.0.0.1:${adminPort}/stats`)).json()) as {
          workers: { upstream: Record<string, { idle: number }> }[];
        };
        return stats.workers[0]!.upstream.web!.idle;
      };
      return { port, idle };
    }

    beforeAll(async () => {
      upstream = await burstUpstream();
    });

    afterAll(async () => {
      for (const loch of lochs) await loch.stop();
      await upstream?.close();
    });

    it(`by default a burst of ${BURST} requests keeps its ${BURST} connections, and the next burst reuses them`, async () => {
      const { port, idle } = await start(undefined);
      const accepted = upstream.accepted();
      const closed = upstream.closed();
      expect(await burst(port)).toEqual(Array(BURST).fill('ok'));
      expect(upstream.accepted() - accepted).toBe(BURST);
      await eventually(`${BURST} idle upstream connections`, async () => (await idle()) === BURST);
      expect(await burst(port)).toEqual(Array(BURST).fill('ok'));
      expect(upstream.accepted() - accepted).toBe(BURST);
      expect(upstream.closed() - closed).toBe(0);
    }, 30_000);

    it('upstream_keepalive = 10 keeps 10 and closes the rest; the next burst opens what is missing', async () => {
      const { port, idle } = await start(10);
      const accepted = upstream.accepted();
      const closed = upstream.closed();
      expect(await burst(port)).toEqual(Array(BURST).fill('ok'));
      await eventually('10 idle upstream connections', async () => (await idle()) === 10);
      await eventually(
        `${BURST - 10} upstream connections closed`,
        () => upstream.closed() - closed === BURST - 10,
      );
      expect(await burst(port)).toEqual(Array(BURST).fill('ok'));
      expect(upstream.accepted() - accepted).toBe(2 * BURST - 10);
    }, 30_000);

    it('refuses a negative upstream_keepalive', async () => {
      await expect(start(-1)).rejects.toThrow();
    }, 30_000);
  },
);
