import { afterEach, describe, expect, it, vi } from 'vitest';
import { watchOwnMethod } from '../../test/own-method-watch.js';
import { HttpHeaders } from '../headers.js';
import { KNOWN_NAMES } from '../internal/known-names.js';
import { DecodeEvent, ResponseDecoder } from './decoder.js';
import { keptAddedStrings, measureFieldBlock, writeFieldBlock } from './field-block.js';

/** nginx's head for a 128 B body: runs of kept lines longer than 16 bytes around the framing lines. */
const HEAD =
  'HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 03 Dec 2026 15:26:53 GMT\r\n' +
  'Content-Type: text/plain\r\nContent-Length: 128\r\nLast-Modified: Thu, 03 Dec 2026 15:25:59 GMT\r\n' +
  'Connection: keep-alive\r\nETag: "6b118a07-80"\r\nAccept-Ranges: bytes\r\n\r\n';
/** What writeFieldBlock writes of it: the framing lines (Content-Length, Connection) dropped. */
const FIELDS =
  'Server: nginx/1.22.1\r\nDate: Thu, 03 Dec 2026 15:26:53 GMT\r\nContent-Type: text/plain\r\n' +
  'Last-Modified: Thu, 03 Dec 2026 15:25:59 GMT\r\nETag: "6b118a07-80"\r\nAccept-Ranges: bytes\r\n';

function decoded(): HttpHeaders {
  const d = new ResponseDecoder();
  d.feed(new Uint8Array(Buffer.from(HEAD, 'latin1')));
  expect(d.poll()).toBe(DecodeEvent.Head);
  return (d as unknown as { message: { headers: HttpHeaders } }).message.headers;
}

describe('writeFieldBlock', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('copies the runs of kept lines into a Uint8Array and into a Buffer alike', () => {
    for (const out of [new Uint8Array(400), Buffer.alloc(400)]) {
      const h = decoded();
      const n = measureFieldBlock(h);
      expect(n).toBe(FIELDS.length);
      const end = writeFieldBlock(h, out, 7);
      expect(end).toBe(7 + n);
      expect(Buffer.from(out.subarray(7, end)).toString('latin1')).toBe(FIELDS);
      expect(out[6]).toBe(0);
      expect(out[end]).toBe(0);
    }
  });

  it('writes added fields with every known name (long ones from their bytes) and others alike', () => {
    const framing = ['connection', 'content-length', 'keep-alive', 'transfer-encoding'];
    const names = [...KNOWN_NAMES.slice(1), 'x-uncommon-name', 'x', 'via'];
    for (const out of [new Uint8Array(4096), Buffer.alloc(4096)]) {
      const h = decoded();
      for (const name of names) h.append(name, `v-${name}`);
      const n = measureFieldBlock(h);
      const end = writeFieldBlock(h, out, 3);
      const expected = names
        .filter((name) => !framing.includes(name))
        .map((name) => `${name}: v-${name}\r\n`)
        .join('');
      expect(Buffer.from(out.subarray(3, end)).toString('latin1')).toBe(FIELDS + expected);
      expect(end).toBe(3 + n);
      const built = new HttpHeaders([['x-forwarded-proto', 'https']]);
      expect(Buffer.from(out.subarray(0, writeFieldBlock(built, out, 0))).toString('latin1')).toBe(
        'x-forwarded-proto: https\r\n',
      );
    }
  });

  it('copies a long run without looking `set` up on the output array (a generic load when it is sometimes a Buffer)', () => {
    // writeFieldBlock calls %TypedArray%.prototype.set directly: an own `set` on the prototypes
    // is never called with the output array.
    const outs: Uint8Array[] = [new Uint8Array(400), Buffer.alloc(400)];
    const watch = watchOwnMethod('set', (self) => outs.includes(self));
    try {
      for (const out of outs) {
        const h = decoded();
        measureFieldBlock(h);
        const end = writeFieldBlock(h, out, 0, false, false);
        expect(Buffer.from(out.subarray(0, end)).toString('latin1')).toBe(FIELDS);
      }
    } finally {
      watch.restore();
    }
    expect(watch.looked).toEqual([]);
  });

  it('writes runs around dropped lines the same with and without room after the block (copySpan)', () => {
    // Kept lines short (a piece copied byte by byte) and long (a view and a set), dropped
    // framing lines (Connection, Keep-Alive, Content-Length) between them: one gap in a run
    // is closed with copyWithin after one copy, a second starts a new run.
    const long = (k: number) => `X-Long-${k}: ${'v'.repeat(20 + k)}`;
    const short = (k: number) => `X-S${k}: ${k}`;
    const dropped = ['Connection: keep-alive', 'Keep-Alive: timeout=5', 'Content-Length: 0'];
    const layouts: string[][] = [
      [long(1), dropped[0]!, long(2)],
      [long(1), dropped[0]!, long(2), dropped[1]!, long(3)],
      [long(1), dropped[0]!, dropped[1]!, long(2), long(3), dropped[2]!, long(4)],
      [short(1), dropped[0]!, long(2)],
      [long(1), dropped[0]!, short(2)],
      [dropped[0]!, long(1), long(2), dropped[1]!],
      [long(1), dropped[0]!, long(2), 'X-Odd:no-space', long(3), dropped[1]!, long(4)],
      [long(1), dropped[0]!, long(2), dropped[1]!, short(3), dropped[2]!, long(4)],
    ];
    for (const lines of layouts) {
      const head = `HTTP/1.1 200 OK\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`;
      const d = new ResponseDecoder();
      d.feed(new Uint8Array(Buffer.from(head, 'latin1')));
      expect(d.poll()).toBe(DecodeEvent.Head);
      const h = (d as unknown as { message: { headers: HttpHeaders } }).message.headers;
      const want = lines
        .filter((l) => !dropped.includes(l))
        .map((l) => `${l.replace(':no-space', ': no-space')}\r\n`)
        .join('');
      const n = measureFieldBlock(h);
      expect(n, head).toBe(want.length);
      // Room after the block (the span's tail lands there first), then none (two copies).
      for (const size of [4 + n + 256, 4 + n]) {
        const out = new Uint8Array(size).fill(0x2a);
        const end = writeFieldBlock(h, out, 4);
        expect(end, head).toBe(4 + n);
        expect(Buffer.from(out.subarray(0, end)).toString('latin1'), head).toBe(`****${want}`);
      }
    }
  });

  describe('added fields written again (the kept block)', () => {
    /** The lines a list of added fields must give: `name: value\r\n` (names lowercase), framing names skipped. */
    function expected(pairs: readonly (readonly [string, string])[]): string {
      const framing = ['connection', 'content-length', 'keep-alive', 'transfer-encoding'];
      return pairs
        .filter(([name]) => !framing.includes(name))
        .map(([name, value]) => `${name.toLowerCase()}: ${value}\r\n`)
        .join('');
    }

    function written(pairs: readonly (readonly [string, string])[], out: Uint8Array): string {
      const h = new HttpHeaders(pairs);
      const n = measureFieldBlock(h);
      const end = writeFieldBlock(h, out, 5);
      expect(end).toBe(5 + n);
      return Buffer.from(out.subarray(5, end)).toString('latin1');
    }

    const address = (k: number) => `10.0.${k}.${k}`;
    /** A proxied request's forwarding fields: the same shape, the strings varied one at a time. */
    const forwarding = (client: string, proto: string, host: string, via: string) =>
      [
        ['x-forwarded-for', client],
        ['x-forwarded-proto', proto],
        ['x-forwarded-host', host],
        ['via', via],
      ] as const;
    const LIMIT = 'v'.repeat(8 * 1024 - 20);
    const lists: (readonly (readonly [string, string])[])[] = [
      forwarding('127.0.0.1', 'http', '127.0.0.1:18080', '1.1 loch'),
      forwarding('127.0.0.2', 'http', '127.0.0.1:18080', '1.1 loch'),
      forwarding('127.0.0.1', 'https', '127.0.0.1:18080', '1.1 loch'),
      forwarding('127.0.0.1', 'http', '127.0.0.1:18081', '1.1 loch'),
      forwarding('127.0.0.1', 'http', '127.0.0.1:18080', '1.0 loch'),
      forwarding(address(1), 'http', 'h', '1.1 loch'),
      forwarding(address(2), 'http', 'h', '1.1 loch'),
      // obs-text (bytes >= 0x80), a 0-length value, values past the 24 chars written natively
      forwarding('caf\u00e9', 'http', '\u00ff\u0080', '1.1 loch'),
      forwarding('caf\u00e8', 'http', '\u00ff\u0080', '1.1 loch'),
      forwarding('', 'http', '', '1.1 loch'),
      forwarding('x'.repeat(40), 'http', 'y'.repeat(300), '1.1 loch'),
      forwarding(`${'x'.repeat(39)}z`, 'http', 'y'.repeat(300), '1.1 loch'),
      // a value at the field-size limit: a block too long to keep
      forwarding(LIMIT, 'http', 'h', '1.1 loch'),
      forwarding(`${LIMIT.slice(1)}w`, 'http', 'h', '1.1 loch'),
      [['via', '1.1 loch']],
      [['via', '1.0 loch']],
      [['Via', '1.1 loch']],
      [['x-a', '1']],
      [['x-b', '1']],
      // framing names are never written, kept or not
      [
        ['via', '1.1 loch'],
        ['connection', 'close'],
      ],
      [
        ['via', '1.1 loch'],
        ['content-length', '5'],
      ],
      // more pairs than a kept block holds
      Array.from({ length: 10 }, (_, k) => [`x-${k}`, String(k)] as const),
      Array.from({ length: 10 }, (_, k) => [`x-${k}`, String(k + 1)] as const),
    ];

    it('writes what each list says, after any other list of the same shape or the same list', () => {
      const out = new Uint8Array(20 * 1024);
      // Every ordered pair of lists, each written twice: a kept block is reused only for its own list.
      for (const a of lists) {
        for (const b of lists) {
          expect(written(a, out)).toBe(expected(a));
          expect(written(a, out)).toBe(expected(a));
          expect(written(b, out)).toBe(expected(b));
          expect(written(b, out)).toBe(expected(b));
          expect(written(a, out)).toBe(expected(a));
        }
      }
    });

    it('gives the same bytes when the strings are equal but not the same objects', () => {
      const out = Buffer.alloc(512);
      const host = ['127.0.0.1', ':18080'];
      for (let k = 0; k < 3; k++) {
        // A new string of the same chars each round (not the interned literal).
        const client = `127.0.0.${String(k % 2)}`;
        const list = forwarding(client, 'http', host.join(''), '1.1 loch');
        expect(written(list, out)).toBe(expected(list));
      }
    });

    it('never keeps a list that carries a credential', () => {
      const out = new Uint8Array(512);
      for (const name of ['authorization', 'proxy-authorization', 'cookie', 'set-cookie']) {
        const list = [
          ['via', '1.1 loch'],
          [name, `secret-${name}`],
        ] as const;
        expect(written(list, out)).toBe(expected(list));
        expect(written(list, out)).toBe(expected(list));
        expect(keptAddedStrings().some((s) => s.startsWith('secret-'))).toBe(false);
      }
      // The same shape without a credential is kept (the check above can see a kept string).
      const plain = [
        ['via', '1.1 loch'],
        ['x-note', 'secret-not'],
      ] as const;
      expect(written(plain, out)).toBe(expected(plain));
      expect(keptAddedStrings()).toContain('secret-not');
    });
  });
});
