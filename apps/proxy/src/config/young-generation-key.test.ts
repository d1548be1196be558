import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { runtimeConfig } from '../../test/runtime-config.js';
import { runtimeChanges, workerResourceLimits } from '../proxy/run.js';
import { ConfigError, parseConfig } from './load.js';

describe('[runtime] worker_young_generation_bytes', () => {
  it("defaults to 24 MiB (8 MiB semi-spaces), given to the workers' isolates", () => {
    const c = parseConfig(runtimeConfig(''));
    expect(c.runtime.workerYoungGenerationBytes).toBe(24 * 1024 * 1024);
    expect(workerResourceLimits(c)).toEqual({ maxYoungGenerationSizeMb: 24 });
  });

  it("reads sizes in nginx spelling or bytes; 0 leaves V8's own limit", () => {
    expect(workerResourceLimits(parseConfig(runtimeConfig('worker_young_generation_bytes = "48m"')))).toEqual(
      {
        maxYoungGenerationSizeMb: 48,
      },
    );
    expect(
      workerResourceLimits(parseConfig(runtimeConfig('worker_young_generation_bytes = 6291456'))),
    ).toEqual({
      maxYoungGenerationSizeMb: 6,
    });
    expect(
      workerResourceLimits(parseConfig(runtimeConfig('worker_young_generation_bytes = 0'))),
    ).toBeUndefined();
  });

  it('refuses a size V8 would not honour, naming the key', () => {
    for (const bad of ['"1m"', '"12 MB"', '-1', '"2g"', '"100g"', `${2 ** 30 + 1}`]) {
      let error: unknown;
      try {
        parseConfig(runtimeConfig(`worker_young_generation_bytes = ${bad}`));
      } catch (err) {
        error = err;
      }
      expect(error, bad).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues[0]!.path, bad).toBe('runtime.worker_young_generation_bytes');
    }
  });

  it('needs a restart: a reload that changes it is refused by name', () => {
    const a = parseConfig(runtimeConfig(''));
    const b = parseConfig(runtimeConfig('worker_young_generation_bytes = "12m"'));
    expect(runtimeChanges(a, b)).toEqual(['runtime.worker_young_generation_bytes']);
  });

  it('gives semi-spaces V8 rounds up to a power of two MiB: "16m" is "24m", "12m" is half', async () => {
    // Keeps ~300,000 objects alive across scavenges until the new space has grown to its cap,
    // then reports its committed size (two semi-spaces).
    const grownNewSpace = (size: string) => {
      const limits = workerResourceLimits(
        parseConfig(runtimeConfig(`worker_young_generation_bytes = "${size}"`)),
      );
      const worker = new Worker(
        `const v8 = require('node:v8');
         let keep = [];
         for (let i = 0; i < 4e6; i++) { keep.push({ i }); if (keep.length > 3e5) keep = []; }
         const s = v8.getHeapSpaceStatistics().find((x) => x.space_name === 'new_space');
         require('node:worker_threads').parentPort.postMessage(s.space_size);`,
        { eval: true, ...(limits === undefined ? {} : { resourceLimits: limits }) },
      );
      return new Promise<number>((resolve, reject) => {
        worker.once('message', (bytes: number) => {
          resolve(bytes / (1024 * 1024));
          void worker.terminate();
        });
        worker.once('error', reject);
      });
    };
    expect(await grownNewSpace('24m')).toBe(16);
    expect(await grownNewSpace('16m')).toBe(16);
    expect(await grownNewSpace('12m')).toBe(8);
  }, 30_000);
});
