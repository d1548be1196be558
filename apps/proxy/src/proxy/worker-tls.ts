/**
 * The TLS side of a worker's listeners: server contexts built from a server's `tls` table
 * (config/tls.ts) and the handshake (@loch/tls). worker.ts imports it in the precommit of the
 * first config with a TLS server, so a worker whose servers are all plain HTTP never loads
 * @loch/tls (issue 18, bench/idle-memory/readings-2026-12-06d.md). Not for upstream TLS
 * (lazy-connectors.ts) nor for the main thread's ticket rotation (ticket-rotation.ts).
 */
export { TlsPlainHttpError, tlsAccept } from '@loch/tls';
export { tlsServerContext } from '../config/tls.js';
