/**
 * Test support: a hand-driven HTTP/2 client over a real socket, for the frame sequences no
 * well-behaved client sends (the attacks, protocol errors, stalled windows). Frames are built
 * with the codec's own encoders; what the server sends is decoded with the frame decoder
 * (client role) and HPACK decoder into plain events a test can wait for and assert on.
 */
import * as net from 'node:net';
import type { Http2StreamError } from '../../src/h2/errors.js';
import { Http2FrameDecoder, type Http2FrameHandler } from '../../src/h2/frame-decoder.js';
import {
  CONNECTION_PREFACE,
  encodeData,
  encodeHeaders,
  encodePing,
  encodeSettings,
  encodeSettingsAck,
  type Http2Priority,
  type Http2SettingsUpdate,
} from '../../src/h2/frames.js';
import { HpackDecoder } from '../../src/h2/hpack-decoder.js';
import { HpackEncoder } from '../../src/h2/hpack-encoder.js';

export type ServerFrame =
  | { t: 'headers'; streamId: number; fields: [string, string][]; endStream: boolean }
  | { t: 'data'; streamId: number; length: number; endStream: boolean }
  | { t: 'rst'; streamId: number; errorCode: number }
  | { t: 'settings'; settings: Http2SettingsUpdate }
  | { t: 'settingsAck' }
  | { t: 'ping'; data: string; ack: boolean }
  | { t: 'goaway'; lastStreamId: number; errorCode: number; debug: string }
  | { t: 'window'; streamId: number; increment: number };

/** A raw HTTP/2 client connection; see the module comment. */
export class RawH2Client implements Http2FrameHandler {
  readonly frames: ServerFrame[] = [];
  /** Body bytes received per stream. */
  readonly bodies = new Map<number, Buffer[]>();
  readonly encoder = new HpackEncoder();
  closed = false;
  /** Answer the server's PINGs (off: a client that never answers). */
  autoPingAck = true;
  /** Acknowledge the server's SETTINGS (off: a client that never does). */
  autoSettingsAck = true;
  /** Set when the server's bytes could not be decoded. */
  decodeError: unknown = null;
  readonly opened: Promise<void>;
  private readonly socket: net.Socket;
  private readonly decoder = new Http2FrameDecoder(this, { role: 'client' });
  private readonly hpack = new HpackDecoder();
  private waiters: (() => void)[] = [];

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.opened = new Promise((resolve) => this.socket.once('connect', () => resolve()));
    this.socket.on('data', (b: Buffer) => {
      try {
        this.decoder.feed(b);
      } catch (e) {
        this.decodeError = e;
      }
      this.notify();
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
  }

  /** Connects and sends the preface with `settings` (acknowledging the server's as they come). */
  static async connect(
    port: number,
    settings: Http2SettingsUpdate = {},
    opts: { ackSettings?: boolean } = {},
  ): Promise<RawH2Client> {
    const c = new RawH2Client(port);
    c.autoSettingsAck = opts.ackSettings ?? true;
    await c.opened;
    c.send(CONNECTION_PREFACE, encodeSettings(settings));
    await c.until((f) => f.t === 'settings');
    return c;
  }

  /** Writes frames. */
  send(...frames: Uint8Array[]): void {
    if (!this.socket.destroyed) this.socket.write(Buffer.concat(frames));
  }

  /** A HEADERS frame of a GET (or `method`) on `streamId` with extra fields. */
  headers(
    streamId: number,
    path: string,
    opts: { method?: string; endStream?: boolean; extra?: [string, string][]; authority?: string } = {},
  ): Uint8Array {
    const fields: [string, string][] = [
      [':method', opts.method ?? 'GET'],
      [':scheme', 'http'],
      [':path', path],
      [':authority', opts.authority ?? 'localhost'],
      ...(opts.extra ?? []),
    ];
    return encodeHeaders(streamId, this.encoder.encode(fields), { endStream: opts.endStream ?? true });
  }

  /** A DATA frame. */
  data(streamId: number, data: Uint8Array | string, endStream = false): Uint8Array {
    return encodeData(streamId, typeof data === 'string' ? Buffer.from(data) : data, { endStream });
  }

  /** Resolves once a frame matching `pred` arrived (or the connection closed); fails after `ms`. */
  async until(pred: (f: ServerFrame) => boolean, ms = 5000): Promise<ServerFrame | undefined> {
    const deadline = Date.now() + ms;
    for (;;) {
      const f = this.frames.find(pred);
      if (f !== undefined) return f;
      if (this.closed) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`RawH2Client: timed out; got ${JSON.stringify(this.frames.slice(-10))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Resolves with the GOAWAY once the server closed the connection. */
  async untilClosed(ms = 5000): Promise<ServerFrame | undefined> {
    await this.until(() => false, ms).catch((e) => {
      if (!this.closed) throw e;
    });
    return this.frames.find((f) => f.t === 'goaway');
  }

  /** The response head of a stream, once it arrived. */
  async response(streamId: number): Promise<Record<string, string>> {
    const f = await this.until((x) => x.t === 'headers' && x.streamId === streamId);
    if (f?.t !== 'headers') throw new Error(`no response on stream ${streamId}`);
    return Object.fromEntries(f.fields);
  }

  /** The body of a stream once END_STREAM arrived. */
  async body(streamId: number): Promise<string> {
    await this.until((x) => (x.t === 'data' || x.t === 'headers') && x.streamId === streamId && x.endStream);
    return Buffer.concat(this.bodies.get(streamId) ?? []).toString();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  onData(streamId: number, data: Uint8Array, endStream: boolean): void {
    let list = this.bodies.get(streamId);
    if (list === undefined) this.bodies.set(streamId, (list = []));
    list.push(Buffer.from(data));
    const last = this.frames[this.frames.length - 1];
    if (last?.t === 'data' && last.streamId === streamId && !last.endStream) {
      last.length += data.length;
      last.endStream = endStream;
    } else {
      this.frames.push({ t: 'data', streamId, length: data.length, endStream });
    }
  }
  onHeaders(streamId: number, block: Uint8Array, endStream: boolean, _p: Http2Priority | null): void {
    this.frames.push({ t: 'headers', streamId, fields: this.hpack.decodeToList(block), endStream });
  }
  onPriority(): void {}
  onRstStream(streamId: number, errorCode: number): void {
    this.frames.push({ t: 'rst', streamId, errorCode });
  }
  onSettings(settings: Http2SettingsUpdate): void {
    this.frames.push({ t: 'settings', settings });
    if (this.autoSettingsAck) this.send(encodeSettingsAck());
  }
  onSettingsAck(): void {
    this.frames.push({ t: 'settingsAck' });
  }
  onPushPromise(): void {}
  onPing(data: Uint8Array, ack: boolean): void {
    this.frames.push({ t: 'ping', data: Buffer.from(data).toString('hex'), ack });
    // A client answers the server's PINGs (the graceful shutdown waits for one).
    if (!ack && this.autoPingAck) this.send(encodePing(data, true));
  }
  onGoaway(lastStreamId: number, errorCode: number, debug: Uint8Array): void {
    this.frames.push({ t: 'goaway', lastStreamId, errorCode, debug: Buffer.from(debug).toString() });
  }
  onWindowUpdate(streamId: number, increment: number): void {
    this.frames.push({ t: 'window', streamId, increment });
  }
  onStreamError(_e: Http2StreamError): void {}
}
