/**
 * IP address text from address bytes, as the system's inet_ntop (glibc's) writes it, so that an
 * address decoded in JavaScript (a direct accept's sockaddr, a PROXY v2 header) reads the same as
 * one the addon's address() gave for a socket (`ip-text.test.ts` holds the two together).
 */

/** The dotted text of the 4 bytes at `at`. */
export function ipv4Text(b: Uint8Array, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/**
 * inet_ntop(AF_INET6) of the 16 bytes at `at`, glibc's rule: lowercase hex groups, the first
 * longest run of 2+ zero groups as "::", and the last 4 bytes dotted when the run is the first 6
 * groups (::a.b.c.d, IPv4-compatible) or the first 5 before ffff (::ffff:a.b.c.d, mapped). So
 * ::0.0.1.2 (a run of 7) is "::102", as glibc writes it (libuv's copy of BIND's writes it dotted).
 */
export function ipv6Text(b: Uint8Array, at: number): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[at + 2 * i]! << 8) | b[at + 2 * i + 1]!);
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) best = -1;
  const dotted = best === 0 && (bestLen === 6 || (bestLen === 5 && g[5] === 0xffff));
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (best >= 0 && i >= best && i < best + bestLen) {
      if (i === best) out += ':';
      continue;
    }
    if (i !== 0) out += ':';
    if (i === 6 && dotted) return out + ipv4Text(b, at + 12);
    out += g[i]!.toString(16);
  }
  return best >= 0 && best + bestLen === 8 ? `${out}:` : out;
}
