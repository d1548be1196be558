/**
 * The smallest case of one event-loop turn of the io_uring runtime: one connection, one message
 * in flight, echoed back with the promise-free recvTo()/writeTo() pair on the driver itself (no
 * RuntimeStream wrapper, no promise per message). A client doing sequential round trips (see
 * pingpong-client.py) wakes this thread once per message: each round trip is one turn (the
 * ring's poll wakes, its completion callback delivers the receive, the echo's write is queued and
 * flushed). Prints `listening <port>`; exits when the client closes. Not a general-purpose server.
 *
 * Usage: node pingpong-server.mjs [port=0] (bundled by turn-count.sh; LOCH_URING_FLUSH picks the
 * ring's flush mode as for every uring driver).
 */
import { type ByteStream, createRuntime, type RecvChunk, type RuntimeError } from '@loch/uring-runtime';

class Echo {
  private chunk: RecvChunk | null = null;
  private readonly done: () => void;
  constructor(
    private readonly stream: ByteStream,
    done: () => void,
  ) {
    this.done = done;
    stream.recvTo(this);
  }

  onRecv(chunk: RecvChunk | null, error: RuntimeError | undefined): void {
    if (chunk === null || error !== undefined) {
      void this.stream.close().then(this.done);
      return;
    }
    this.chunk = chunk;
    this.stream.writeTo(chunk.bytes, this);
  }

  onWritten(error: RuntimeError | undefined): void {
    this.chunk?.release();
    this.chunk = null;
    if (error !== undefined) {
      void this.stream.close().then(this.done);
      return;
    }
    this.stream.recvTo(this);
  }
}

const port = Number(process.argv[2] ?? 0);
const runtime = await createRuntime({ driver: 'uring' });
const listener = await runtime.driver.listenTcp({ host: '127.0.0.1', port });
const a = listener.localAddress;
console.log(`listening ${a.family === 'unix' ? 0 : a.port}`);
for await (const s of listener) {
  // One connection: leaving the loop closes the listener.
  new Echo(s, () => void runtime.close());
  break;
}
