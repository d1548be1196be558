/**
 * The rare part of an HTTP/1.1 server connection goes when the connection parks with every field
 * back to its default (H1Rare.empty, issue 18): a field added later and left out of `empty` would
 * be dropped with state in it. This test sets each field in turn.
 */
import { describe, expect, it } from 'vitest';
import { H1Rare } from './server-connection.js';

describe('H1Rare.empty', () => {
  it('is true for a new part and false when any one of its fields is set', () => {
    expect(new H1Rare().empty).toBe(true);
    const fields = Object.keys(new H1Rare());
    expect(fields.length).toBeGreaterThan(0);
    for (const field of fields) {
      const part = new H1Rare();
      (part as unknown as Record<string, unknown>)[field] = { set: field };
      expect([field, part.empty]).toEqual([field, false]);
    }
  });
});
