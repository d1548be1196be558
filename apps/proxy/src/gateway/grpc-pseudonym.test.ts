/**
 * The gRPC schema side is imported lazily (grpc-pseudonym.ts): an import that failed once is
 * tried again by the next caller instead of failing every later call of the worker.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';

describe('loadGrpcSchemaSide', () => {
  afterEach(() => {
    vi.doUnmock('./grpc-pseudonym-schema.js');
    vi.resetModules();
  });

  it('tries a failed import again on the next call', async () => {
    let attempts = 0;
    vi.doMock('./grpc-pseudonym-schema.js', () => {
      attempts++;
      if (attempts === 1) throw new Error('EMFILE: too many open files');
      return { rewriterOf: () => undefined };
    });
    const { loadGrpcSchemaSide } = await import('./grpc-pseudonym.js');
    await expect(loadGrpcSchemaSide()).rejects.toThrow();
    const side = await loadGrpcSchemaSide();
    expect(typeof side.rewriterOf).toBe('function');
    expect(attempts).toBe(2);
    // Loaded: later calls reuse the module.
    expect(await loadGrpcSchemaSide()).toBe(side);
    expect(attempts).toBe(2);
  });

  it('a call whose schema side cannot load fails closed: 503 ERR_LOCH_GATEWAY_UNAVAILABLE, nothing forwarded', async () => {
    vi.doMock('./grpc-pseudonym-schema.js', () => {
      throw new Error('broken install');
    });
    const { callWithGrpcPseudonyms } = await import('./grpc-pseudonym.js');
    // The error class of the module graph the fresh module runs in.
    const { ProxyError } = await import('../proxy/errors.js');
    let forwarded = 0;
    const failure = await Promise.resolve(
      callWithGrpcPseudonyms({} as never, {} as never, () => {
        forwarded++;
        return {} as never;
      }),
    ).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ProxyError);
    expect((failure as InstanceType<typeof ProxyError>).code).toBe('ERR_LOCH_GATEWAY_UNAVAILABLE');
    expect((failure as InstanceType<typeof ProxyError>).status).toBe(503);
    expect(forwarded).toBe(0);
  });
});
