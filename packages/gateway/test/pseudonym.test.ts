/**
 * The pseudonymizer: round trips (text, bytes, email form), determinism, key rotation (old key
 * ids still open), a wrong key, a token moved to another field or relabelled with another key
 * id, tampered tokens, keys from files and the environment (never printed), and fast-check
 * properties over arbitrary values and fields.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeKeyText, PseudonymError, Pseudonymizer, PseudonymKeyring } from '../src/index.js';
import { base32, unbase32 } from '../src/pseudonym/token-text.js';

const keyA = new Uint8Array(64).map((_, i) => i);
const keyB = new Uint8Array(64).map((_, i) => 255 - i);
const FIELD = 'UserService.getUser.result.success.email';

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (error) {
    if (error instanceof PseudonymError) return error.code;
    throw error;
  }
  return undefined;
}

describe('Pseudonymizer', () => {
  const p = new Pseudonymizer(new PseudonymKeyring([{ id: 'k1', key: keyA }]));

  it('round-trips text and bytes, and is deterministic', () => {
    const t = p.pseudonymize(FIELD, 'alice@example.com');
    expect(t).toMatch(/^pn1\.k1\.[A-Za-z0-9_-]+$/);
    expect(p.pseudonymize(FIELD, 'alice@example.com')).toBe(t);
    expect(p.pseudonymize(FIELD, 'bob@example.com')).not.toBe(t);
    expect(p.reveal(FIELD, t)).toBe('alice@example.com');
    expect(p.reveal(FIELD, p.pseudonymize(FIELD, ''))).toBe('');
    const bytes = new Uint8Array([0, 1, 2, 255]);
    expect([...p.revealBytes(FIELD, p.pseudonymizeBytes(FIELD, bytes))]).toEqual([...bytes]);
  });

  it('a leading U+FEFF is part of the value (a decoder must not drop it)', () => {
    const t = p.pseudonymize(FIELD, '\uFEFFalice');
    expect(t).not.toBe(p.pseudonymize(FIELD, 'alice'));
    expect(p.reveal(FIELD, t)).toBe('\uFEFFalice');
  });

  it('the email form is an address at pseudo.invalid that survives lowercasing', () => {
    const t = p.pseudonymize(FIELD, 'Alice@Example.com', 'email');
    expect(t).toMatch(/^tok_k1_[a-z2-7]+@pseudo\.invalid$/);
    expect(p.pseudonymize(FIELD, 'Alice@Example.com', 'email')).toBe(t);
    expect(p.reveal(FIELD, t)).toBe('Alice@Example.com');
    expect(p.reveal(FIELD, t.toUpperCase())).toBe('Alice@Example.com');
  });

  it('a token moved to another field does not open', () => {
    const t = p.pseudonymize(FIELD, 'alice@example.com');
    expect(code(() => p.reveal('UserService.getUser.result.success.name', t))).toBe('ERR_PSEUDONYM_INVALID');
    // The same value in another field gets another token.
    expect(p.pseudonymize('UserService.getUser.result.success.name', 'alice@example.com')).not.toBe(t);
  });

  it('a text token does not open as bytes, nor a bytes token as text', () => {
    expect(code(() => p.revealBytes(FIELD, p.pseudonymize(FIELD, 'x')))).toBe('ERR_PSEUDONYM_INVALID');
    expect(code(() => p.reveal(FIELD, p.pseudonymizeBytes(FIELD, new Uint8Array([0x78]))))).toBe(
      'ERR_PSEUDONYM_INVALID',
    );
  });

  it('rotates keys: new tokens use the current key, old key ids still open', () => {
    const old = p.pseudonymize(FIELD, 'alice@example.com');
    const rotated = new Pseudonymizer(
      new PseudonymKeyring(
        [
          { id: 'k1', key: keyA },
          { id: 'k2', key: keyB },
        ],
        'k2',
      ),
    );
    const fresh = rotated.pseudonymize(FIELD, 'alice@example.com');
    expect(fresh.startsWith('pn1.k2.')).toBe(true);
    expect(fresh).not.toBe(old);
    expect(rotated.reveal(FIELD, old)).toBe('alice@example.com');
    expect(rotated.reveal(FIELD, fresh)).toBe('alice@example.com');
    // The old keyring does not know k2.
    expect(code(() => p.reveal(FIELD, fresh))).toBe('ERR_PSEUDONYM_UNKNOWN_KEY');
  });

  it('refuses a wrong key and a token relabelled with another key id', () => {
    const t = p.pseudonymize(FIELD, 'alice@example.com');
    const wrong = new Pseudonymizer(new PseudonymKeyring([{ id: 'k1', key: keyB }]));
    expect(code(() => wrong.reveal(FIELD, t))).toBe('ERR_PSEUDONYM_INVALID');
    // Same key material under two ids: the key id is associated data, so relabelling fails.
    const both = new Pseudonymizer(
      new PseudonymKeyring([
        { id: 'k1', key: keyA },
        { id: 'k9', key: keyA },
      ]),
    );
    expect(code(() => both.reveal(FIELD, t.replace('pn1.k1.', 'pn1.k9.')))).toBe('ERR_PSEUDONYM_INVALID');
  });

  it('refuses malformed and tampered tokens with typed errors', () => {
    const t = p.pseudonymize(FIELD, 'alice@example.com');
    expect(code(() => p.reveal(FIELD, 'alice@example.com'))).toBe('ERR_PSEUDONYM_TOKEN');
    expect(code(() => p.reveal(FIELD, `${t}=`))).toBe('ERR_PSEUDONYM_TOKEN');
    expect(code(() => p.reveal(FIELD, 'pn1.k1.'))).toBe('ERR_PSEUDONYM_TOKEN');
    expect(code(() => p.reveal(FIELD, 'pn1.k1.AAAA'))).toBe('ERR_PSEUDONYM_INVALID');
    const body = t.slice('pn1.k1.'.length);
    const last = body.at(-1) === 'A' ? 'B' : 'A';
    expect(code(() => p.reveal(FIELD, `pn1.k1.${body.slice(0, -1)}${last}`))).toMatch(
      /ERR_PSEUDONYM_(INVALID|TOKEN)/,
    );
    expect(code(() => p.reveal('', t))).toBe('ERR_PSEUDONYM_VALUE');
    expect(code(() => p.pseudonymize(FIELD, 'a\ud800'))).toBe('ERR_PSEUDONYM_VALUE');
  });

  it('property: every value round-trips in every field, deterministically, and only in its field', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary' }),
        fc.string({ minLength: 1 }),
        fc.string({ minLength: 1 }),
        fc.constantFrom('text' as const, 'email' as const),
        (value, field, other, format) => {
          const t = p.pseudonymize(field, value, format);
          expect(p.pseudonymize(field, value, format)).toBe(t);
          expect(p.reveal(field, t)).toBe(value);
          if (other !== field) expect(code(() => p.reveal(other, t))).toBe('ERR_PSEUDONYM_INVALID');
        },
      ),
    );
  });

  it('property: distinct values give distinct tokens; bytes round-trip', () => {
    fc.assert(
      fc.property(fc.uint8Array(), fc.uint8Array(), (a, b) => {
        const ta = p.pseudonymizeBytes(FIELD, a);
        expect([...p.revealBytes(FIELD, ta)]).toEqual([...a]);
        expect(ta === p.pseudonymizeBytes(FIELD, b)).toBe(Buffer.from(a).equals(Buffer.from(b)));
      }),
    );
  });

  it('property: base32 is canonical (decoding refuses every other spelling)', () => {
    fc.assert(
      fc.property(fc.uint8Array(), (bytes) => {
        const text = base32(bytes);
        expect([...(unbase32(text) ?? [])]).toEqual([...bytes]);
      }),
    );
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z2-7]{0,20}$/), (text) => {
        const bytes = unbase32(text);
        if (bytes !== undefined) expect(base32(bytes)).toBe(text);
      }),
    );
  });
});

describe('PseudonymKeyring', () => {
  const dir = mkdtempSync(join(tmpdir(), 'loch-pseudonym-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const hexKey = Buffer.from(keyA).toString('hex');
  const b64Key = Buffer.from(keyB).toString('base64');

  it('loads keys from files and environment variables (hex or base64)', () => {
    writeFileSync(join(dir, 'k1.key'), `${hexKey}\n`);
    const ring = PseudonymKeyring.load(
      [
        { id: 'k1', file: join(dir, 'k1.key') },
        { id: 'k2', env: 'PSEUDO_KEY_2' },
      ],
      { current: 'k2', environment: { PSEUDO_KEY_2: b64Key } },
    );
    expect(ring.ids).toEqual(['k2', 'k1']);
    expect([...(ring.key('k1') ?? [])]).toEqual([...keyA]);
    expect([...(ring.key('k2') ?? [])]).toEqual([...keyB]);
  });

  it('never shows key material in inspect, JSON or errors', () => {
    const ring = new PseudonymKeyring([{ id: 'k1', key: keyA }]);
    const shown = `${inspect(ring, { depth: 5, showHidden: true })} ${JSON.stringify(ring)}`;
    expect(shown).not.toContain(hexKey.slice(0, 16));
    expect(shown).not.toContain('0, 1, 2, 3');
    const bad = 'c2VjcmV0LXRleHQtdGhhdC1pcy1ub3QtYS1rZXk=';
    try {
      PseudonymKeyring.load([{ id: 'k1', env: 'K' }], { environment: { K: bad } });
      expect.unreachable();
    } catch (error) {
      expect((error as PseudonymError).code).toBe('ERR_PSEUDONYM_KEY');
      expect((error as Error).message).toContain('environment variable K');
      expect((error as Error).message).not.toContain(bad);
    }
  });

  it('refuses bad sources, ids and keys with ERR_PSEUDONYM_KEY', () => {
    const env = { SHORT: Buffer.alloc(16).toString('hex') };
    const cases: Array<() => unknown> = [
      () => PseudonymKeyring.load([{ id: 'k1', file: join(dir, 'missing') }]),
      () => PseudonymKeyring.load([{ id: 'k1', env: 'UNSET_PSEUDO_KEY' }], { environment: {} }),
      () => PseudonymKeyring.load([{ id: 'k1', env: 'SHORT' }], { environment: env }),
      () => PseudonymKeyring.load([{ id: 'k1' }]),
      () => PseudonymKeyring.load([{ id: 'k1', env: 'A', file: 'b' }]),
      () => PseudonymKeyring.load([]),
      () => new PseudonymKeyring([{ id: 'K1', key: keyA }]),
      () => new PseudonymKeyring([{ id: 'k.1', key: keyA }]),
      () => new PseudonymKeyring([{ id: '-k', key: keyA }]),
      () => new PseudonymKeyring([{ id: 'k1', key: new Uint8Array(16) }]),
      () =>
        new PseudonymKeyring([
          { id: 'k1', key: keyA },
          { id: 'k1', key: keyB },
        ]),
      () => new PseudonymKeyring([{ id: 'k1', key: keyA }], 'k2'),
    ];
    for (const c of cases) expect(code(c)).toBe('ERR_PSEUDONYM_KEY');
  });

  it('decodes key text strictly', () => {
    expect(decodeKeyText(` ${hexKey}\n`)?.length).toBe(64);
    expect(decodeKeyText(Buffer.from(keyA.subarray(0, 32)).toString('base64url'))?.length).toBe(32);
    expect(decodeKeyText(`${hexKey.slice(0, -1)}g`)).toBeUndefined();
    expect(decodeKeyText(`${b64Key.slice(0, 10)}!${b64Key.slice(11)}`)).toBeUndefined();
    expect(decodeKeyText('')).toBeUndefined();
  });
});
