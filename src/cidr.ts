// CIDR text parsing for flags and config (not the packet path).
import { isIP } from 'node:net';
import { ip6GroupsToString } from './stack/wire/ip6-table.js';

export interface Cidr {
  family: 4 | 6;
  address: string;
  prefix: number;
  /** Canonical "address/prefix" text. */
  text: string;
}

/**
 * Parses "a.b.c.d/n" or "x::y/n" (a bare address means a host route).
 * With hostBits false (the default) the address must be the network address,
 * as `ip route` would otherwise silently mask it.
 */
export function parseCidr(s: string, opts: { hostBits?: boolean } = {}): Cidr | null {
  const slash = s.indexOf('/');
  const address = slash < 0 ? s : s.slice(0, slash);
  const family = isIP(address);
  if (family !== 4 && family !== 6) return null;
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) return null;
    prefix = Number(p);
    if (prefix > max) return null;
  }
  if (!opts.hostBits && family === 4 && prefix < 32) {
    const n = ipv4ToInt(address);
    const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
    if (((n & mask) >>> 0) !== n) return null;
  }
  if (family === 6) {
    // zone ids (fe80::1%eth0) are no CIDR; the text is canonical (RFC 5952) so `ip` output and ours compare equal
    if (address.includes('%')) return null;
    const n = ipv6ToBigInt(address);
    if (!opts.hostBits && prefix < 128 && (n & ((1n << BigInt(128 - prefix)) - 1n)) !== 0n) return null;
    const canon = bigIntToIpv6(n);
    return { family, address: canon, prefix, text: `${canon}/${prefix}` };
  }
  return { family, address, prefix, text: `${address}/${prefix}` };
}

/** An IPv6 address (any valid text, IPv4-embedded forms too) as a 128-bit number. Check with isIP first. */
export function ipv6ToBigInt(a: string): bigint {
  let text = a;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const v4 = ipv4ToInt(dotted[1]);
    text = `${text.slice(0, dotted.index)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const tl = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - tl.length).fill('0'), ...tl];
  let n = 0n;
  for (const g of groups) n = (n << 16n) | BigInt(parseInt(g || '0', 16));
  return n;
}

/** RFC 5952 text of a 128-bit number. */
export function bigIntToIpv6(n: bigint): string {
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((n >> BigInt(i * 16)) & 0xffffn));
  return ip6GroupsToString(g);
}

/** Canonical (RFC 5952) text of an IPv6 address, or null when the text is none. */
export function canonicalIpv6(a: string): string | null {
  return isIP(a) === 6 && !a.includes('%') ? bigIntToIpv6(ipv6ToBigInt(a)) : null;
}

export function ipv4ToInt(a: string): number {
  const p = a.split('.');
  return ((+p[0] << 24) | (+p[1] << 16) | (+p[2] << 8) | +p[3]) >>> 0;
}
