/**
 * Whether the admin listener is reachable from other hosts, and the warning both `loch run` (when
 * it binds) and `loch check` give when it is: the admin endpoints show the effective config and
 * traffic, so a listener off loopback is worth a word even where a firewall makes it fine.
 * Not for binding (admin-listener.ts).
 */
import { isIPv4 } from 'node:net';
import type { AdminConfig, ListenAddress } from '../config/schema.js';

/** Whether `address` only accepts connections from this host (a Unix socket, 127/8, ::1). */
export function isLoopback(address: ListenAddress): boolean {
  if (address.kind === 'unix') return true;
  const host = address.host.toLowerCase();
  if (host === 'localhost' || host === '::1') return true;
  if (isIPv4(host)) return host.startsWith('127.');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(host);
  return mapped !== null && mapped[1]!.startsWith('127.');
}

/** How a listen address is named in the admin listener's messages. */
export function describeAddress(address: ListenAddress): string {
  return address.kind === 'unix' ? `unix:${address.path}` : `${address.host}:${address.port}`;
}

/** The warning for an admin listener other hosts can reach; undefined when none is configured or it is loopback. */
export function adminExposureWarning(admin: AdminConfig | undefined): string | undefined {
  if (admin === undefined || isLoopback(admin.listen)) return undefined;
  return `admin listener on ${describeAddress(admin.listen)} is reachable from other hosts: it shows the config and traffic (bind 127.0.0.1 unless a firewall guards it)`;
}
