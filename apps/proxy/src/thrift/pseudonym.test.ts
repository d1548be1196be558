/**
 * withPseudonyms when the pseudonymize table cannot be used (its key file is unreadable): every
 * call is refused with INTERNAL_ERROR, never forwarded unrewritten, and the refused call is
 * released: the server hands calls in place (a view of a pooled receive buffer), so a refusal
 * that kept it would take one pool buffer away for good per call; through call() and through
 * dispatch() (the worker's server dispatches), whose responder gets the refusal.
 */
import { loadIdl } from '@loch/gateway';
import { TApplicationException, type ThriftRequest } from '@loch/thrift';
import { describe, expect, it } from 'vitest';
import type { ThriftServerConfig } from '../config/schema.js';
import type { PseudonymConfig } from '../gateway/pseudonym-config.js';
import { ProxyLog } from '../proxy/log.js';
import { withPseudonyms } from './pseudonym.js';

describe('withPseudonyms, keys unavailable', () => {
  it('refuses each call and releases it', async () => {
    const idl = loadIdl('/p/p.thrift', { readFile: () => 'service S { string get(1: string email) }' });
    const pseudonymize: PseudonymConfig = {
      idl,
      direction: 'pseudonymize',
      keys: [{ id: 'k1', file: '/nonexistent/loch-test-key' }],
      current: 'k1',
      fields: [],
      annotations: false,
      functions: [],
    } as unknown as PseudonymConfig;
    const config = { key: 'thrift', pseudonymize } as unknown as ThriftServerConfig;
    let forwarded = 0;
    const inner = {
      call: () => {
        forwarded++;
        return Promise.resolve(undefined);
      },
      dispatch: () => {
        forwarded++;
      },
    };
    const errors: string[] = [];
    const log = new ProxyLog(
      'error',
      'test',
      () => undefined,
      (t) => errors.push(t),
    );
    const handler = withPseudonyms(inner, () => config, log);
    let released = 0;
    for (let i = 0; i < 3; i++) {
      const request = { header: { name: 'get' }, release: () => released++ } as unknown as ThriftRequest;
      await expect(handler.call(request)).rejects.toBeInstanceOf(TApplicationException);
    }
    // The server dispatches (servers.ts): the refusal reaches the responder, once per call.
    for (let i = 0; i < 3; i++) {
      const request = { header: { name: 'get' }, release: () => released++ } as unknown as ThriftRequest;
      const answers = await new Promise<unknown[]>((resolve) => {
        handler.dispatch(request, { respond: (reply, error) => resolve([reply, error]) });
      });
      expect(answers[0]).toBeUndefined();
      expect(answers[1]).toBeInstanceOf(TApplicationException);
    }
    expect(forwarded).toBe(0);
    expect(released).toBe(6);
  });
});
