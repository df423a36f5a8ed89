// The one CIDR parser (flags, config, routes, rules), and the byte-level
// membership test the rule matcher uses per connection. Never per packet.
import { isIP } from 'node:net';
import { ipv6Bytes, ipv6BytesToString } from './address.js';
import type { Family } from './endpoint.js';

export interface Cidr {
  family: Family;
  /** The address as written (IPv6 canonical, RFC 5952); host bits kept unless masked. */
  address: string;
  prefix: number;
  /** Canonical "address/prefix" text. */
  text: string;
  /** The network address, 4 or 16 bytes, host bits zero. */
  bytes: Uint8Array;
}

export interface CidrParseOptions {
  /**
   * Host bits below the prefix: 'reject' (the default: the text must be the network
   * address, as `ip route` would otherwise silently mask it), 'keep' (an interface
   * address such as 10.0.0.1/24), or 'mask' (a rule's CIDR: 10.0.0.1/24 means 10.0.0.0/24).
   */
  hostBits?: 'reject' | 'keep' | 'mask';
}

/** Parses "a.b.c.d/n" or "x::y/n"; a bare address means a host route. Null when the text is none. */
export function parseCidr(s: string, opts: CidrParseOptions = {}): Cidr | null {
  const slash = s.indexOf('/');
  const given = slash < 0 ? s : s.slice(0, slash);
  const family = isIP(given);
  // A zone id (fe80::1%eth0) names an interface, not a network.
  if ((family !== 4 && family !== 6) || given.includes('%')) return null;
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) return null;
    prefix = Number(p);
    if (prefix > max) return null;
  }
  const raw = family === 4 ? ipv4Bytes(given) : ipv6Bytes(given)!;
  const bytes = maskBytes(raw, prefix);
  const hostBits = opts.hostBits ?? 'reject';
  if (hostBits === 'reject' && !equalBytes(raw, bytes)) return null;
  const address = family === 4 ? given : ipv6BytesToString(hostBits === 'mask' ? bytes : raw);
  return { family, address, prefix, text: `${address}/${prefix}`, bytes };
}

/**
 * 4 bytes for IPv4 (and IPv4-mapped IPv6, ::ffff:a.b.c.d, so a dual-stack socket's
 * mapped peer matches IPv4 CIDRs), 16 for IPv6, null for anything else. A zone id is ignored.
 */
export function addressBytes(address: string): Uint8Array | null {
  const family = isIP(address);
  if (family === 4) return ipv4Bytes(address);
  if (family !== 6) return null;
  const pct = address.indexOf('%');
  const b = ipv6Bytes(pct < 0 ? address : address.slice(0, pct));
  if (b === null) return null;
  return isMapped(b) ? b.slice(12) : b;
}

/**
 * A CIDR inside ::ffff:0:0/96 as the IPv4 CIDR it denotes (addressBytes folds mapped
 * addresses the same way); any other CIDR unchanged. A shorter IPv6 prefix that merely
 * covers the mapped range (::/0) stays IPv6 and matches no IPv4 address.
 */
export function foldMapped(c: Cidr): Cidr {
  if (c.family !== 6 || c.prefix < 96 || !isMapped(c.bytes)) return c;
  const bytes = c.bytes.slice(12);
  const address = `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  return { family: 4, address, prefix: c.prefix - 96, text: `${address}/${c.prefix - 96}`, bytes };
}

/** Does the network (bytes, prefix) hold the address bytes? Families must match (4 vs 16 bytes). */
export function cidrContains(c: { bytes: Uint8Array; prefix: number }, bytes: Uint8Array): boolean {
  const net = c.bytes;
  if (bytes.length !== net.length) return false;
  const whole = c.prefix >> 3;
  for (let i = 0; i < whole; i++) if (bytes[i] !== net[i]) return false;
  const rest = c.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (bytes[whole] & mask) === (net[whole] & mask);
}

function ipv4Bytes(s: string): Uint8Array {
  const p = s.split('.');
  return Uint8Array.of(+p[0], +p[1], +p[2], +p[3]);
}

function maskBytes(b: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(b.length);
  const whole = prefix >> 3;
  out.set(b.subarray(0, whole));
  const rest = prefix & 7;
  if (rest) out[whole] = b[whole] & ((0xff << (8 - rest)) & 0xff);
  return out;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function isMapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}
