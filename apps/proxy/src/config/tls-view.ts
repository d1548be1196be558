/**
 * What the main thread and `loch check` read of the effective TLS settings: notes and expiry
 * warnings to print, the ticket keys a reload keeps, the files to watch, and secrets kept out of
 * printed configs. Without @loch/tls: `loch run`'s main thread never builds a TLS context (the
 * workers do; tls.ts turns a `tls` table into these settings in the config's own thread), so it
 * does not load that package. Not for reading certificates or building contexts (tls.ts).
 */
import { X509Certificate } from 'node:crypto';
import type { ProxyConfig } from './schema.js';

/**
 * Notes about a config's TLS tables that change nothing but should be said (`loch check` and
 * `loch run` print them): Monolake's `stack = "rustls" | "native_tls"` loads unchanged, and the
 * listener is served by OpenSSL (the node binary's) whichever it names. Not warnings: the config
 * works as written.
 */
export function tlsNotes(config: ProxyConfig): string[] {
  return config.servers.flatMap((server) => {
    const stack = server.tls?.stack;
    return stack === undefined
      ? []
      : [
          `servers.${server.key}.tls.stack = "${stack}": accepted; Loch serves TLS with OpenSSL (node's) whichever stack is named`,
        ];
  });
}

/** Certificates that expire within this many days are warned about. */
const EXPIRY_WARNING_DAYS = 14;

/**
 * Warnings about the certificates of `config` (`loch check` prints them): expired ones, and ones
 * that expire within 14 days (certbot renews at 30 days left). Not errors: nginx serves an expired certificate too, and the
 * clients decide.
 */
export function certificateWarnings(config: ProxyConfig, now = Date.now()): string[] {
  const out: string[] = [];
  for (const server of config.servers) {
    server.tls?.certificates.forEach((c, i) => {
      let notAfter: number;
      try {
        notAfter = Date.parse(new X509Certificate(c.chain).validTo);
      } catch {
        return;
      }
      const days = Math.floor((notAfter - now) / 86_400_000);
      const at = `servers.${server.key}.tls certificate ${i} (${c.file})`;
      if (notAfter <= now) out.push(`${at} expired on ${new Date(notAfter).toISOString()}`);
      else if (days < EXPIRY_WARNING_DAYS)
        out.push(`${at} expires in ${days} day(s), on ${new Date(notAfter).toISOString()}`);
    });
  }
  return out;
}

/**
 * `next` with the session ticket keys of `previous` for every server that had TLS before: a
 * reload (a renewed certificate) does not cost clients their sessions.
 */
export function keepTicketKeys(previous: ProxyConfig, next: ProxyConfig): ProxyConfig {
  const before = new Map(previous.servers.map((s) => [s.key, s.tls?.ticketKeys]));
  return {
    ...next,
    servers: next.servers.map((s) => {
      const keys = before.get(s.key);
      return s.tls === null || keys === undefined ? s : { ...s, tls: { ...s.tls, ticketKeys: keys } };
    }),
  };
}

/** The TLS files of every server of `config` (absolute paths), to watch for renewals. */
export function tlsFiles(config: ProxyConfig): string[] {
  return config.servers.flatMap((s) => s.tls?.files ?? []);
}

/**
 * A JSON.stringify replacer that keeps secrets out of printed configs (`loch check`): private
 * keys and ticket keys are replaced by a note, certificate PEM by its file name.
 */
export function redactSecrets(key: string, value: unknown): unknown {
  if (key === 'ticketKeys') return '<redacted>';
  if (key === 'key' && typeof value === 'string' && value.includes('PRIVATE KEY')) return '<redacted>';
  if ((key === 'chain' || key === 'clientCa') && typeof value === 'string' && value.includes('-----BEGIN'))
    return `<PEM, ${value.length} bytes>`;
  return value;
}
