/**
 * Writes the inputs of h2-codec.bench.ts to a directory, so that codec.c runs nghttp2 on exactly
 * the bytes Loch's TypeScript codec is measured on: the browser GET's first and later HPACK
 * blocks, its fields (name NUL value NUL ...) for the encoder, and the server's read of one
 * connection (connectionWire: preface, SETTINGS, 20 x HEADERS + 4 KiB DATA).
 * Usage: tsx --conditions=@loch/source bench/nghttp2/fixtures.ts DIR
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HpackEncoder } from '../../src/h2/hpack-encoder.js';
import { BROWSER_GET_FIELDS, connectionWire } from '../h2-codec-fields.js';

const dir = process.argv[2];
if (dir === undefined) throw new Error('usage: fixtures.ts DIR');
mkdirSync(dir, { recursive: true });
const encoder = new HpackEncoder();
const first = encoder.encode(BROWSER_GET_FIELDS);
const later = encoder.encode(BROWSER_GET_FIELDS);
writeFileSync(join(dir, 'first.hpack'), first);
writeFileSync(join(dir, 'later.hpack'), later);
writeFileSync(
  join(dir, 'fields.bin'),
  Buffer.from(BROWSER_GET_FIELDS.map(([n, v]) => `${n}\0${v}\0`).join(''), 'latin1'),
);
const wire = connectionWire(true);
writeFileSync(join(dir, 'wire.bin'), wire);
process.stdout.write(
  `fixtures in ${dir}: first block ${first.length} B, later ${later.length} B, wire ${wire.length} B\n`,
);
