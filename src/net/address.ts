// Addresses as text and as numbers/bytes, for config, logs and per-connection
// metadata (never per packet): the one IPv4 and IPv6 text parser and printer
// every layer uses. IPv6 text is printed as RFC 5952 §4 asks.

/** "a.b.c.d" of an unsigned 32-bit number. */
export function ipv4ToString(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** Dotted-quad text as an unsigned 32-bit number, or null when it is none. */
export function parseIpv4(s: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return null;
  const p = m.slice(1).map(Number);
  if (p.some((x) => x > 255)) return null;
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}

/** An IPv4 address already known to be valid text (e.g. checked by isIP) as a number. */
export function ipv4ToInt(a: string): number {
  const p = a.split('.');
  return ((+p[0] << 24) | (+p[1] << 16) | (+p[2] << 8) | +p[3]) >>> 0;
}

/** "192.0.2.1:53" or "[2001:db8::1]:53": an endpoint as logs print it. */
export function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** RFC 5952 §4: lower case, leading zeros dropped, the longest run (>1) of zero groups as "::". */
export function ip6GroupsToString(g: readonly number[]): string {
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number, b: number) =>
    g
      .slice(a, b)
      .map((x) => x.toString(16))
      .join(':');
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLen, 8)}`;
}

/**
 * Parses IPv6 text (embedded IPv4 tails too: ::ffff:192.0.2.1) into 16 bytes at
 * b[off]; false when it is not an IPv6 address. A zone id (%eth0) is no address here.
 */
export function parseIpv6Into(text: string, b: Uint8Array, off: number): boolean {
  let s = text;
  const v4 = /^(.*:)(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (v4) {
    const p = v4.slice(2).map(Number);
    if (p.some((x) => x > 255)) return false;
    s = `${v4[1]}${((p[0] << 8) | p[1]).toString(16)}:${((p[2] << 8) | p[3]).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return false;
  const parse = (part: string) => (part === '' ? [] : part.split(':'));
  const head = parse(halves[0]);
  const tail = halves.length === 2 ? parse(halves[1]) : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return false;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  for (let i = 0; i < 8; i++) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(groups[i])) return false;
    const v = parseInt(groups[i], 16);
    b[off + 2 * i] = v >> 8;
    b[off + 2 * i + 1] = v & 0xff;
  }
  return true;
}

/** The 16 bytes of IPv6 text, or null. */
export function ipv6Bytes(text: string): Uint8Array | null {
  const b = new Uint8Array(16);
  return parseIpv6Into(text, b, 0) ? b : null;
}

/** An IPv6 address (any valid text, IPv4-embedded forms too) as a 128-bit number. Check it first (isIP). */
export function ipv6ToBigInt(a: string): bigint {
  const b = ipv6Bytes(a);
  if (b === null) throw new RangeError(`not an IPv6 address: ${a}`);
  let n = 0n;
  for (let i = 0; i < 16; i += 2) n = (n << 16n) | BigInt((b[i] << 8) | b[i + 1]);
  return n;
}

/** RFC 5952 text of a 128-bit number. */
export function bigIntToIpv6(n: bigint): string {
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((n >> BigInt(i * 16)) & 0xffffn));
  return ip6GroupsToString(g);
}

/** RFC 5952 text of 16 bytes at b[off]. */
export function ipv6BytesToString(b: Uint8Array, off = 0): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[off + 2 * i] << 8) | b[off + 2 * i + 1]);
  return ip6GroupsToString(g);
}

/** Canonical (RFC 5952) text of an IPv6 address, or null when the text is none. */
export function canonicalIpv6(a: string): string | null {
  const b = ipv6Bytes(a);
  return b === null ? null : ipv6BytesToString(b);
}
