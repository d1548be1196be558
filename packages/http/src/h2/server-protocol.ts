/**
 * The HTTP/2 side of HttpServer, imported by server.ts at a server's first HTTP/2 connection
 * (ALPN `h2`, or the client preface on a plain connection) rather than with the package: an
 * HTTP/1.1-only process never loads the codec, HPACK or the session (about 1 MiB of heap per
 * isolate; issue 18, bench/idle-memory/readings-2026-12-06d.md). Not an API: the package root
 * and @loch/http/h2 are.
 */
export { H2ServerSession } from './server-session.js';
export { H2ServerShared } from './server-shared.js';
