// ipv6Text / ipv4Text (the one JavaScript inet_ntop: direct accepts' peers, PROXY v2 headers)
// against what the addon's address() gives: its text comes from the system's inet_ntop, here
// through describeSockaddr (the same DescribeAddress) for sockaddr bytes built in the test, and
// through address() itself on real sockets.
import { loadNative, type NativeBinding } from '@loch/native';
import { describe, expect, it } from 'vitest';
import { ipv4Text, ipv6Text } from './ip-text.js';
import { createUringDriver, probeUring } from './uring/index.js';
import { decodeSockaddr } from './uring/listener.js';

const native = loadNative();
const binding: NativeBinding | undefined = 'error' in native ? undefined : native.binding;

/** A sockaddr_in6 (AF_INET6 = 10, port 80) holding the 8 groups. */
function sockaddr6(groups: readonly number[]): Uint8Array {
  const b = new Uint8Array(28);
  b[0] = 10;
  b[3] = 80;
  groups.forEach((g, i) => {
    b[8 + 2 * i] = g >> 8;
    b[9 + 2 * i] = g & 255;
  });
  return b;
}

function nativeText(b: Uint8Array): string | undefined {
  const a = binding!.describeSockaddr(b);
  return a === null || a.family === 'unix' ? undefined : a.address;
}

describe.skipIf(binding === undefined)('ipv6Text: the system inet_ntop', () => {
  it('writes the named cases as native address() does', () => {
    const named: [string, number[]][] = [
      ['::', [0, 0, 0, 0, 0, 0, 0, 0]],
      ['::1', [0, 0, 0, 0, 0, 0, 0, 1]],
      ['::ffff:1.2.3.4', [0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304]],
      ['::102', [0, 0, 0, 0, 0, 0, 0, 0x0102]], // ::0.0.1.2: a run of 7 is not dotted (glibc)
      ['::1.2.3.4', [0, 0, 0, 0, 0, 0, 0x0102, 0x0304]],
      ['1::', [1, 0, 0, 0, 0, 0, 0, 0]],
      ['fe80::1:0:0:1', [0xfe80, 0, 0, 0, 1, 0, 0, 1]],
      ['1:2:3:4:5::', [1, 2, 3, 4, 5, 0, 0, 0]], // a run at the end
      ['1:2::6:7:8', [1, 2, 0, 0, 0, 6, 7, 8]], // in the middle
      ['1::4:0:0:7:8', [1, 0, 0, 4, 0, 0, 7, 8]], // two equal runs: the first
      ['1:0:0:4::8', [1, 0, 0, 4, 0, 0, 0, 8]], // the longer one, second
      ['1:0:2:0:3:0:4:0', [1, 0, 2, 0, 3, 0, 4, 0]], // single zeros stay
      ['::ffff:0.0.0.0', [0, 0, 0, 0, 0, 0xffff, 0, 0]],
      ['::1:ffff:1:2', [0, 0, 0, 0, 1, 0xffff, 1, 2]],
      ['2001:db8:85a3::8a2e:370:7334', [0x2001, 0xdb8, 0x85a3, 0, 0, 0x8a2e, 0x370, 0x7334]],
    ];
    for (const [text, groups] of named) {
      const b = sockaddr6(groups);
      expect(nativeText(b)).toBe(text);
      expect(ipv6Text(b, 8)).toBe(text);
      expect(decodeSockaddr(b)).toEqual({ family: 'ipv6', address: text, port: 80 });
    }
  });

  it('agrees with native on every pattern of zero groups (with ffff and small values around)', () => {
    for (let mask = 0; mask < 256; mask++) {
      for (const fill of [1, 0xffff, 0x102, 0xabcd]) {
        const groups = Array.from({ length: 8 }, (_, i) => ((mask >> i) & 1 ? fill : 0));
        const b = sockaddr6(groups);
        expect(ipv6Text(b, 8), groups.join(',')).toBe(nativeText(b));
      }
    }
  });

  it('reads encodeIp bytes and real sockets as address() does', async () => {
    for (const host of ['127.0.0.1', '10.1.2.3', '::1', '::ffff:127.0.0.1', '::0.0.1.2', 'fe80::1:0:0:1']) {
      const b = binding!.encodeIp(host, 443)!;
      const text = nativeText(b);
      expect(b[0] === 2 ? ipv4Text(b, 4) : ipv6Text(b, 8)).toBe(text);
    }
    if (!probeUring().available) return;
    // On descriptors (address(fd) of the accepted socket), whatever LOCH_URING_DIRECT_FILES says.
    const driver = createUringDriver({ entries: 64, bufferCount: 16, bufferSize: 4096, directFiles: 0 });
    try {
      // A dual-stack listener: a client of 127.0.0.1 is ::ffff:127.0.0.1 to it.
      for (const [listen, to] of [
        ['::', '127.0.0.1'],
        ['::1', '::1'],
      ] as const) {
        const listener = await driver
          .listenTcp({ host: listen, port: 0, ipv6Only: false })
          .catch(() => undefined);
        if (listener === undefined) continue; // no IPv6 here
        const port = (listener.localAddress as { port: number }).port;
        const accepted = listener[Symbol.asyncIterator]().next();
        const client = await driver.connectTcp({ host: to, port });
        const server = (await accepted).value!;
        const peer = binding!.address(server.fd, true);
        if (!('family' in peer) || peer.family === 'unix') throw new Error('an IP peer');
        expect(ipv6Text(binding!.encodeIp(peer.address, 0)!, 8)).toBe(peer.address);
        expect(server.remoteAddress).toEqual(peer);
        await client.close();
        await server.close();
        await listener.close();
      }
    } finally {
      await driver.close();
    }
  });
});
