/**
 * The Go thrift peer (test/thrift/go/thrift_peer.go, Debian's golang-go and golang-thrift-dev:
 * Apache Thrift 0.17's Go library) for loch's tests and the thrift benchmark: built offline
 * once per process into a temporary directory (GO111MODULE=off, GOPATH=/usr/share/gocode), then
 * run as a server (framed or THeader, binary or compact, a TMultiplexedProcessor in front), a
 * client (TStandardClient, which checks the reply's method name and seq id), a oneway sender or
 * a load generator. Not a test file.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const GOPATH = '/usr/share/gocode';
const SOURCE = fileURLToPath(new URL('./go/thrift_peer.go', import.meta.url));

/** True when go and Debian's Go thrift library are installed (scripts/setup installs both). */
export const hasGo =
  existsSync('/usr/bin/go') && existsSync(join(GOPATH, 'src/github.com/apache/thrift/lib/go/thrift'));

export type GoTransport = 'framed' | 'header';
export type GoProtocol = 'binary' | 'compact';

let built: Promise<string> | undefined;

/** Builds the peer (once per process) and resolves the binary's path. */
export function goPeerBinary(): Promise<string> {
  built ??= (async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'loch-go-peer-')), 'thrift_peer');
    await promisify(execFile)('/usr/bin/go', ['build', '-o', out, SOURCE], {
      env: { ...process.env, GO111MODULE: 'off', GOPATH, GOFLAGS: '', GOPROXY: 'off' },
    });
    return out;
  })();
  return built;
}

/** A running Go thrift server. */
export interface GoUpstream {
  readonly port: number;
  readonly child: ChildProcess;
  /** Texts of the oneway calls it printed so far. */
  oneways(): string[];
  close(): Promise<void>;
}

/** Starts `thrift_peer server <transport> <protocol> <name>`. */
export async function goUpstream(
  transport: GoTransport,
  protocol: GoProtocol,
  name: string,
): Promise<GoUpstream> {
  const child = spawn(await goPeerBinary(), ['server', transport, protocol, name], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      const first = out === '';
      out += d;
      if (first) resolve(Number.parseInt(out, 10));
    });
    child.once('exit', (code) => reject(new Error(`go server exited ${code}`)));
  });
  return {
    port,
    child,
    oneways: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('ONEWAY '))
        .map((l) => l.slice(7)),
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Runs the peer with `args` to its end; resolves its output lines. */
export async function runGoPeer(args: readonly string[]): Promise<string[]> {
  const { stdout } = await promisify(execFile)(await goPeerBinary(), [...args], { timeout: 60_000 });
  return stdout.trim().split('\n');
}

/** `client`: calls in order on one connection; `service` makes it a TMultiplexedProtocol client. */
export function goClient(
  port: number,
  transport: GoTransport,
  protocol: GoProtocol,
  method: string,
  texts: readonly string[],
  service?: string,
): Promise<string[]> {
  return runGoPeer(['client', String(port), transport, protocol, service ?? '-', method, texts.join(',')]);
}

/** `load`: closed-loop calls of `size`-byte payloads on `connections` connections for `seconds`. */
export async function goLoad(
  port: number,
  transport: GoTransport,
  protocol: GoProtocol,
  connections: number,
  seconds: number,
  size: number,
): Promise<{ calls: number; errors: number; seconds: number; p50_us: number; p99_us: number }> {
  const [line] = await runGoPeer([
    'load',
    String(port),
    transport,
    protocol,
    String(connections),
    String(seconds),
    String(size),
  ]);
  return JSON.parse(line!);
}
