/**
 * Pseudonymization keys: AES-SIV keys (32, 48 or 64 bytes; 64 is AES-256-SIV) each under a key id,
 * one of them current (new tokens use it; tokens of every other id still open, so keys rotate by
 * adding a new current key and keeping the old ones until their tokens are gone).
 *
 * Keys come from files or environment variables only, as text: hex or base64 (`openssl rand
 * -base64 64`), surrounding whitespace ignored. Never from configuration text: a config holds
 * `{ id, file }` or `{ id, env }`. The key bytes live in a private field, so neither
 * util.inspect, JSON.stringify nor an error message shows them.
 */
import { readFileSync } from 'node:fs';
import { PseudonymError } from './errors.js';

/** Where one key comes from: exactly one of `file` and `env`. */
export interface PseudonymKeySource {
  /** The key id written into tokens: 1-32 of lowercase letters, digits and `-`, starting with a letter or digit. */
  readonly id: string;
  /** A file holding the key as hex or base64 text. */
  readonly file?: string;
  /** An environment variable holding the key as hex or base64 text. */
  readonly env?: string;
}

export interface PseudonymKeyringOptions {
  /** The id of the key new tokens use; default the first source. */
  readonly current?: string;
  /** The environment to read `env` sources from; default process.env. */
  readonly environment?: Readonly<Record<string, string | undefined>>;
}

const KEY_ID = /^[a-z0-9][a-z0-9-]{0,31}$/;
const KEY_LENGTHS = new Set([32, 48, 64]);

/** Whether `id` is a valid key id. */
export function isKeyId(id: string): boolean {
  return KEY_ID.test(id);
}

/** Decodes key text (hex or base64/base64url) strictly; undefined when it is neither or the wrong length. */
export function decodeKeyText(text: string): Uint8Array | undefined {
  const t = text.trim();
  let bytes: Buffer | undefined;
  if (/^[0-9a-fA-F]+$/.test(t) && t.length % 2 === 0 && KEY_LENGTHS.has(t.length / 2)) {
    bytes = Buffer.from(t, 'hex');
  } else if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(t)) {
    const b = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    // Buffer's decoder skips what it cannot read: accept only text that is the canonical encoding.
    if (
      b.toString('base64').replace(/=+$/, '') === t.replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '')
    ) {
      bytes = b;
    }
  }
  if (bytes === undefined || !KEY_LENGTHS.has(bytes.length)) return undefined;
  return new Uint8Array(bytes);
}

export class PseudonymKeyring {
  readonly #keys: Map<string, Uint8Array>;
  /** The id of the key new tokens use. */
  readonly current: string;

  /** A keyring of keys already in memory (tests, or keys from a secret manager). Copies the bytes. */
  constructor(keys: ReadonlyArray<{ readonly id: string; readonly key: Uint8Array }>, current?: string) {
    if (keys.length === 0)
      throw new PseudonymError('ERR_PSEUDONYM_KEY', 'a pseudonym keyring needs at least one key');
    this.#keys = new Map();
    for (const { id, key } of keys) {
      if (!isKeyId(id)) {
        throw new PseudonymError(
          'ERR_PSEUDONYM_KEY',
          `pseudonym key id ${JSON.stringify(id)}: 1-32 of a-z, 0-9 and "-", not starting with "-"`,
        );
      }
      if (this.#keys.has(id))
        throw new PseudonymError('ERR_PSEUDONYM_KEY', `pseudonym key id "${id}" given twice`);
      if (!KEY_LENGTHS.has(key.length)) {
        throw new PseudonymError('ERR_PSEUDONYM_KEY', `pseudonym key "${id}": must be 32, 48 or 64 bytes`);
      }
      this.#keys.set(id, new Uint8Array(key));
    }
    const chosen = current ?? (keys[0] as { id: string }).id;
    if (!this.#keys.has(chosen)) {
      throw new PseudonymError(
        'ERR_PSEUDONYM_KEY',
        `current pseudonym key "${chosen}" is not in the keyring`,
      );
    }
    this.current = chosen;
  }

  /** Loads keys from files and environment variables; throws PseudonymError (ERR_PSEUDONYM_KEY) naming the source, never its content. */
  static load(
    sources: readonly PseudonymKeySource[],
    options: PseudonymKeyringOptions = {},
  ): PseudonymKeyring {
    const environment = options.environment ?? process.env;
    const keys = sources.map((source) => {
      const { id, file, env } = source;
      if ((file === undefined) === (env === undefined)) {
        throw new PseudonymError(
          'ERR_PSEUDONYM_KEY',
          `pseudonym key "${id}": give exactly one of file and env`,
        );
      }
      let text: string;
      let where: string;
      if (file !== undefined) {
        where = `file ${file}`;
        try {
          text = readFileSync(file, 'latin1');
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code ?? 'error';
          throw new PseudonymError(
            'ERR_PSEUDONYM_KEY',
            `pseudonym key "${id}": cannot read ${where} (${code})`,
          );
        }
      } else {
        where = `environment variable ${env}`;
        const value = environment[env as string];
        if (value === undefined || value === '') {
          throw new PseudonymError('ERR_PSEUDONYM_KEY', `pseudonym key "${id}": ${where} is not set`);
        }
        text = value;
      }
      const key = decodeKeyText(text);
      if (key === undefined) {
        throw new PseudonymError(
          'ERR_PSEUDONYM_KEY',
          `pseudonym key "${id}" (${where}): not 32, 48 or 64 bytes of hex or base64 text`,
        );
      }
      return { id, key };
    });
    return new PseudonymKeyring(keys, options.current);
  }

  /** The key ids, current first. */
  get ids(): string[] {
    return [this.current, ...[...this.#keys.keys()].filter((id) => id !== this.current)];
  }

  /** The key of `id`, or undefined. For the pseudonymizer; do not log it. */
  key(id: string): Uint8Array | undefined {
    return this.#keys.get(id);
  }

  toJSON(): { current: string; ids: string[] } {
    return { current: this.current, ids: this.ids };
  }
}
