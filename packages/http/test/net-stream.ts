/**
 * Test support: a minimal HttpStream/HttpListener over node:net, standing in for the runtime's
 * legacy driver until @loch/uring-runtime exports TcpListener/TcpStream. Flow control: the socket
 * is paused while received chunks wait to be taken. Not used by the package itself.
 */
import * as net from 'node:net';
import type {
  HttpListener,
  HttpStream,
  SocketAddress,
  StreamChunk,
  StreamIoOptions,
} from '../src/transport.js';

function addr(
  address: string | undefined,
  port: number | undefined,
  family: string | undefined,
): SocketAddress {
  return { family: family === 'IPv6' ? 'ipv6' : 'ipv4', address: address ?? '', port: port ?? 0 };
}

class Cancelled extends Error {
  readonly code = 'ECANCELED';
}

export class NetStream implements HttpStream {
  readonly remoteAddress: SocketAddress;
  readonly localAddress: SocketAddress;
  readonly driver = 'legacy' as const;
  closed = false;
  private queue: Buffer[] = [];
  private ended = false;
  private error: Error | null = null;
  private waiter: { resolve: () => void } | null = null;

  constructor(readonly socket: net.Socket) {
    this.remoteAddress = addr(socket.remoteAddress, socket.remotePort, socket.remoteFamily);
    this.localAddress = addr(socket.localAddress, socket.localPort, socket.remoteFamily);
    socket.on('data', (b: Buffer) => {
      this.queue.push(b);
      socket.pause();
      this.wake();
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

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.resolve();
  }

  async recv(options?: StreamIoOptions): Promise<StreamChunk | null> {
    for (;;) {
      const b = this.queue.shift();
      if (b !== undefined) {
        if (this.queue.length === 0) this.socket.resume();
        return { bytes: b, release() {} };
      }
      if (this.error) throw this.error;
      if (this.ended || this.closed) return null;
      this.socket.resume();
      await new Promise<void>((resolve, reject) => {
        const signal = options?.signal;
        if (signal?.aborted) return reject(new Cancelled('recv cancelled'));
        const onAbort = () => {
          this.waiter = null;
          reject(new Cancelled('recv cancelled'));
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        this.waiter = {
          resolve: () => {
            signal?.removeEventListener('abort', onAbort);
            resolve();
          },
        };
      });
    }
  }

  writeAll<B extends Uint8Array>(buf: B, options?: StreamIoOptions): Promise<B> {
    return new Promise<B>((resolve, reject) => {
      if (options?.signal?.aborted) return reject(new Cancelled('write cancelled'));
      if (this.socket.destroyed) return reject(Object.assign(new Error('EPIPE'), { code: 'EPIPE' }));
      this.socket.write(buf, (err) => (err ? reject(err) : resolve(buf)));
    });
  }

  async writev(bufs: readonly Uint8Array[], options?: StreamIoOptions): Promise<number> {
    this.socket.cork();
    const all = bufs.map((b) => this.writeAll(b, options));
    this.socket.uncork();
    await Promise.all(all);
    return bufs.reduce((n, b) => n + b.byteLength, 0);
  }

  async shutdown(): Promise<void> {
    this.socket.end();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.wake();
  }

  setNoDelay(enabled: boolean): void {
    this.socket.setNoDelay(enabled);
  }
}

export class NetListener implements HttpListener<NetStream> {
  private pending: net.Socket[] = [];
  private waiter: ((s: net.Socket | null) => void) | null = null;
  private closedFlag = false;
  private constructor(readonly server: net.Server) {
    server.on('connection', (s) => {
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = null;
        w(s);
      } else this.pending.push(s);
    });
  }

  static async bind(host = '127.0.0.1'): Promise<NetListener> {
    const server = net.createServer({ pauseOnConnect: false });
    await new Promise<void>((resolve) => server.listen(0, host, resolve));
    return new NetListener(server);
  }

  get localAddress(): SocketAddress {
    const a = this.server.address() as net.AddressInfo;
    return addr(a.address, a.port, a.family);
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  async accept(): Promise<NetStream> {
    const s =
      this.pending.shift() ??
      (this.closedFlag ? null : await new Promise<net.Socket | null>((r) => (this.waiter = r)));
    if (s === null) throw new Cancelled('listener closed');
    return new NetStream(s);
  }

  async close(): Promise<void> {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.waiter?.(null);
    this.waiter = null;
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Connects a NetStream to host:port. */
export function connect(port: number, host = '127.0.0.1'): Promise<NetStream> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, host, () => resolve(new NetStream(s)));
    s.once('error', reject);
  });
}
