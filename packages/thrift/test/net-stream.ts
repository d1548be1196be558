/**
 * Test-only adapter from node:net sockets to the ThriftStream/ThriftListener contracts (the
 * slice of @loch/uring-runtime's ByteStream the server and client use), so the suites run over
 * real loopback sockets before the runtime's public TcpListener/TcpStream exist.
 */
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import type {
  ThriftListener,
  ThriftRecvChunk,
  ThriftRecvTarget,
  ThriftServerStream,
  ThriftWriteTarget,
} from '../src/index.js';

class NetStream implements ThriftServerStream {
  private chunks: Buffer[] = [];
  private waiter: ((c: ThriftRecvChunk | null) => void) | undefined;
  private failWaiter: ((e: unknown) => void) | undefined;
  private ended = false;
  private error: unknown;
  closed = false;

  constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (b) => {
      if (this.waiter) this.deliver(b);
      else {
        this.chunks.push(b);
        if (this.chunks.length > 16) socket.pause();
      }
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', (e) => {
      this.error = e;
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
  }

  private deliver(b: Buffer): void {
    const w = this.waiter!;
    this.waiter = undefined;
    this.failWaiter = undefined;
    w({ bytes: b, release() {} });
  }

  private wake(): void {
    if (!this.waiter) return;
    if (this.error !== undefined) {
      const f = this.failWaiter!;
      this.waiter = undefined;
      this.failWaiter = undefined;
      f(this.error);
    } else if (this.ended) {
      const w = this.waiter;
      this.waiter = undefined;
      this.failWaiter = undefined;
      w(null);
    }
  }

  recv(): Promise<ThriftRecvChunk | null> {
    const b = this.chunks.shift();
    if (b) {
      if (this.chunks.length < 4) this.socket.resume();
      return Promise.resolve({ bytes: b, release() {} });
    }
    if (this.error !== undefined) return Promise.reject(this.error);
    if (this.ended || this.closed) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      this.waiter = resolve;
      this.failWaiter = reject;
    });
  }

  writev(bufs: readonly Uint8Array[]): Promise<number> {
    if (this.closed) return Promise.reject(Object.assign(new Error('closed'), { code: 'EPIPE' }));
    let n = 0;
    for (const b of bufs) n += b.byteLength;
    return new Promise((resolve, reject) => {
      this.socket.cork();
      for (let i = 0; i < bufs.length - 1; i++) this.socket.write(bufs[i]!);
      this.socket.write(bufs[bufs.length - 1]!, (e) => (e ? reject(e) : resolve(n)));
      this.socket.uncork();
    });
  }

  recvTo(target: ThriftRecvTarget): void {
    this.recv().then(
      (chunk) => target.onRecv(chunk, undefined),
      (error: unknown) => target.onRecv(null, error),
    );
  }

  writeTo(one: Uint8Array | readonly Uint8Array[], target: ThriftWriteTarget): void {
    const data = one instanceof Uint8Array ? [one] : one;
    this.writev(data).then(
      () => target.onWritten(undefined),
      (error: unknown) => target.onWritten(error),
    );
  }

  close(): Promise<void> {
    this.closed = true;
    this.socket.destroy();
    this.ended = true;
    this.wake();
    return Promise.resolve();
  }
}

class NetListener implements ThriftListener<NetStream> {
  private queue: Socket[] = [];
  private waiters: { resolve: (s: NetStream) => void; reject: (e: unknown) => void }[] = [];
  private closed = false;

  constructor(readonly server: Server) {
    server.on('connection', (s) => {
      const w = this.waiters.shift();
      if (w) w.resolve(new NetStream(s));
      else this.queue.push(s);
    });
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  accept(): Promise<NetStream> {
    const s = this.queue.shift();
    if (s) return Promise.resolve(new NetStream(s));
    if (this.closed) return Promise.reject(Object.assign(new Error('closed'), { code: 'ECANCELED' }));
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiters.splice(0))
      w.reject(Object.assign(new Error('closed'), { code: 'ECANCELED' }));
    // Stop listening now; node's close callback would wait for every connection to end.
    this.server.close();
    return Promise.resolve();
  }
}

/** Listens on 127.0.0.1, port 0. */
export async function listen(): Promise<NetListener> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return new NetListener(server);
}

/** Connects to 127.0.0.1:port. */
export function connect(port: number): Promise<NetStream> {
  return new Promise((resolve, reject) => {
    const s = netConnect(port, '127.0.0.1', () => resolve(new NetStream(s)));
    s.once('error', reject);
  });
}

/** A raw socket for sending garbage. */
export function rawConnect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}
