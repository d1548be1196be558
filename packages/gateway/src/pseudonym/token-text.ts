/**
 * The text forms of a token (the AES-SIV output V || C under a key id):
 *
 * - `pn1.<kid>.<base64url>`: the general form (no padding; only the canonical encoding is read).
 * - `tok_<kid>_<base32>@pseudo.invalid`: an email address for fields that must stay one. The
 *   local part is lowercase base32 (RFC 4648 alphabet, no padding), so it survives systems that
 *   lowercase addresses; `.invalid` (RFC 2606) can never deliver mail.
 *
 * Both are read case-sensitively for `pn1.` and case-insensitively for the email form.
 */

export type TokenFormat = 'text' | 'email';

export interface ParsedToken {
  readonly format: TokenFormat;
  readonly kid: string;
  readonly sealed: Uint8Array;
}

const TEXT = /^pn1\.([a-z0-9][a-z0-9-]{0,31})\.([A-Za-z0-9_-]+)$/;
const EMAIL = /^tok_([a-z0-9][a-z0-9-]{0,31})_([a-z2-7]+)@pseudo\.invalid$/;
export const EMAIL_DOMAIN = 'pseudo.invalid';

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

export function base32(bytes: Uint8Array): string {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32[(acc >>> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(acc << (5 - bits)) & 31];
  return out;
}

/** Strict decoding: undefined for a length no encoding has or nonzero trailing bits (non-canonical). */
export function unbase32(text: string): Uint8Array | undefined {
  const rem = text.length % 8;
  if (rem === 1 || rem === 3 || rem === 6) return undefined;
  const out = new Uint8Array(Math.floor((text.length * 5) / 8));
  let acc = 0;
  let bits = 0;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const v = BASE32.indexOf(text[i] as string);
    if (v < 0) return undefined;
    acc = ((acc << 5) | v) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (acc >>> bits) & 0xff;
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) return undefined;
  return out;
}

export function formatToken(format: TokenFormat, kid: string, sealed: Uint8Array): string {
  if (format === 'email') return `tok_${kid}_${base32(sealed)}@${EMAIL_DOMAIN}`;
  return `pn1.${kid}.${Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength).toString('base64url')}`;
}

/** Parses either form; undefined when `text` is not a well-formed token. */
export function parseToken(text: string): ParsedToken | undefined {
  const t = TEXT.exec(text);
  if (t) {
    const body = t[2] as string;
    const sealed = Buffer.from(body, 'base64url');
    if (sealed.toString('base64url') !== body) return undefined;
    return { format: 'text', kid: t[1] as string, sealed: new Uint8Array(sealed) };
  }
  const e = EMAIL.exec(text.toLowerCase());
  if (e) {
    const sealed = unbase32(e[2] as string);
    if (sealed === undefined) return undefined;
    return { format: 'email', kid: e[1] as string, sealed };
  }
  return undefined;
}
