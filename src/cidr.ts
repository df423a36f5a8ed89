// CIDR text parsing for flags and config (not the packet path).
import { isIP } from 'node:net';

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
  return { family, address, prefix, text: `${address}/${prefix}` };
}

export function ipv4ToInt(a: string): number {
  const p = a.split('.');
  return ((+p[0] << 24) | (+p[1] << 16) | (+p[2] << 8) | +p[3]) >>> 0;
}
