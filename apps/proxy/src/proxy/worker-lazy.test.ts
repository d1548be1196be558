/**
 * A worker loads the Thrift relay (thrift/servers.ts and what it imports) with the first config
 * that has a thrift server, and its listeners' TLS side (worker-tls.ts: @loch/tls) with the first
 * config that has a TLS server, not at start. Here those modules cannot load: an HTTP-only worker
 * that starts and serves never imported them, and a reload that adds such a server is refused
 * with a clear error while the running config goes on (the worker is not crashed).
 */

import { mkdtempSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { freePort } from '../../../../packages/http/test/free-port.js';
import { parseConfig } from '../config/load.js';
import { selfSignedCertificate } from '../demo-certificate.js';
import { ProxyWorker } from './worker.js';

vi.mock('../thrift/servers.js', () => {
  throw new Error('the thrift relay was imported');
});
vi.mock('./worker-tls.js', () => {
  throw new Error('the TLS side was imported');
});

const http = (port: number) => `
log = { level = "error", access = false }
[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:1" }]
`;

const withThrift = (port: number, thriftPort: number) => `${http(port)}
[servers.rpc]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:${thriftPort}" }
route = { upstreams = [{ endpoint = "127.0.0.1:1" }] }
`;

const withTls = (port: number, tlsPort: number, cert: { chain: string; key: string }) => `${http(port)}
[servers.secure]
listener = { type = "socket", value = "127.0.0.1:${tlsPort}" }
tls = { chain = "${cert.chain}", key = "${cert.key}" }
[[servers.secure.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:1" }]
`;

/** The status of one GET / (the upstream is closed: loch answers 502). */
function status(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    })
      .on('error', reject)
      .end();
  });
}

/** Whether something accepts on the port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * A reload to `config` (which adds a server on `addedPort` whose code cannot load) is refused with
 * `error`: the worker stays on generation 0, nothing listens on `addedPort`, `port` still answers;
 * the next reload without the server commits as usual.
 */
async function refusedAndKeepsServing(
  worker: ProxyWorker,
  port: number,
  addedPort: number,
  config: string,
  error: RegExp,
): Promise<void> {
  await expect(worker.precommit(1, parseConfig(config))).rejects.toThrow(error);
  expect(worker.generation).toBe(0);
  expect(await listening(addedPort)).toBe(false);
  expect(await status(port)).toBe(502);
  await worker.precommit(2, parseConfig(http(port)));
  worker.commit(2);
  expect(worker.generation).toBe(2);
  expect(await status(port)).toBe(502);
}

describe('a worker whose configs have no thrift server', () => {
  let worker: ProxyWorker;
  let port: number;
  let thriftPort: number;

  beforeAll(async () => {
    port = await freePort('apps/proxy');
    thriftPort = await freePort('apps/proxy');
    worker = new ProxyWorker(0, parseConfig(http(port)));
    await worker.start();
  });
  afterAll(async () => {
    await worker?.shutdown();
  });

  it('starts and serves HTTP without loading the Thrift relay', async () => {
    expect(await status(port)).toBe(502);
    expect(worker.generation).toBe(0);
  });

  it('refuses a config that adds a thrift server when the relay cannot load, and keeps serving', async () => {
    // (vitest reports the mock's failure in words of its own)
    await refusedAndKeepsServing(
      worker,
      port,
      thriftPort,
      withThrift(port, thriftPort),
      /^cannot load the thrift server code: /,
    );
  });
});

describe('a worker whose configs have no TLS server', () => {
  let worker: ProxyWorker;
  let port: number;
  let tlsPort: number;

  beforeAll(async () => {
    port = await freePort('apps/proxy');
    tlsPort = await freePort('apps/proxy');
    worker = new ProxyWorker(0, parseConfig(http(port)));
    await worker.start();
  });
  afterAll(async () => {
    await worker?.shutdown();
  });

  it('refuses a config that adds a TLS server when its TLS side cannot load, and keeps serving', async () => {
    const cert = selfSignedCertificate(mkdtempSync(join(tmpdir(), 'loch-worker-lazy-')));
    await refusedAndKeepsServing(
      worker,
      port,
      tlsPort,
      withTls(port, tlsPort, cert),
      /^cannot load the TLS server code: /,
    );
  });
});
