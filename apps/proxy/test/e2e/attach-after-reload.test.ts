/**
 * A connection whose TLS handshake ends after a reload removed its server is still the worker's:
 * counted in its stats (and so by max_connections_per_worker) and closed by its graceful stop.
 * The worker keeps no entry of its own per attached connection (issue 18): it counts and closes
 * them through their HttpServers, so the removed server's HttpServer, which the reload's commit
 * dropped (no connections then), must be tracked again when the connection is handed to it.
 */
import { rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../src/demo-certificate.js';
import { availableDrivers, freePort, type Loch, startLoch, tempDir } from './harness.js';

const drivers = availableDrivers();

/** The worker's `connections` from a SIGUSR2 stats line (one worker). */
async function connections(loch: Loch): Promise<number> {
  const from = loch.stderr().length;
  loch.child.kill('SIGUSR2');
  await loch.waitFor(/info stats \{"worker":0,/, from);
  const m = /info stats (\{"worker":0,.*\})/.exec(loch.stderr().slice(from));
  return (JSON.parse(m![1]!) as { connections: number }).connections;
}

/** Polls connections() until it is `n` (at most ~20 s); returns the last count. */
async function untilConnections(loch: Loch, n: number): Promise<number> {
  let seen = -1;
  for (let i = 0; i < 80 && seen !== n; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 250));
    seen = await connections(loch);
  }
  return seen;
}

function config(tlsPort: number, plainPort: number, withTls: boolean): string {
  const tlsServer = `
[servers.secure]
listener = { type = "socket", value = "127.0.0.1:${tlsPort}" }
tls = { chain = "served.pem", key = "served.key", handshake_timeout = "120s" }

[[servers.secure.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:9" }]
`;
  return `
[runtime]
workers = 1
${withTls ? tlsServer : ''}
[servers.plain]
listener = { type = "socket", value = "127.0.0.1:${plainPort}" }

[[servers.plain.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:9" }]
`;
}

describe.each(drivers)(
  'a TLS handshake that ends after a reload removed its server (driver %s)',
  (driver) => {
    it('is counted by the worker and closed by its graceful stop', async () => {
      const dir = tempDir('loch-attach-after-reload-');
      // served.pem and served.key, beside the config.
      selfSignedCertificate(dir, 'served', ['localhost']);
      const tlsPort = await freePort();
      let plainPort = await freePort();
      while (plainPort === tlsPort) plainPort = await freePort();
      const loch = await startLoch(dir, config(tlsPort, plainPort, true), { LOCH_DRIVER: driver });
      const raw = net.connect(tlsPort, '127.0.0.1');
      raw.on('error', () => {});
      let secure: tls.TLSSocket | undefined;
      try {
        await new Promise<void>((resolve) => raw.once('connect', () => resolve()));
        // Accepted and in its handshake (nothing sent yet): the worker counts it.
        expect(await untilConnections(loch, 1)).toBe(1);
        // The reload removes the TLS server; its HttpServer has no connection, so the commit drops it.
        const from = loch.stderr().length;
        writeFileSync(loch.configPath, config(tlsPort, plainPort, false));
        loch.child.kill('SIGHUP');
        await loch.waitFor(/info reloaded .* \(generation \d+\)/, from);
        // Now the handshake ends, and the connection is served by the removed server's HttpServer.
        secure = tls.connect({ socket: raw, servername: 'localhost', rejectUnauthorized: false });
        secure.on('error', () => {});
        const closed = new Promise<void>((resolve) => secure!.once('close', () => resolve()));
        await new Promise<void>((resolve) => secure!.once('secureConnect', () => resolve()));
        expect(await untilConnections(loch, 1)).toBe(1);
        // A graceful stop closes it (idle: at once) and exits 0.
        loch.child.kill('SIGTERM');
        await closed;
        expect(await loch.exited, loch.stderr()).toBe(0);
      } finally {
        secure?.destroy();
        raw.destroy();
        await loch.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    }, 90_000);
  },
);
