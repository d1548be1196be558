/**
 * Host names to IP literals for the drivers that bind and connect through @loch/native (which
 * takes IP literals only): the io_uring driver, and the legacy driver's SO_REUSEPORT listeners.
 * Not for node:net, which resolves names itself.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { RuntimeError } from '../errors.js';

/**
 * `host` as an IP literal and its family: itself when it is one, else the first address the
 * system resolver (getaddrinfo) gives. Fails with ENOTFOUND for `syscall`, carrying host and port.
 */
export async function resolveHost(
  host: string,
  port: number,
  syscall: string,
): Promise<{ ip: string; family: 4 | 6 }> {
  const kind = isIP(host);
  if (kind === 4 || kind === 6) return { ip: host, family: kind };
  try {
    const found = await lookup(host);
    return { ip: found.address, family: found.family === 6 ? 6 : 4 };
  } catch (cause) {
    throw new RuntimeError('ENOTFOUND', syscall, {
      address: { family: 'ipv4', address: host, port },
      cause,
    });
  }
}
