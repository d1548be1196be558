/**
 * The answer to a plain HTTP request sent to an HTTPS port (nginx's "The plain HTTP request was
 * sent to HTTPS port"): a 400 with `connection: close`, written on the raw stream the TLS layer
 * handed over, then the connection is closed. Never a hung connection, never a TLS alert the
 * client cannot read.
 */
import type { ByteStream } from '@loch/uring-runtime';

const BODY = 'plain HTTP request was sent to HTTPS port\n';
const ANSWER = Buffer.from(
  `HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: ${BODY.length}\r\nconnection: close\r\n\r\n${BODY}`,
  'latin1',
);

/** Writes the 400 and closes `stream`; never rejects. */
export async function answerPlainHttp(stream: ByteStream): Promise<void> {
  try {
    await stream.writeAll(ANSWER);
    // Half-close first: the client reads the answer before it sees the end.
    await stream.shutdown();
  } catch {
    // The client is gone already.
  } finally {
    await stream.close().catch(() => {});
  }
}
