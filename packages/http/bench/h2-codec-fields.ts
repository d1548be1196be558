import { encodeData, encodeHeaders, encodeSettings } from '../src/h2/frames.js';
import { HpackEncoder } from '../src/h2/hpack-encoder.js';

/** The browser GET of messages.ts as HTTP/2 fields: the input of h2-codec.bench.ts and nghttp2/. */
export const BROWSER_GET_FIELDS: [string, string][] = [
  [':method', 'GET'],
  [':scheme', 'https'],
  [':authority', 'www.example.com'],
  [':path', '/api/v1/items/12345?include=details&sort=desc'],
  [
    'user-agent',
    'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36',
  ],
  ['accept', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'],
  ['accept-language', 'en-US,en;q=0.9'],
  ['accept-encoding', 'gzip, deflate, br'],
  ['cookie', 'session=abc123def456; theme=dark; lang=en'],
  ['cache-control', 'no-cache'],
  ['referer', 'https://www.example.com/items'],
  ['sec-fetch-mode', 'navigate'],
  ['x-request-id', '7f9c2ba4-e88f-4a43-b7c2-6c2a2d0e5a11'],
];

/**
 * One connection's requests as a server reads them: (the client preface,) SETTINGS, then 20
 * requests, each HEADERS + 4 KiB of DATA; the first header block carries literals and inserts,
 * the 19 later ones index the dynamic table (one HPACK encoder for the connection).
 */
export function connectionWire(withPreface: boolean): Buffer {
  const encoder = new HpackEncoder();
  return Buffer.concat([
    ...(withPreface ? [Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')] : []),
    encodeSettings({}),
    ...Array.from({ length: 20 }, (_, i) => {
      const id = 2 * i + 1;
      return Buffer.concat([
        encodeHeaders(id, encoder.encode(BROWSER_GET_FIELDS)),
        encodeData(id, new Uint8Array(4096), { endStream: true }),
      ]);
    }),
  ]);
}
