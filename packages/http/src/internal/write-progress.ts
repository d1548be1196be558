/**
 * A write deadline is an idle-progress deadline: the server's (`timeouts.write`, the proxy's
 * `server_write`), as nginx's `send_timeout` and HAProxy's `timeout client` are, and the
 * clients' (`writeTimeout` of HttpClient and H2ClientSession: a proxy's upstream writes), as
 * nginx's `proxy_send_timeout` ("between two successive write operations"). A peer is cut when
 * the kernel took none of the bytes written to it for a whole timeout, never because one write
 * (up to 64 KiB of a body, 256 KiB of HTTP/2 frames, an upload's large chunk) as a whole took
 * longer than that. A reader slower than a write per timeout that keeps reading gets its answer
 * (an upstream its upload); one that stops reading is still cut. Used by
 * h1/server-connection.ts, h2/server-session.ts, h1/client.ts and h2/client-session.ts.
 *
 * How, without a timer or a timestamp per send: when the deadline is armed the connection notes
 * the stream's write progress (`sentBytes`: bytes the kernel took; see ByteStream.sentBytes in
 * @loch/uring-runtime); when the sweep finds the deadline passed, bytes that moved since mean the
 * write progressed, and the deadline runs again from now with the new count noted. So a write
 * that stalls is cut between one and two timeouts after its last progress (the sweep notices
 * progress only at deadlines), one that moves at least once per timeout never. A stream kind
 * that keeps no count (sentBytes absent) never seems to move: its deadline is per write.
 */
import { sentBytes } from '@loch/uring-runtime';
import type { HttpStream } from '../transport.js';

/** The progress count to note when a write deadline is armed. */
export function writeProgressMark(stream: HttpStream): number {
  return sentBytes(stream);
}

/**
 * At a passed write deadline noted with `mark`: the new count to note when bytes moved since
 * (the write progressed: arm the deadline again from now), or -1 when none did (cut the write).
 */
export function writeProgressSince(stream: HttpStream, mark: number): number {
  const now = sentBytes(stream);
  return now === mark ? -1 : now;
}
