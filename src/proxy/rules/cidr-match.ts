// CIDRs for the rule matcher: the one parser of src/net, host bits masked off.
//
// IPv4-mapped IPv6 (::ffff:a.b.c.d) is folded into IPv4 on both sides: an address becomes
// 4 bytes, and a CIDR inside ::ffff:0:0/96 becomes the IPv4 CIDR it denotes, so a dual-stack
// socket's mapped peer matches the IPv4 rules users write. A shorter IPv6 prefix that merely
// covers the mapped range (e.g. ::/0) stays IPv6 and does not match IPv4 addresses.
import { foldMapped, parseCidr } from '../../net/cidr.js';
import type { CidrMatch } from './rule-types.js';

export { addressBytes, cidrContains } from '../../net/cidr.js';

/** Parses "a.b.c.d/n", "x::y/n" or a bare address (a host route); host bits are masked off. */
export function cidrMatch(text: string): CidrMatch | null {
  const c = parseCidr(text, { hostBits: 'mask' });
  if (c === null) return null;
  const f = foldMapped(c);
  return { family: f.family, bytes: f.bytes, prefix: f.prefix, text };
}
