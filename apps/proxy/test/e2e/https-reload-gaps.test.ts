/**
 * A reload whose certificate files are bad keeps the running TLS config, on every runtime
 * driver (issue 13's audit: reload with a bad certificate). The watched certificate file is
 * replaced by an unparsable PEM, then by a valid certificate that does not match the key: each
 * time the reload fails, the error log names the changed file and the reason, and a new
 * connection is still handed the old certificate (its SHA-256 fingerprint compared) and served;
 * the same through a SIGHUP reload.
 * A key file that is not PEM must not be echoed into the log (a private key in the error log).
 */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../src/demo-certificate.js';
import {
  availableDrivers,
  curl,
  certificateFingerprint as fingerprint,
  freePort,
  httpUpstream,
  type Loch,
  startLoch,
  tempDir,
} from './harness.js';

const drivers = availableDrivers();

describe.each(drivers)('a reload with bad TLS files on the %s driver', (driver) => {
  let loch: Loch;
  let upstream: Awaited<ReturnType<typeof httpUpstream>>;
  let port: number;
  let dir: string;
  let certPath: string;
  let keyPath: string;
  let good: { cert: string; key: string };
  let other: { chain: string; key: string };
  let first: string;

  beforeAll(async () => {
    dir = tempDir('loch-https-reload-gaps-');
    const issued = tempDir('loch-https-reload-gaps-issued-');
    const served = selfSignedCertificate(issued, 'served', ['localhost']);
    other = selfSignedCertificate(issued, 'other', ['localhost']);
    certPath = join(dir, 'cert.pem');
    keyPath = join(dir, 'key.pem');
    copyFileSync(served.chain, certPath);
    copyFileSync(served.key, keyPath);
    good = { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') };
    upstream = await httpUpstream((req, res) => res.end(`served ${req.url}`));
    port = await freePort();
    loch = await startLoch(
      dir,
      `
[runtime]
workers = 1

[servers.s]
listener = { type = "socket", value = "127.0.0.1:${port}" }
tls = { chain = "cert.pem", key = "key.pem" }

[[servers.s.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream.port}" }]
`,
      { LOCH_DRIVER: driver },
    );
    first = await fingerprint(port);
  });
  afterAll(async () => {
    await loch?.stop();
    await upstream?.close();
  });

  /**
   * Writes `files` in place (the watcher sees the change), waits for the failed reload and
   * returns the error log written since.
   */
  async function failedReload(files: { cert?: string; key?: string }): Promise<string> {
    const from = loch.stderr().length;
    if (files.key !== undefined) writeFileSync(keyPath, files.key);
    if (files.cert !== undefined) writeFileSync(certPath, files.cert);
    await loch.waitFor(/reload \(.*\) failed, keeping the running config[^\n]*\n(?: {2}[^\n]*\n)+/, from);
    return loch.stderr().slice(from);
  }

  /** Puts the good pair back and waits for the reload that takes it. */
  async function restore(): Promise<void> {
    const from = loch.stderr().length;
    writeFileSync(keyPath, good.key);
    writeFileSync(certPath, good.cert);
    await loch.waitFor(/reloaded .*generation/, from);
  }

  /** The old certificate is still presented and requests are still answered. */
  async function stillServing(): Promise<void> {
    expect(await fingerprint(port)).toBe(first);
    const r = await curl(['-k', `https://127.0.0.1:${port}/after`]);
    expect(r.out).toBe('served /after');
  }

  it('keeps serving the old certificate when the new one is not parsable PEM, and says why', async () => {
    const log = await failedReload({
      cert: '-----BEGIN CERTIFICATE-----\nthis is not base64 at all!\n-----END CERTIFICATE-----\n',
    });
    expect(log).toContain(`reload (${certPath} changed) failed, keeping the running config`);
    expect(log).toMatch(
      /servers\.s\.tls: chain\/key \([^)]*cert\.pem, [^)]*\)\.chain: not a PEM certificate/,
    );
    await stillServing();
    await restore();
    await stillServing();
  });

  it('keeps serving the old certificate when the new one does not match the key, and says why', async () => {
    const log = await failedReload({ cert: readFileSync(other.chain, 'utf8') });
    expect(log).toContain(`reload (${certPath} changed) failed, keeping the running config`);
    expect(log).toMatch(
      /servers\.s\.tls: chain\/key \([^)]*cert\.pem, [^)]*\): the private key does not match the certificate/,
    );
    await stillServing();
    await restore();
    await stillServing();
  });

  let sighupLog = '';

  it('keeps serving the old certificate through a SIGHUP reload of a bad file', async () => {
    await failedReload({ cert: readFileSync(other.chain, 'utf8') });
    const from = loch.stderr().length;
    loch.child.kill('SIGHUP');
    await loch.waitFor(/reload \(SIGHUP\) failed, keeping the running config[^\n]*\n(?: {2}[^\n]*\n)+/, from);
    sighupLog = loch.stderr().slice(from);
    expect(sighupLog).toMatch(/the private key does not match the certificate/);
    await stillServing();
    await restore();
  });

  // The reason names the pair's files beside its config key: a reload started by SIGHUP (or a
  // config edit) has no "reload (<file> changed)" to say which file is bad.
  it('names the bad file when SIGHUP started the reload', () => {
    expect(sighupLog).toContain('failed, keeping the running config');
    expect(sighupLog).toContain('cert.pem');
  });

  // @loch/tls takes PEM text or a path: a file whose contents are a path must not be followed to
  // a certificate and key the config does not name (the reload fails instead).
  it('never follows a path written in a certificate or key file', async () => {
    const from = loch.stderr().length;
    writeFileSync(keyPath, other.key);
    writeFileSync(certPath, other.chain);
    await loch.waitFor(/reload \(.*\) failed, keeping the running config|reloaded .*generation/, from);
    const followed = /reloaded .*generation/.test(loch.stderr().slice(from));
    await restore();
    expect(followed).toBe(false);
  });

  let mangledKeyLog = '';

  it('keeps serving when the key file is not PEM', async () => {
    mangledKeyLog = await failedReload({ key: good.key.replaceAll('-----BEGIN', '----BEGIN') });
    expect(mangledKeyLog).toContain(`reload (${keyPath} changed) failed, keeping the running config`);
    await stillServing();
    await restore();
  });

  // A key file without a PEM block is refused by name: its contents (a private key whose header
  // was mangled) never reach @loch/tls, which would take them for a path and echo them.
  it('never writes the contents of a key file that is not PEM into the log', () => {
    const firstLine = good.key
      .replace(/-----[A-Z ]+-----/g, '')
      .trim()
      .split('\n')[0]!;
    expect(mangledKeyLog).toContain('failed, keeping the running config');
    expect(mangledKeyLog).not.toContain(firstLine);
  });
});
