/**
 * The files a reload starts watching are the new config's (REVIEW F121): `loch run` reads a
 * config in a short-lived thread, which also lists the files that config reads (certificates,
 * keys, IDLs: config/isolated-load.ts), and run.ts watches that list after each reload. A loch
 * started with plain HTTP only gets a TLS server by a reload; replacing that server's certificate
 * and key afterwards reloads loch again, and new connections get the new certificate.
 */
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../src/demo-certificate.js';
import {
  certificateFingerprint as fingerprint,
  freePort,
  httpUpstream,
  type Loch,
  startLoch,
  tempDir,
} from './harness.js';

describe('a reload that adds a TLS server', () => {
  let loch: Loch;
  let upstream: Awaited<ReturnType<typeof httpUpstream>>;
  let dir: string;
  let port: number;
  let tlsPort: number;

  const config = (withTls: boolean) => `
[runtime]
workers = 1

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream.port}" }]
${
  withTls
    ? `
[servers.secure]
listener = { type = "socket", value = "127.0.0.1:${tlsPort}" }
tls = { chain = "cert.pem", key = "key.pem" }
[[servers.secure.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream.port}" }]
`
    : ''
}`;

  beforeAll(async () => {
    dir = tempDir('loch-reload-new-files-');
    upstream = await httpUpstream((_req, res) => res.end('ok'));
    port = await freePort();
    tlsPort = await freePort();
    loch = await startLoch(dir, config(false));
  });
  afterAll(async () => {
    await loch?.stop();
    await upstream?.close();
  });

  it("watches the added server's certificate: replacing it reloads, and new connections get it", async () => {
    const issued = tempDir('loch-reload-new-files-issued-');
    const first = selfSignedCertificate(issued, 'first', ['localhost']);
    const second = selfSignedCertificate(issued, 'second', ['localhost']);
    copyFileSync(first.chain, join(dir, 'cert.pem'));
    copyFileSync(first.key, join(dir, 'key.pem'));
    let mark = loch.stderr().length;
    writeFileSync(loch.configPath, config(true));
    await loch.waitFor(/reloaded .*secure=tcp:/, mark);
    const before = await fingerprint(tlsPort);

    mark = loch.stderr().length;
    copyFileSync(second.chain, join(dir, 'cert.pem'));
    copyFileSync(second.key, join(dir, 'key.pem'));
    await loch.waitFor(/reloaded /, mark);
    let after = await fingerprint(tlsPort);
    // A reload between the two copies (the key not yet the certificate's) fails and keeps the
    // first pair; the copy of the key reloads again.
    for (let i = 0; i < 100 && after === before; i++) {
      await new Promise((r) => setTimeout(r, 50));
      after = await fingerprint(tlsPort);
    }
    // Only the watch of the files can have reloaded it: the config file did not change.
    expect(after).not.toBe(before);
  });
});
