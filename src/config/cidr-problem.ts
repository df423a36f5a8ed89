// Why a CIDR text is not one, in words a user can act on: "/33 is out of
// range" rather than the one catch-all "host bits must be zero".
import { isIP } from 'node:net';
import { bigIntToIpv6, ipv4ToInt, ipv6ToBigInt, parseCidr } from '../cidr.js';
import { ipv4ToString } from '../net/address.js';

/** null when s is a network (no host bits set); else what is wrong with it. */
export function cidrProblem(s: string): string | null {
  if (parseCidr(s) !== null) return null;
  const slash = s.indexOf('/');
  const address = slash < 0 ? s : s.slice(0, slash);
  if (address.includes('%')) return `"${s}" has a zone id (%...): a CIDR has none`;
  const family = isIP(address);
  if (family !== 4 && family !== 6) return `"${address}" is not an IPv4 or IPv6 address (a CIDR is written as 203.0.113.0/24 or 2001:db8::/32)`;
  const max = family === 4 ? 32 : 128;
  const p = slash < 0 ? String(max) : s.slice(slash + 1);
  if (!/^\d+$/.test(p)) return `the prefix "/${p}" is not a number (IPv${family} prefixes are 0..${max})`;
  const prefix = Number(p);
  if (prefix > max) return `the prefix /${prefix} is out of range: IPv${family} prefixes are 0..${max}`;
  return `host bits are set after the first ${prefix}: the network is ${network(address, family, prefix)}/${prefix}`;
}

function network(address: string, family: 4 | 6, prefix: number): string {
  if (family === 4) return ipv4ToString((ipv4ToInt(address) & (prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0)) >>> 0);
  const hostMask = (1n << BigInt(128 - prefix)) - 1n;
  return bigIntToIpv6(ipv6ToBigInt(address) & ~hostMask & ((1n << 128n) - 1n));
}
