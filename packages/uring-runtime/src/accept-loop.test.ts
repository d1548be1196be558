import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type AcceptSource, acceptLoop } from './accept-loop.js';
import { RuntimeError } from './errors.js';

/**
 * A listener whose accepts are answered from a script, one step per accept: a stream (a
 * number here), an error, or 'hold' (never settles until release()). Records when each accept
 * was made (fake time).
 */
class ScriptedListener implements AcceptSource<number> {
  readonly acceptedAt: number[] = [];
  private holdResolve: ((v: number) => void) | null = null;
  private holdReject: ((e: unknown) => void) | null = null;

  constructor(private readonly script: (number | Error | 'hold')[]) {}

  accept(): Promise<number> {
    this.acceptedAt.push(Date.now());
    const step = this.script.shift() ?? 'hold';
    if (step === 'hold') {
      return new Promise((resolve, reject) => {
        this.holdResolve = resolve;
        this.holdReject = reject;
      });
    }
    return step instanceof Error ? Promise.reject(step) : Promise.resolve(step);
  }

  /** Settles the held accept as a close() would: ECANCELED. */
  close(): void {
    this.holdReject?.(new RuntimeError('ECANCELED', 'accept'));
  }

  /** Settles the held accept with a stream. */
  deliver(stream: number): void {
    this.holdResolve?.(stream);
  }
}

const emfile = () => new RuntimeError('EMFILE', 'accept', { errno: 24 });

describe('acceptLoop', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('hands every accepted stream to onStream in order and resolves when the listener closes', async () => {
    const listener = new ScriptedListener([1, 2, 3, 'hold']);
    const got: number[] = [];
    let done = false;
    const loop = acceptLoop(listener, (s) => got.push(s)).then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(got).toEqual([1, 2, 3]);
    expect(done).toBe(false);
    listener.close();
    await loop;
    expect(done).toBe(true);
    expect(listener.acceptedAt).toHaveLength(4);
  });

  it('stops on EBADF as on ECANCELED, without reporting it', async () => {
    const onError = vi.fn();
    const listener = new ScriptedListener([1, new RuntimeError('EBADF', 'accept', { errno: 9 })]);
    const got: number[] = [];
    await acceptLoop(listener, (s) => got.push(s), { onError });
    expect(got).toEqual([1]);
    expect(onError).not.toHaveBeenCalled();
  });

  it('reports other failures and backs off exponentially from 10 ms, capped at 1 s', async () => {
    const errors = Array.from({ length: 10 }, emfile);
    const listener = new ScriptedListener([...errors, 7, 'hold']);
    const reported: unknown[] = [];
    const got: number[] = [];
    const loop = acceptLoop(listener, (s) => got.push(s), { onError: (e) => reported.push(e) });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(reported).toEqual(errors);
    expect(got).toEqual([7]);
    const t0 = listener.acceptedAt[0]!;
    const gaps = listener.acceptedAt.slice(1).map((t, i) => t - (listener.acceptedAt[i] ?? t0));
    expect(gaps).toEqual([10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000, 0]);
    listener.close();
    await loop;
  });

  it('does not spin: while failures continue, accepts are at most one per back-off', async () => {
    let stopping = false;
    const listener = new ScriptedListener(Array.from({ length: 1000 }, emfile));
    const loop = acceptLoop(listener, () => {}, { onError: () => {}, stopping: () => stopping });
    await vi.advanceTimersByTimeAsync(5_000);
    // Accepts at 0, 10, 30, 70, 150, 310, 630 and 1270 ms, then one per second: 2270, 3270, 4270.
    expect(listener.acceptedAt).toHaveLength(11);
    stopping = true;
    await vi.advanceTimersByTimeAsync(1_000);
    await loop;
  });

  it('resets the back-off after a success', async () => {
    const listener = new ScriptedListener([emfile(), emfile(), emfile(), 1, emfile(), 2, 'hold']);
    const got: number[] = [];
    const loop = acceptLoop(listener, (s) => got.push(s), { onError: () => {} });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(got).toEqual([1, 2]);
    const a = listener.acceptedAt;
    const gaps = a.slice(1).map((t, i) => t - a[i]!);
    // three failures: 10, 20, 40; the success resets; the next failure waits 10 again.
    expect(gaps).toEqual([10, 20, 40, 0, 10, 0]);
    listener.close();
    await loop;
  });

  it('honours minBackoff and maxBackoff', async () => {
    const listener = new ScriptedListener([emfile(), emfile(), emfile(), emfile(), 'hold']);
    const loop = acceptLoop(listener, () => {}, { onError: () => {}, minBackoff: 50, maxBackoff: 120 });
    await vi.advanceTimersByTimeAsync(1_000);
    const a = listener.acceptedAt;
    expect(a.slice(1).map((t, i) => t - a[i]!)).toEqual([50, 100, 120, 120]);
    listener.close();
    await loop;
  });

  it('stops when stopping() says so: before the next accept, and after a failure without reporting it', async () => {
    let stopping = false;
    const listener = new ScriptedListener(['hold']);
    const got: number[] = [];
    const loop = acceptLoop(listener, (s) => got.push(s), { stopping: () => stopping });
    await vi.advanceTimersByTimeAsync(0);
    stopping = true;
    // A stream accepted while stopping still reaches onStream (it decides), then the loop ends.
    listener.deliver(9);
    await loop;
    expect(got).toEqual([9]);
    expect(listener.acceptedAt).toHaveLength(1);

    const onError = vi.fn();
    const failing = new ScriptedListener([emfile()]);
    await acceptLoop(failing, () => {}, { stopping: () => true, onError });
    expect(failing.acceptedAt).toHaveLength(0);
    let flag = false;
    const failing2 = new ScriptedListener(['hold']);
    const loop2 = acceptLoop(failing2, () => {}, { stopping: () => flag, onError });
    await vi.advanceTimersByTimeAsync(0);
    flag = true;
    failing2.close(); // any failure while stopping ends the loop
    await loop2;
    expect(onError).not.toHaveBeenCalled();
  });

  it('a stop during the back-off ends the loop when the back-off is over, with no further accept', async () => {
    let stopping = false;
    const listener = new ScriptedListener([emfile(), 1]);
    const got: number[] = [];
    const loop = acceptLoop(listener, (s) => got.push(s), { stopping: () => stopping, onError: () => {} });
    await vi.advanceTimersByTimeAsync(5);
    stopping = true;
    await vi.advanceTimersByTimeAsync(10);
    await loop;
    expect(listener.acceptedAt).toHaveLength(1);
    expect(got).toEqual([]);
  });

  it('a throw from onStream rejects the loop', async () => {
    const listener = new ScriptedListener([1, 2]);
    const boom = new Error('boom');
    await expect(
      acceptLoop(listener, () => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(listener.acceptedAt).toHaveLength(1);
  });

  it('whenFull: at the limit no accept is made until its promise settles, then accepting resumes', async () => {
    const listener = new ScriptedListener([1, 2, 3, 4, 'hold']);
    const got: number[] = [];
    const limit = 2;
    let open = 0;
    let wake: (() => void) | null = null;
    const loop = acceptLoop(
      listener,
      (s) => {
        got.push(s);
        open++;
      },
      {
        whenFull: () =>
          open < limit
            ? null
            : new Promise<void>((resolve) => {
                wake = resolve;
              }),
      },
    );
    await vi.advanceTimersByTimeAsync(100);
    expect(got).toEqual([1, 2]);
    expect(listener.acceptedAt).toHaveLength(2);
    // one connection closes: exactly one more is accepted, then the loop waits again
    open--;
    (wake as unknown as () => void)();
    await vi.advanceTimersByTimeAsync(100);
    expect(got).toEqual([1, 2, 3]);
    expect(listener.acceptedAt).toHaveLength(3);
    open = 0;
    (wake as unknown as () => void)();
    await vi.advanceTimersByTimeAsync(0);
    expect(got).toEqual([1, 2, 3, 4]);
    listener.close();
    await loop;
  });
});
