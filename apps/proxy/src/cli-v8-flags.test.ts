/**
 * LOCH_V8_FLAGS (cli.ts): the V8 flags `loch run` sets before its workers start. Only flags safe
 * to change once the main isolate runs are taken; anything else is refused by name, never passed
 * to V8 (`--single-threaded-gc` set at run time crashed the main isolate's next full GC).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_V8_FLAGS, main, v8FlagsFromEnv } from './cli.js';

// What `loch run` hands to V8 and when. A flag's value cannot be read back from JavaScript (V8 has
// no getter; process.execArgv does not change), so the two calls are watched in order instead:
// setFlagsFromString, then runProxy, which starts the workers whose isolates read the flags.
const calls = vi.hoisted(() => [] as string[]);
vi.mock('node:v8', async (importOriginal) => ({
  ...(await importOriginal<typeof import('node:v8')>()),
  setFlagsFromString: (flag: string) => {
    calls.push(`flag ${flag}`);
  },
}));
vi.mock('./proxy/run.js', () => ({
  runProxy: async () => {
    calls.push('runProxy');
    return 0;
  },
}));

const config = new URL('../test/monolake.toml', import.meta.url).pathname;

async function runWith(value: string | undefined): Promise<number> {
  const before = process.env.LOCH_V8_FLAGS;
  if (value === undefined) delete process.env.LOCH_V8_FLAGS;
  else process.env.LOCH_V8_FLAGS = value;
  try {
    return await main(['run', '-c', config]);
  } finally {
    if (before === undefined) delete process.env.LOCH_V8_FLAGS;
    else process.env.LOCH_V8_FLAGS = before;
  }
}

describe('LOCH_V8_FLAGS', () => {
  afterEach(() => {
    calls.length = 0;
  });

  it('loch run sets the default flags before it starts the workers', async () => {
    expect(await runWith(undefined)).toBe(0);
    expect(calls).toEqual([
      'flag --no-parallel-scavenge',
      'flag --no-concurrent-array-buffer-sweeping',
      'runProxy',
    ]);
  });

  it('loch run sets the flags LOCH_V8_FLAGS names instead, and none when it is empty', async () => {
    expect(await runWith(' --parallel-scavenge ')).toBe(0);
    expect(calls).toEqual(['flag --parallel-scavenge', 'runProxy']);
    calls.length = 0;
    expect(await runWith('')).toBe(0);
    expect(calls).toEqual(['runProxy']);
  });

  it('loch check sets no flag', async () => {
    const write = process.stdout.write;
    process.stdout.write = (() => true) as typeof process.stdout.write;
    try {
      expect(await main(['check', '-c', config])).toBe(0);
    } finally {
      process.stdout.write = write;
    }
    expect(calls).toEqual([]);
  });

  it("defaults to serial scavenges that sweep their ArrayBuffers on the worker's thread when unset (the memory reducer kept)", () => {
    expect(DEFAULT_V8_FLAGS).toBe('--no-parallel-scavenge --no-concurrent-array-buffer-sweeping');
    expect(v8FlagsFromEnv(undefined)).toEqual({
      flags: ['--no-parallel-scavenge', '--no-concurrent-array-buffer-sweeping'],
    });
  });

  it("empty means V8's own defaults; the parallel scavenge can be asked back", () => {
    expect(v8FlagsFromEnv('')).toEqual({ flags: [] });
    expect(v8FlagsFromEnv('  --parallel-scavenge ')).toEqual({ flags: ['--parallel-scavenge'] });
    expect(v8FlagsFromEnv('--concurrent-array-buffer-sweeping')).toEqual({
      flags: ['--concurrent-array-buffer-sweeping'],
    });
    expect(v8FlagsFromEnv('--memory-reducer')).toEqual({ flags: ['--memory-reducer'] });
  });

  it('refuses flags that are not safe to set at run time, naming them', () => {
    const r = v8FlagsFromEnv('--no-parallel-scavenge --single-threaded-gc --expose-gc');
    expect(r).toHaveProperty('error');
    const error = (r as { error: string }).error;
    expect(error).toContain('"--single-threaded-gc"');
    expect(error).toContain('"--expose-gc"');
    expect(error).not.toContain('"--no-parallel-scavenge"');
  });

  it('caps what a refused flag echoes', () => {
    const r = v8FlagsFromEnv(`--${'x'.repeat(10_000)}`) as { error: string };
    expect(r.error.length).toBeLessThan(300);
  });

  it('loch run exits 2 on a refused flag before reading anything else', async () => {
    const before = process.env.LOCH_V8_FLAGS;
    const write = process.stderr.write;
    let err = '';
    process.env.LOCH_V8_FLAGS = '--single-threaded-gc';
    process.stderr.write = ((chunk: string) => {
      err += chunk;
      return true;
    }) as typeof process.stderr.write;
    try {
      expect(await main(['run', '-c', config])).toBe(2);
    } finally {
      process.stderr.write = write;
      if (before === undefined) delete process.env.LOCH_V8_FLAGS;
      else process.env.LOCH_V8_FLAGS = before;
    }
    expect(err).toContain('LOCH_V8_FLAGS: "--single-threaded-gc" cannot be set here');
    expect(calls).toEqual([]);
  });
});
