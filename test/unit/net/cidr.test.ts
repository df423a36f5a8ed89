// The one CIDR parser: what config, flags and routes need (host bits rejected or
// kept, canonical IPv6) and what the rule matcher needs (host bits masked,
// IPv4-mapped folded), from one implementation.
import t from 'tap';
import { addressBytes, cidrContains, foldMapped, parseCidr } from '../../../src/net/cidr.js';
import { parseCidr as legacyParseCidr } from '../../../src/cidr.js';
import { cidrMatch } from '../../../src/proxy/rules/cidr-match.js';
import { bigIntToIpv6, canonicalIpv6, ipv6ToBigInt, parseIpv6Into } from '../../../src/net/address.js';

t.test('host bits: rejected by default, kept or masked on request', async (t) => {
  t.same(parseCidr('203.0.113.0/24')?.text, '203.0.113.0/24');
  t.equal(parseCidr('203.0.113.1/24'), null, 'a host address is no network');
  t.same(parseCidr('203.0.113.1/24', { hostBits: 'keep' })?.text, '203.0.113.1/24');
  t.same(Array.from(parseCidr('203.0.113.1/24', { hostBits: 'keep' })!.bytes), [203, 0, 113, 0], 'bytes are always the network');
  t.same(parseCidr('203.0.113.77/24', { hostBits: 'mask' })?.text, '203.0.113.77/24', 'IPv4 text as written');
  t.equal(parseCidr('2001:db8::1/64'), null);
  t.same(parseCidr('2001:DB8:0:0::1/64', { hostBits: 'keep' })?.text, '2001:db8::1/64', 'IPv6 canonical (RFC 5952)');
  t.same(parseCidr('2001:db8::1/64', { hostBits: 'mask' })?.address, '2001:db8::');
  t.same(parseCidr('192.0.2.7')?.text, '192.0.2.7/32', 'a bare address is a host route');
  t.same(parseCidr('2001:db8::7')?.prefix, 128);
});

t.test('what is not a CIDR', async (t) => {
  for (const bad of ['', 'x', '1.2.3/8', '1.2.3.4/33', '1.2.3.4/', '1.2.3.4/-1', '1.2.3.4/8/8', '::/129', 'fe80::1%eth0/64', 'fe80::1%eth0', '1::2::3/64', '256.1.1.1/32']) {
    t.equal(parseCidr(bad), null, bad);
    t.equal(cidrMatch(bad), null, `rules: ${bad}`);
  }
});

t.test('the flags and config wrapper keeps its contract', async (t) => {
  t.same(legacyParseCidr('10.0.0.1/24', { hostBits: true })?.text, '10.0.0.1/24');
  t.equal(legacyParseCidr('10.0.0.1/24'), null);
  t.same(legacyParseCidr('fc00::/18')?.family, 6);
});

t.test('rules: host bits masked, IPv4-mapped folded into IPv4', async (t) => {
  const m = cidrMatch('::ffff:192.0.2.0/120')!;
  t.equal(m.family, 4);
  t.equal(m.prefix, 24);
  t.same(Array.from(m.bytes), [192, 0, 2, 0]);
  t.equal(m.text, '::ffff:192.0.2.0/120', 'text as written, for logs');
  t.ok(cidrContains(m, addressBytes('192.0.2.9')!));
  t.ok(cidrContains(m, addressBytes('::ffff:192.0.2.9')!), 'a mapped peer matches too');
  const all6 = cidrMatch('::/0')!;
  t.equal(all6.family, 6, '::/0 merely covers the mapped range: stays IPv6');
  t.notOk(cidrContains(all6, addressBytes('192.0.2.9')!));
  t.same(foldMapped(parseCidr('2001:db8::/32')!).family, 6);
  t.same(Array.from(cidrMatch('10.1.2.3/8')!.bytes), [10, 0, 0, 0]);
  t.ok(cidrContains(cidrMatch('2001:db8::/33')!, addressBytes('2001:db8:7fff::1')!));
  t.notOk(cidrContains(cidrMatch('2001:db8::/33')!, addressBytes('2001:db8:8000::1')!));
  t.same(Array.from(addressBytes('fe80::1%eth0')!).slice(0, 2), [0xfe, 0x80], 'a zone id is ignored');
  t.equal(addressBytes('example.com'), null);
});

t.test('IPv6 text: one parser, RFC 5952 out', async (t) => {
  t.equal(canonicalIpv6('2001:0DB8::0:1'), '2001:db8::1');
  t.equal(canonicalIpv6('::ffff:192.0.2.1'), '::ffff:c000:201');
  t.equal(canonicalIpv6('fe80::1%eth0'), null);
  t.equal(bigIntToIpv6(ipv6ToBigInt('2001:db8::1') + 1n), '2001:db8::2');
  t.equal(ipv6ToBigInt('::1.2.3.4'), 0x01020304n);
  const b = Buffer.alloc(16);
  t.ok(parseIpv6Into('1:2:3:4:5:6:7::', b, 0));
  t.notOk(parseIpv6Into(':1::', b, 0));
});
