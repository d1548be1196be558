/**
 * One free TCP port for a benchmark's server (a peer, a backend, loch), the TypeScript twin of
 * bench/lib/free-port.sh. Taken above the kernel's ephemeral range
 * (/proc/sys/net/ipv4/ip_local_port_range): a port the OS picks by listen(0) is an ephemeral one,
 * and once that probe closes any outgoing connection on the machine may take it as its source
 * port before the server binds it (seen as EADDRINUSE at a peer's start while other benchmarks
 * or test suites ran). Above the range only explicit binds compete, and the bind probe sees
 * those; the ports below it are the tests' (packages/http/test/free-port.ts). Bounded tries;
 * fails loudly. Not for tests.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Ports tried before giving up. */
const TRIES = 200;

/** The last port of the kernel's ephemeral range. */
function ephemeralCeiling(): number {
  const range = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
  const high = Number(range[1]);
  if (!Number.isInteger(high))
    throw new Error(`freePort: cannot read the ephemeral range (${range.join(' ')})`);
  return high;
}

/** Whether `port` can be bound on 127.0.0.1 now (the probe closes before this resolves). */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * Ports this process returned before: a caller may ask twice before it binds the first (a peer's
 * port, then its admin port), and the probe cannot see a port nobody has bound yet (seen: loch
 * refusing a config whose admin listener took the server's port, 1 in ~4,500 with this range).
 */
const handedOut = new Set<number>();

/** A TCP port above the ephemeral range that was free a moment ago; never one this process returned before. */
export async function freePort(): Promise<number> {
  const high = ephemeralCeiling();
  if (high >= 65535) throw new Error('freePort: the ephemeral range reaches 65535: no port above it');
  for (let i = 0; i < TRIES; i++) {
    const port = high + 1 + Math.floor(Math.random() * (65535 - high));
    if (handedOut.has(port) || !(await bindable(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`freePort: no free port above the ephemeral range in ${TRIES} tries`);
}
