import { createHook } from 'node:async_hooks';
import { describe, expect, it } from 'vitest';
import type { RecvChunk, RecvTarget, WriteTarget } from '../stream.js';
import { closeBatch, deliverRecv, deliverWritten, openBatch } from './target-delivery.js';

/** Targets that log their calls by name, in order. */
function logTargets(log: string[]) {
  const recv = (name: string, then?: () => void): RecvTarget => ({
    onRecv(chunk: RecvChunk | null) {
      log.push(`${name}:${chunk === null ? 'end' : Buffer.from(chunk.bytes).toString()}`);
      then?.();
    },
  });
  const written = (name: string): WriteTarget => ({
    onWritten(error) {
      log.push(`${name}:${error === undefined ? 'ok' : 'failed'}`);
    },
  });
  return { recv, written };
}

const chunk = (text: string): RecvChunk => ({ bytes: Buffer.from(text), release() {} });

/** Promises made while `fn` runs. */
function promisesMadeBy(fn: () => void): number {
  let made = 0;
  const hook = createHook({
    init(_id, type) {
      if (type === 'PROMISE') made++;
    },
  });
  hook.enable();
  try {
    fn();
  } finally {
    hook.disable();
  }
  return made;
}

describe('the delivery queue', () => {
  it('outside a batch delivers at the next microtask, with one promise for all queued', async () => {
    const log: string[] = [];
    const { recv, written } = logTargets(log);
    const made = promisesMadeBy(() => {
      deliverRecv(recv('a'), chunk('x'), undefined);
      deliverWritten(written('b'), undefined);
      deliverRecv(recv('c'), null, undefined);
    });
    expect(log).toEqual([]);
    expect(made).toBe(1);
    await Promise.resolve();
    expect(log).toEqual(['a:x', 'b:ok', 'c:end']);
  });

  it("a completion batch's deliveries wait for its end, then run there in order, without a promise", async () => {
    const log: string[] = [];
    const { recv, written } = logTargets(log);
    let outer = false;
    const made = promisesMadeBy(() => {
      outer = openBatch();
      deliverRecv(recv('a'), chunk('x'), undefined);
      deliverWritten(written('b'), undefined);
      log.push('dispatched');
    });
    expect(outer).toBe(false);
    expect(made).toBe(0);
    expect(log).toEqual(['dispatched']);
    closeBatch(outer);
    expect(log).toEqual(['dispatched', 'a:x', 'b:ok']);
    // Nothing is left for a microtask to deliver twice.
    await Promise.resolve();
    expect(log).toEqual(['dispatched', 'a:x', 'b:ok']);
  });

  it('a nested batch delivers nothing at its own end: the outermost does', () => {
    const log: string[] = [];
    const { recv } = logTargets(log);
    const outer = openBatch();
    const inner = openBatch();
    expect(inner).toBe(true);
    deliverRecv(recv('a'), chunk('x'), undefined);
    closeBatch(inner);
    expect(log).toEqual([]);
    closeBatch(outer);
    expect(log).toEqual(['a:x']);
  });

  it('what a target queues while the batch is delivered runs in the same pass, after the others', () => {
    const log: string[] = [];
    const { recv } = logTargets(log);
    const outer = openBatch();
    deliverRecv(
      recv('a', () => deliverRecv(recv('again'), chunk('y'), undefined)),
      chunk('x'),
      undefined,
    );
    deliverRecv(recv('b'), chunk('z'), undefined);
    const made = promisesMadeBy(() => closeBatch(outer));
    expect(log).toEqual(['a:x', 'b:z', 'again:y']);
    expect(made).toBe(0);
  });

  it('keeps the order of results queued before the batch (their microtask pending) and in it', async () => {
    const log: string[] = [];
    const { recv, written } = logTargets(log);
    deliverRecv(recv('before'), chunk('x'), undefined);
    const outer = openBatch();
    deliverWritten(written('in'), undefined);
    closeBatch(outer);
    expect(log).toEqual(['before:x', 'in:ok']);
    await Promise.resolve();
    expect(log).toEqual(['before:x', 'in:ok']);
  });
});
