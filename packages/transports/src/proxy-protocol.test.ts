import { SocketAddress } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  crc32c,
  decodeProxyHeader,
  encodeProxyHeader,
  PP2_TYPE,
  ProxyProtocolError,
  V2_SIGNATURE,
} from './proxy-protocol.js';

const text = (s: string) => new TextEncoder().encode(s);
const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ProxyProtocolError);
    return (e as ProxyProtocolError).code;
  }
  return undefined;
}

describe('decodeProxyHeader v1', () => {
  it('decodes TCP4 and TCP6 lines (the spec examples) and says how long they were', () => {
    const v4 = text('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n');
    expect(decodeProxyHeader(v4)).toEqual({
      header: {
        version: 1,
        command: 'proxy',
        source: { family: 'ipv4', address: '192.168.0.1', port: 56324 },
        destination: { family: 'ipv4', address: '192.168.0.11', port: 443 },
        tlvs: [],
      },
      length: 47,
    });
    const v6 = decodeProxyHeader(text('PROXY TCP6 2001:db8::1 ::1 65535 0\r\n'));
    expect(v6?.header.source).toEqual({ family: 'ipv6', address: '2001:db8::1', port: 65535 });
    expect(v6?.header.destination).toEqual({ family: 'ipv6', address: '::1', port: 0 });
  });

  it('decodes UNKNOWN (with or without addresses) as no client address', () => {
    expect(decodeProxyHeader(text('PROXY UNKNOWN\r\n'))).toEqual({
      header: { version: 1, command: 'unknown', source: null, destination: null, tlvs: [] },
      length: 15,
    });
    const worst = 'PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n';
    expect(decodeProxyHeader(text(worst))?.header.command).toBe('unknown');
  });

  it('needs more bytes for every proper prefix, byte by byte', () => {
    const line = text('PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\n');
    for (let i = 0; i < line.byteLength; i++) expect(decodeProxyHeader(line.subarray(0, i))).toBeNull();
    expect(decodeProxyHeader(line)?.length).toBe(line.byteLength);
  });

  it('refuses a request without a header at its first byte', () => {
    expect(codeOf(() => decodeProxyHeader(text('G')))).toBe('ERR_PROXY_PROTOCOL_MISSING');
    expect(codeOf(() => decodeProxyHeader(text('POST / HTTP/1.1\r\n')))).toBe('ERR_PROXY_PROTOCOL_MISSING');
    expect(codeOf(() => decodeProxyHeader(text('PROXZ')))).toBe('ERR_PROXY_PROTOCOL_MISSING');
    expect(codeOf(() => decodeProxyHeader(text('\r\nGET /')))).toBe('ERR_PROXY_PROTOCOL_MISSING');
    expect(codeOf(() => decodeProxyHeader(hex('16030100')))).toBe('ERR_PROXY_PROTOCOL_MISSING');
  });

  it('refuses malformed lines', () => {
    const bad = [
      'PROXY TCP4 10.0.0.1 10.0.0.2 1\r\n',
      'PROXY TCP4 10.0.0.1  10.0.0.2 1 2\r\n',
      'PROXY TCP4 10.0.0.256 10.0.0.2 1 2\r\n',
      'PROXY TCP4 ::1 10.0.0.2 1 2\r\n',
      'PROXY TCP6 10.0.0.1 ::1 1 2\r\n',
      'PROXY TCP4 10.0.0.1 10.0.0.2 65536 2\r\n',
      'PROXY TCP4 10.0.0.1 10.0.0.2 01 2\r\n',
      'PROXY TCP4 10.0.0.1 10.0.0.2 -1 2\r\n',
      'PROXY UDP4 10.0.0.1 10.0.0.2 1 2\r\n',
      'PROXY TCP4 10.0.0.1 10.0.0.2 1 2\n',
      'PROXY UNKNOWNX\r\n',
    ];
    for (const line of bad)
      expect(
        codeOf(() => decodeProxyHeader(text(line))),
        line,
      ).toBe('ERR_PROXY_PROTOCOL_INVALID');
  });

  it('refuses a line with no CRLF within 107 bytes', () => {
    const long = text(`PROXY UNKNOWN ${'x'.repeat(200)}`);
    expect(decodeProxyHeader(long.subarray(0, 106))).toBeNull();
    expect(codeOf(() => decodeProxyHeader(long.subarray(0, 107)))).toBe('ERR_PROXY_PROTOCOL_TOO_LONG');
  });
});

describe('decodeProxyHeader v2', () => {
  // The header haproxy's send-proxy-v2 sends for 127.0.0.1:33000 -> 127.0.0.1:8080.
  const tcp4 = hex('0d0a0d0a000d0a515549540a 21 11 000c 7f000001 7f000001 80e8 1f90');

  it('decodes PROXY over TCP4', () => {
    expect(decodeProxyHeader(tcp4)).toEqual({
      header: {
        version: 2,
        command: 'proxy',
        source: { family: 'ipv4', address: '127.0.0.1', port: 33000 },
        destination: { family: 'ipv4', address: '127.0.0.1', port: 8080 },
        tlvs: [],
      },
      length: 28,
    });
  });

  it('decodes TCP6 (RFC 5952 text, v4-mapped kept) and AF_UNIX', () => {
    const v6 = hex(
      `0d0a0d0a000d0a515549540a 21 21 0024 20010db8000000000000000000000001 00000000000000000000ffff0a000001 0050 01bb`,
    );
    const h = decodeProxyHeader(v6)!.header;
    expect(h.source).toEqual({ family: 'ipv6', address: '2001:db8::1', port: 80 });
    expect(h.destination).toEqual({ family: 'ipv6', address: '::ffff:10.0.0.1', port: 443 });
    const unix = encodeProxyHeader({
      version: 2,
      source: { family: 'unix', path: '/run/client.sock' },
      destination: { family: 'unix', path: '/run/loch.sock' },
    });
    expect(unix.byteLength).toBe(16 + 216);
    expect(decodeProxyHeader(unix)!.header).toMatchObject({
      command: 'proxy',
      source: { family: 'unix', path: '/run/client.sock' },
      destination: { family: 'unix', path: '/run/loch.sock' },
    });
  });

  it('decodes LOCAL (addresses ignored) and AF_UNSPEC as no client address', () => {
    const local = hex('0d0a0d0a000d0a515549540a 20 00 0000');
    expect(decodeProxyHeader(local)).toEqual({
      header: { version: 2, command: 'local', source: null, destination: null, tlvs: [] },
      length: 16,
    });
    // LOCAL with an address block (haproxy's health checks may carry one): skipped.
    const localWithAddress = hex('0d0a0d0a000d0a515549540a 20 11 000c 7f000001 7f000001 80e8 1f90');
    expect(decodeProxyHeader(localWithAddress)?.header.command).toBe('local');
    expect(decodeProxyHeader(hex('0d0a0d0a000d0a515549540a 21 00 0000'))?.header.command).toBe('unknown');
  });

  it('parses TLVs, drops NOOP, and verifies a CRC32C', () => {
    const h = encodeProxyHeader({
      version: 2,
      source: { family: 'ipv4', address: '1.2.3.4', port: 5 },
      destination: { family: 'ipv4', address: '6.7.8.9', port: 10 },
      tlvs: [
        { type: PP2_TYPE.AUTHORITY, value: text('example.com') },
        { type: PP2_TYPE.NOOP, value: new Uint8Array(3) },
        { type: PP2_TYPE.UNIQUE_ID, value: text('abc') },
        { type: PP2_TYPE.CRC32C, value: new Uint8Array(4) },
      ],
    });
    // Fill in the checksum the way a sender does: over the header with the field zeroed.
    const sum = crc32c(h);
    h.set([sum >>> 24, (sum >>> 16) & 0xff, (sum >>> 8) & 0xff, sum & 0xff], h.byteLength - 4);
    const tlvs = decodeProxyHeader(h)!.header.tlvs;
    expect(tlvs.map((t) => t.type)).toEqual([PP2_TYPE.AUTHORITY, PP2_TYPE.UNIQUE_ID, PP2_TYPE.CRC32C]);
    expect(new TextDecoder().decode(tlvs[0]!.value)).toBe('example.com');
    h[h.byteLength - 1] = h[h.byteLength - 1]! ^ 1;
    expect(codeOf(() => decodeProxyHeader(h))).toBe('ERR_PROXY_PROTOCOL_INVALID');
  });

  it('knows the CRC32C check value', () => {
    expect(crc32c(text('123456789'))).toBe(0xe3069283);
  });

  it('needs more bytes for every proper prefix, byte by byte', () => {
    for (let i = 0; i < tcp4.byteLength; i++) expect(decodeProxyHeader(tcp4.subarray(0, i))).toBeNull();
  });

  it('refuses bad versions, commands, families, short address blocks and overrunning TLVs', () => {
    const sig = '0d0a0d0a000d0a515549540a';
    expect(codeOf(() => decodeProxyHeader(hex(`${sig} 11`)))).toBe('ERR_PROXY_PROTOCOL_INVALID');
    expect(codeOf(() => decodeProxyHeader(hex(`${sig} 22 11 000c`)))).toBe('ERR_PROXY_PROTOCOL_INVALID');
    expect(codeOf(() => decodeProxyHeader(hex(`${sig} 21 41 0000`)))).toBe('ERR_PROXY_PROTOCOL_INVALID');
    expect(codeOf(() => decodeProxyHeader(hex(`${sig} 21 12 000c 7f000001 7f000001 80e8 1f90`)))).toBe(
      'ERR_PROXY_PROTOCOL_INVALID',
    );
    expect(codeOf(() => decodeProxyHeader(hex(`${sig} 21 11 0008 7f000001 7f000001`)))).toBe(
      'ERR_PROXY_PROTOCOL_INVALID',
    );
    expect(
      codeOf(() => decodeProxyHeader(hex(`${sig} 21 11 0010 7f000001 7f000001 80e8 1f90 02 0005 41`))),
    ).toBe('ERR_PROXY_PROTOCOL_INVALID');
    expect(codeOf(() => decodeProxyHeader(hex(`${sig} 21 11 000e 7f000001 7f000001 80e8 1f90 0200`)))).toBe(
      'ERR_PROXY_PROTOCOL_INVALID',
    );
    expect(codeOf(() => decodeProxyHeader(hex('0d0a0d0a000d0a5155495400')))).toBe(
      'ERR_PROXY_PROTOCOL_MISSING',
    );
  });

  it('refuses a header longer than the limit as soon as its length is known', () => {
    const big = new Uint8Array(16);
    big.set(V2_SIGNATURE);
    big.set([0x21, 0x11, 0xff, 0xff], 12);
    expect(codeOf(() => decodeProxyHeader(big))).toBe('ERR_PROXY_PROTOCOL_TOO_LONG');
    expect(decodeProxyHeader(big, 16 + 0xffff)).toBeNull();
  });
});

describe('encodeProxyHeader', () => {
  const c4 = { family: 'ipv4', address: '192.0.2.7', port: 51000 } as const;
  const l4 = { family: 'ipv4', address: '198.51.100.1', port: 80 } as const;
  const l6 = { family: 'ipv6', address: '2001:db8::80', port: 443 } as const;

  it('writes v1 lines haproxy reads', () => {
    expect(new TextDecoder().decode(encodeProxyHeader({ version: 1, source: c4, destination: l4 }))).toBe(
      'PROXY TCP4 192.0.2.7 198.51.100.1 51000 80\r\n',
    );
    expect(new TextDecoder().decode(encodeProxyHeader({ version: 1, source: c4, destination: l6 }))).toBe(
      'PROXY TCP6 ::ffff:192.0.2.7 2001:db8::80 51000 443\r\n',
    );
    expect(new TextDecoder().decode(encodeProxyHeader({ version: 1, source: null, destination: null }))).toBe(
      'PROXY UNKNOWN\r\n',
    );
    const unix = { family: 'unix', path: '/s' } as const;
    expect(new TextDecoder().decode(encodeProxyHeader({ version: 1, source: unix, destination: unix }))).toBe(
      'PROXY UNKNOWN\r\n',
    );
  });

  it('writes the v2 bytes of the spec and LOCAL when there is no address', () => {
    expect(
      Buffer.from(
        encodeProxyHeader({
          version: 2,
          source: { family: 'ipv4', address: '127.0.0.1', port: 33000 },
          destination: { family: 'ipv4', address: '127.0.0.1', port: 8080 },
        }),
      ).toString('hex'),
    ).toBe('0d0a0d0a000d0a515549540a2111000c7f0000017f00000180e81f90');
    expect(
      Buffer.from(encodeProxyHeader({ version: 2, source: null, destination: null })).toString('hex'),
    ).toBe('0d0a0d0a000d0a515549540a20000000');
  });

  it('round-trips through the decoder', () => {
    const cases = [
      { source: c4, destination: l4 },
      { source: { family: 'ipv6', address: 'fe80::1:2:3', port: 1 } as const, destination: l6 },
      { source: { family: 'ipv6', address: '1:2:3:4:5:6:7:8', port: 65535 } as const, destination: l6 },
      { source: { family: 'ipv6', address: '1:0:0:2::', port: 9 } as const, destination: l6 },
    ];
    for (const version of [1, 2] as const) {
      for (const c of cases) {
        const h = decodeProxyHeader(encodeProxyHeader({ version, ...c }))!.header;
        expect(h.source).toEqual(c.source);
        expect(h.destination).toEqual(c.destination);
      }
    }
  });
});

describe('PROXY protocol codec properties', () => {
  const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((b) => b.join('.'));
  const ipv6 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => {
    // RFC 5952 text of random bytes, from the decoder's own formatter (a v2 header around them).
    const h = new Uint8Array(16 + 36);
    h.set(V2_SIGNATURE);
    h.set([0x21, 0x21, 0, 36], 12);
    h.set(b, 16);
    h.set(b, 32);
    const source = decodeProxyHeader(h)!.header.source!;
    return (source as { address: string }).address;
  });
  const port = fc.nat(65535);
  const pair = fc.oneof(
    fc.record({ family: fc.constant('ipv4' as const), s: ipv4, d: ipv4, sp: port, dp: port }),
    fc.record({ family: fc.constant('ipv6' as const), s: ipv6, d: ipv6, sp: port, dp: port }),
  );
  const tlvs = fc.array(
    fc.record({ type: fc.integer({ min: 0xe0, max: 0xef }), value: fc.uint8Array({ maxLength: 40 }) }),
    { maxLength: 4 },
  );

  it('writes IPv6 with the one inet_ntop of @loch/uring-runtime (ipv6Text): ::0.0.1.2 as "::102", mapped dotted', () => {
    const header = (groups: number[]) => {
      const h = new Uint8Array(16 + 36);
      h.set(V2_SIGNATURE);
      h.set([0x21, 0x21, 0, 36], 12);
      for (let i = 0; i < 8; i++) h.set([groups[i]! >> 8, groups[i]! & 0xff], 16 + 2 * i);
      return (decodeProxyHeader(h)!.header.source as { address: string }).address;
    };
    expect(header([0, 0, 0, 0, 0, 0, 0, 0x0102])).toBe('::102');
    expect(header([0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304])).toBe('::ffff:1.2.3.4');
    expect(header([0, 0, 0, 0, 0, 0, 0x0102, 0x0304])).toBe('::1.2.3.4');
  });

  it('formats IPv6 as the system does (inet_ntop via node:net SocketAddress): differential', () => {
    // Groups mostly zero, so runs of zeros (and their ties) are common.
    const group = fc.oneof(fc.constant(0), fc.constant(0), fc.nat(0xffff));
    fc.assert(
      fc.property(fc.array(group, { minLength: 8, maxLength: 8 }), (groups) => {
        const h = new Uint8Array(16 + 36);
        h.set(V2_SIGNATURE);
        h.set([0x21, 0x21, 0, 36], 12);
        for (let i = 0; i < 8; i++) h.set([groups[i]! >> 8, groups[i]! & 0xff], 16 + 2 * i);
        const ours = (decodeProxyHeader(h)!.header.source as { address: string }).address;
        const text = groups.map((g) => g.toString(16)).join(':');
        expect(ours).toBe(new SocketAddress({ address: text, family: 'ipv6' }).address);
      }),
      { numRuns: 2000 },
    );
  });

  it('decode(encode(h)) gives h back, v1 and v2, with TLVs', () => {
    fc.assert(
      fc.property(pair, tlvs, fc.constantFrom(1 as const, 2 as const), (p, t, version) => {
        const source = { family: p.family, address: p.s, port: p.sp };
        const destination = { family: p.family, address: p.d, port: p.dp };
        const bytes = encodeProxyHeader({ version, source, destination, tlvs: version === 2 ? t : [] });
        const decoded = decodeProxyHeader(bytes)!;
        expect(decoded.length).toBe(bytes.byteLength);
        expect(decoded.header.source).toEqual(source);
        expect(decoded.header.destination).toEqual(destination);
        if (version === 2) expect(decoded.header.tlvs).toEqual(t);
      }),
    );
  });

  it('every proper prefix needs more bytes; a byte flipped in the fixed part never crashes', () => {
    fc.assert(
      fc.property(
        pair,
        fc.constantFrom(1 as const, 2 as const),
        fc.nat(),
        fc.nat(255),
        (p, version, at, value) => {
          const bytes = encodeProxyHeader({
            version,
            source: { family: p.family, address: p.s, port: p.sp },
            destination: { family: p.family, address: p.d, port: p.dp },
          });
          const cut = at % bytes.byteLength;
          expect(decodeProxyHeader(bytes.subarray(0, cut))).toBeNull();
          const bad = bytes.slice();
          bad[cut] = value;
          try {
            const r = decodeProxyHeader(bad);
            if (r !== null) expect(r.length).toBeLessThanOrEqual(bad.byteLength);
          } catch (e) {
            expect(e).toBeInstanceOf(ProxyProtocolError);
          }
        },
      ),
    );
  });
});
