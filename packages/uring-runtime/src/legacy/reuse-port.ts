/**
 * SO_REUSEPORT listeners for the legacy driver on Node versions whose net.Server cannot set it
 * (Node 20; `listen({ reusePort })` exists from Node 22.12 / 23.1 and is used there instead).
 * @loch/native creates the socket (SO_REUSEADDR + SO_REUSEPORT, IPV6_V6ONLY for IPv6), binds and
 * listens — the same code as the io_uring driver's listeners — and the driver hands the
 * descriptor to `net.Server.listen({ fd })`, which owns it from then on. Each call yields a
 * separate socket in the same reuseport group: the kernel spreads connections across them,
 * exactly as on the io_uring driver. Needs the addon's .node file, not io_uring. Not for plain
 * listeners: those use net.Server.listen directly.
 */
import { loadPlatform, type PlatformLoadResult } from '@loch/native';
import { RuntimeError } from '../errors.js';
import { resolveHost } from '../internal/resolve-host.js';
import type { SocketAddress } from '../stream.js';

/** True when this Node's net.Server.listen accepts `reusePort` (22.12+ in 22.x, 23.1+). */
export const nodeHasReusePort: boolean = (() => {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
})();

/** Options of openReusePortSocket. */
export interface ReusePortBindOptions {
  readonly host: string;
  readonly port: number;
  readonly backlog: number;
  readonly ipv6Only: boolean;
  /** The address errors carry (host and port as the user gave them). */
  readonly address: SocketAddress;
}

/**
 * Creates a listening SO_REUSEPORT socket and returns its descriptor, for
 * `net.Server.listen({ fd })` (until then the caller must close it). Fails with the syscall's
 * errno as a RuntimeError (EADDRINUSE when a non-reuseport socket holds the port), ENOTFOUND for
 * a host name that does not resolve, or ERR_LOCH_REUSEPORT_UNSUPPORTED when @loch/native does
 * not load. `native` is the loader's answer (a parameter so tests can stand in an unloadable one).
 */
export async function openReusePortSocket(
  options: ReusePortBindOptions,
  native: PlatformLoadResult = loadPlatform(),
): Promise<number> {
  if ('error' in native) {
    throw new RuntimeError('ERR_LOCH_REUSEPORT_UNSUPPORTED', 'bind', {
      address: options.address,
      detail: `SO_REUSEPORT on Node ${process.versions.node} needs @loch/native (or Node >= 22.12): ${native.error}`,
    });
  }
  const { ip } = await resolveHost(options.host, options.port, 'bind');
  const fd = native.platform.openTcpListener(ip, options.port, options.backlog, true, options.ipv6Only);
  if (typeof fd !== 'number') throw RuntimeError.fromErrno(-fd.errno, fd.syscall, options.address);
  return fd;
}
