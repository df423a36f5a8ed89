// CIDR and address text for flags and config: the one parser lives in src/net;
// this keeps the names the callers use.
import { parseCidr as parse, type Cidr } from './net/cidr.js';

export type { Cidr } from './net/cidr.js';
export { bigIntToIpv6, canonicalIpv6, ipv4ToInt, ipv6ToBigInt } from './net/address.js';

/**
 * Parses "a.b.c.d/n" or "x::y/n" (a bare address means a host route).
 * With hostBits false (the default) the address must be the network address,
 * as `ip route` would otherwise silently mask it; true keeps an interface address.
 */
export function parseCidr(s: string, opts: { hostBits?: boolean } = {}): Cidr | null {
  return parse(s, { hostBits: opts.hostBits ? 'keep' : 'reject' });
}
