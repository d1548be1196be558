/**
 * The gRPC part of the HTTP/2 benchmark (issue 14: "gRPC unary calls/s through loch vs a direct
 * connection"): h2load sends unary calls in gRPC's wire shape (POST, `content-type:
 * application/grpc`, `te: trailers`, one length-prefixed message) to the gRPC-shaped upstream
 * (grpc-upstream.ts) directly, then through Loch (h2c in, `upstream_http_version = "http2"`
 * out: trailers pass end to end). Reports calls/s, p50/p99 and the CPU per call of the
 * upstream (direct) and of Loch (through it). nginx and HAProxy are left out: Debian's nginx has
 * no grpc_pass, and the HTTP/1.1-upstream comparison is the rest of the page.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOCH_CLI } from '../http-proxy/peers.js';
import { type Measurement, type Peer, startPeer, waitForPort } from '../lib/measure.js';
import { type H2Load, measureH2, waitForH2 } from './h2load.js';

const here = fileURLToPath(new URL('.', import.meta.url));
/** The call's path (loch routes `/`): package loch.bench, service Echo, method Say. */
export const GRPC_PATH = '/loch.bench.Echo/Say';

/** One gRPC measurement: direct to the upstream, or through Loch. */
export interface GrpcPoint {
  readonly path: 'direct' | 'loch';
  readonly load: H2Load;
  readonly m: Measurement;
}

/** The h2load arguments of a unary call: its request message in a file, the gRPC fields. */
function callArgs(): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'loch-bench-grpc-'));
  const file = join(dir, 'request.bin');
  // A gRPC message frame: not compressed, 7 bytes of protobuf (field 1 = "hello").
  writeFileSync(file, Buffer.from([0, 0, 0, 0, 7, 0x0a, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f]));
  return ['-d', file, '-H', 'content-type: application/grpc', '-H', 'te: trailers'];
}

/** Starts the gRPC-shaped upstream pinned to `cpu`; resolves once it answers a call. */
export async function startGrpcUpstream(port: number, cpu: string): Promise<Peer> {
  const peer = startPeer(
    'grpc-shaped node:http2 upstream',
    process.execPath,
    ['--import', 'tsx', join(here, 'grpc-upstream.ts'), String(port)],
    { cpu, cwd: join(here, '..') },
  );
  try {
    await waitForPort(port, '127.0.0.1', 15_000);
    return peer;
  } catch (err) {
    await peer.stop();
    throw new Error(`${peer.name}: ${(err as Error).message}\n${peer.output()}`);
  }
}

/** Starts Loch (h2c listener, HTTP/2 upstream) in front of the gRPC upstream. */
export async function startLochGrpc(o: {
  port: number;
  upstreamPort: number;
  workers: number;
  cpu: string;
}): Promise<Peer> {
  const dir = mkdtempSync(join(tmpdir(), 'loch-bench-loch-grpc-'));
  const config = join(dir, 'loch.toml');
  writeFileSync(
    config,
    `[runtime]
workers = ${o.workers}
cpu_affinity = false

[log]
level = "warn"

[servers.grpc]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:${o.port}" }
access_log = false
upstream_http_version = "http2"
timeouts = { server_keepalive = "300s" }

[[servers.grpc.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${o.upstreamPort}" }]
`,
  );
  const peer = startPeer(`loch grpc (${o.workers}w)`, process.execPath, [LOCH_CLI, 'run', '-c', config], {
    cpu: o.cpu,
  });
  try {
    await waitForPort(o.port, '127.0.0.1', 15_000);
    await waitForH2(`http://127.0.0.1:${o.port}${GRPC_PATH}`);
    return peer;
  } catch (err) {
    await peer.stop();
    throw new Error(`${peer.name}: ${(err as Error).message}\n${peer.output()}`);
  }
}

/** Measures unary calls at `url` under `load`, charging `peer`'s CPU. */
export function measureGrpc(
  peer: Peer,
  url: string,
  load: H2Load & { seconds: number; warmupSeconds: number; cpu: string },
): Promise<Measurement> {
  return measureH2(peer, url, { ...load, extraArgs: callArgs() });
}
