import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { idleTrimMs } from './worker.js';

const config = (extra: string) =>
  parseConfig(
    `[runtime]\n${extra}\n[servers.web]\nlistener = { type = "socket", value = "127.0.0.1:8080" }\n` +
      `[[servers.web.routes]]\npath = "/"\nupstreams = [{ endpoint = "http://127.0.0.1:9000" }]\n`,
  );

describe('idle memory trim of a worker', () => {
  it('takes runtime.idle_memory_trim, and LOCH_IDLE_TRIM_MS over it when set', () => {
    expect(idleTrimMs(config(''), undefined)).toBe(1000);
    expect(idleTrimMs(config('idle_memory_trim = "0s"'), undefined)).toBe(0);
    expect(idleTrimMs(config('idle_memory_trim = "5s"'), '')).toBe(5000);
    expect(idleTrimMs(config('idle_memory_trim = "5s"'), '0')).toBe(0);
    expect(idleTrimMs(config(''), '250')).toBe(250);
    expect(idleTrimMs(config('idle_memory_trim = "2s"'), 'later')).toBe(2000);
  });
});
