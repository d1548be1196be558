/**
 * Test helpers for the frame decoder: a handler that records every callback as plain data
 * (copying views), and a driver that feeds the same bytes whole, split at every point and byte
 * by byte, asserting that all splits yield the same events and the same error.
 */
import { expect } from 'vitest';
import { Http2ConnectionError, type Http2StreamError } from '../../src/h2/errors.js';
import {
  Http2FrameDecoder,
  type Http2FrameDecoderOptions,
  type Http2FrameHandler,
} from '../../src/h2/frame-decoder.js';
import type { Http2Priority, Http2SettingsUpdate } from '../../src/h2/frames.js';

export type FrameEvent =
  | { t: 'data'; streamId: number; data: string; endStream: boolean; flow: number }
  | { t: 'headers'; streamId: number; block: string; endStream: boolean; priority: Http2Priority | null }
  | { t: 'priority'; streamId: number; priority: Http2Priority }
  | { t: 'rst'; streamId: number; errorCode: number }
  | { t: 'settings'; settings: Http2SettingsUpdate }
  | { t: 'settingsAck' }
  | { t: 'push'; streamId: number; promised: number; block: string }
  | { t: 'ping'; data: string; ack: boolean }
  | { t: 'goaway'; lastStreamId: number; errorCode: number; debug: string }
  | { t: 'window'; streamId: number; increment: number }
  | { t: 'streamError'; code: string; errorCode: number; streamId: number };

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Records callbacks; DATA pieces stay separate (see {@link mergeData}). */
export class FrameRecorder implements Http2FrameHandler {
  events: FrameEvent[] = [];
  onData(streamId: number, data: Uint8Array, endStream: boolean, flow: number): void {
    this.events.push({ t: 'data', streamId, data: hex(data), endStream, flow });
  }
  onHeaders(streamId: number, block: Uint8Array, endStream: boolean, priority: Http2Priority | null): void {
    this.events.push({ t: 'headers', streamId, block: hex(block), endStream, priority });
  }
  onPriority(streamId: number, priority: Http2Priority): void {
    this.events.push({ t: 'priority', streamId, priority });
  }
  onRstStream(streamId: number, errorCode: number): void {
    this.events.push({ t: 'rst', streamId, errorCode });
  }
  onSettings(settings: Http2SettingsUpdate): void {
    this.events.push({ t: 'settings', settings });
  }
  onSettingsAck(): void {
    this.events.push({ t: 'settingsAck' });
  }
  onPushPromise(streamId: number, promised: number, block: Uint8Array): void {
    this.events.push({ t: 'push', streamId, promised, block: hex(block) });
  }
  onPing(data: Uint8Array, ack: boolean): void {
    this.events.push({ t: 'ping', data: hex(data), ack });
  }
  onGoaway(lastStreamId: number, errorCode: number, debug: Uint8Array): void {
    this.events.push({ t: 'goaway', lastStreamId, errorCode, debug: hex(debug) });
  }
  onWindowUpdate(streamId: number, increment: number): void {
    this.events.push({ t: 'window', streamId, increment });
  }
  onStreamError(e: Http2StreamError): void {
    this.events.push({ t: 'streamError', code: e.code, errorCode: e.errorCode, streamId: e.streamId });
  }
}

/**
 * Joins consecutive DATA pieces of one stream up to the one with endStream or the next other
 * event, so that events of different splits compare equal. Checks each frame's pieces sum right.
 */
export function mergeData(events: FrameEvent[]): FrameEvent[] {
  const out: FrameEvent[] = [];
  for (const e of events) {
    const last = out[out.length - 1];
    if (e.t === 'data' && last?.t === 'data' && last.streamId === e.streamId && !last.endStream) {
      out[out.length - 1] = {
        ...last,
        data: last.data + e.data,
        endStream: e.endStream,
        flow: last.flow + e.flow,
      };
    } else out.push(e);
  }
  return out;
}

export interface DecodeResult {
  events: FrameEvent[];
  error: Http2ConnectionError | null;
}

/** Feeds `chunks` to a new decoder; returns merged events and the connection error, if any. */
export function decodeChunks(chunks: Uint8Array[], options: Http2FrameDecoderOptions): DecodeResult {
  const rec = new FrameRecorder();
  const d = new Http2FrameDecoder(rec, options);
  let error: Http2ConnectionError | null = null;
  try {
    for (const c of chunks) d.feed(c);
  } catch (e) {
    if (!(e instanceof Http2ConnectionError)) throw e;
    error = e;
    // A failed decoder stays failed.
    expect(() => d.feed(new Uint8Array(1))).toThrow(e);
  }
  return { events: mergeData(rec.events), error };
}

/**
 * Decodes `bytes` whole, in two pieces at every split point and byte by byte; all must agree.
 * Returns the whole-input result.
 */
export function decodeEverySplit(bytes: Uint8Array, options: Http2FrameDecoderOptions): DecodeResult {
  const whole = decodeChunks([bytes], options);
  const summary = (r: DecodeResult) => ({ events: r.events, error: r.error?.code ?? null });
  for (let i = 1; i < bytes.length; i++) {
    const r = decodeChunks([bytes.subarray(0, i), bytes.subarray(i)], options);
    expect(summary(r), `split at ${i}`).toEqual(summary(whole));
  }
  const bytewise = decodeChunks(
    Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1)),
    options,
  );
  expect(summary(bytewise), 'byte by byte').toEqual(summary(whole));
  return whole;
}

/** Concatenates frames. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}
