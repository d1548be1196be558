/**
 * Session ticket key rotation for loch's TLS servers. The main thread owns the keys (they are
 * part of the config every worker gets, so a client resumes on whichever worker its next
 * connection lands): one timer per TLS server fires every `session_ticket_rotation` (12 h by
 * default), the next key set is computed once (a fresh key first, the previous one kept for
 * decryption) and sent to every worker in one broadcast (`ticket-keys` command, worker.ts). Not
 * for the keys' use in handshakes (@loch/tls's TlsServerContext) nor for reload (run.ts keeps the
 * keys across reloads with keepTicketKeys).
 */
import { generateTicketKeys, rotatedTicketKeys } from '@loch/tls';
import type { ProxyConfig } from '../config/schema.js';

/** Ticket keys per server key, as sent to the workers. */
export type TicketKeySets = Readonly<Record<string, Uint8Array>>;

/**
 * Keys kept for decryption besides the current one: a ticket resumes across one rotation (so a
 * rotation never costs the clients of a moment ago their sessions), not across two.
 */
export const PREVIOUS_TICKET_KEYS = 1;

/**
 * `config` with the ticket keys of `servers` (server keys) rotated once, and the new key sets to
 * hand to the workers. Servers without TLS, or not in `config`, are left as they are.
 */
export function rotateTicketKeys(
  config: ProxyConfig,
  servers: readonly string[],
  nextKey: () => Uint8Array = generateTicketKeys,
): { readonly config: ProxyConfig; readonly keys: TicketKeySets } {
  const wanted = new Set(servers);
  const keys: Record<string, Uint8Array> = {};
  const next: ProxyConfig = {
    ...config,
    servers: config.servers.map((s) => {
      if (s.tls === null || !wanted.has(s.key)) return s;
      const ticketKeys = rotatedTicketKeys(s.tls.ticketKeys, nextKey(), PREVIOUS_TICKET_KEYS);
      keys[s.key] = ticketKeys;
      return { ...s, tls: { ...s.tls, ticketKeys } };
    }),
  };
  return { config: next, keys };
}

/**
 * The rotation timers: one per TLS server with a rotation period, re-armed when a reload changes
 * the period, removed with the server. Calls `due` with the server keys whose time came (the
 * caller rotates and broadcasts). Timers are unref'd: they never keep loch alive.
 */
export class TicketKeyRotation {
  readonly #timers = new Map<string, { readonly every: number; readonly timer: NodeJS.Timeout }>();
  #closed = false;

  constructor(private readonly due: (servers: readonly string[]) => void) {}

  /** Arms, re-arms or removes timers to match the TLS servers of `config`. */
  update(config: ProxyConfig): void {
    if (this.#closed) return;
    const periods = new Map<string, number>();
    for (const s of config.servers)
      if (s.tls !== null && s.tls.ticketRotation > 0) periods.set(s.key, s.tls.ticketRotation);
    for (const [key, armed] of this.#timers) {
      if (periods.get(key) === armed.every) continue;
      clearInterval(armed.timer);
      this.#timers.delete(key);
    }
    for (const [key, every] of periods) {
      if (this.#timers.has(key)) continue;
      const timer = setInterval(() => this.due([key]), every);
      timer.unref();
      this.#timers.set(key, { every, timer });
    }
  }

  /** The servers with a timer, and their periods (ms). */
  get armed(): ReadonlyMap<string, number> {
    return new Map([...this.#timers].map(([key, t]) => [key, t.every]));
  }

  close(): void {
    this.#closed = true;
    for (const t of this.#timers.values()) clearInterval(t.timer);
    this.#timers.clear();
  }
}
