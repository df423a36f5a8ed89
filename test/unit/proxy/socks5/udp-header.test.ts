// The SOCKS5 UDP request header (RFC 1928 §7): encoded per flow, read back
// byte for byte; IPv4, IPv6 and names; fragments and malformed headers are
// refused with a reason; replies are matched to the flow's destination.
import t from 'tap';
import { parseUdpHeader, sameAddress, udpHeaderFor, udpHeaderLength } from '../../../../src/proxy/socks5/udp-header.js';

t.test('IPv4: RSV, FRAG 0, ATYP 1, four address bytes, port', async (t) => {
  const h = udpHeaderFor('203.0.113.7', 5353);
  t.same([...h], [0, 0, 0, 1, 203, 0, 113, 7, 0x14, 0xe9]);
  const d = Buffer.concat([h, Buffer.from('payload')]);
  t.same(parseUdpHeader(d), { host: '203.0.113.7', port: 5353, atyp: 1, length: 10 });
  t.equal(d.subarray(udpHeaderLength(d) as number).toString(), 'payload');
});

t.test('IPv6: ATYP 4 and sixteen bytes, printed as RFC 5952 text', async (t) => {
  const h = udpHeaderFor('2001:DB8:0:0::53', 53);
  t.equal(h.length, 22);
  t.same([...h.subarray(0, 8)], [0, 0, 0, 4, 0x20, 0x01, 0x0d, 0xb8]);
  t.same([...h.subarray(20)], [0, 53]);
  t.same(parseUdpHeader(h), { host: '2001:db8::53', port: 53, atyp: 4, length: 22 });
});

t.test('a name: ATYP 3, its length, its bytes', async (t) => {
  const h = udpHeaderFor('game.example', 27015);
  t.same([...h.subarray(0, 5)], [0, 0, 0, 3, 12]);
  t.equal(h.toString('ascii', 5, 17), 'game.example');
  t.same(parseUdpHeader(Buffer.concat([h, Buffer.from([1, 2])])), { host: 'game.example', port: 27015, atyp: 3, length: 19 });
  t.throws(() => udpHeaderFor('a'.repeat(256), 1), RangeError, 'a name past 255 bytes cannot be written');
});

t.test('an empty payload is a datagram too', async (t) => {
  const h = udpHeaderFor('192.0.2.1', 9);
  t.equal(udpHeaderLength(h), h.length);
});

t.test('refused with a reason: fragments, reserved bytes, unknown types, short headers', async (t) => {
  const ok = Buffer.concat([udpHeaderFor('192.0.2.1', 9), Buffer.from('x')]);
  const with_ = (i: number, v: number) => {
    const b = Buffer.from(ok);
    b[i] = v;
    return b;
  };
  t.equal(parseUdpHeader(with_(2, 1)), 'fragment', 'FRAG 1: the first of several');
  t.equal(parseUdpHeader(with_(2, 0x81)), 'fragment', 'FRAG with the end bit');
  t.equal(parseUdpHeader(with_(0, 1)), 'reserved');
  t.equal(parseUdpHeader(with_(1, 1)), 'reserved');
  t.equal(parseUdpHeader(with_(3, 2)), 'address-type');
  t.equal(parseUdpHeader(with_(3, 0)), 'address-type');
  t.equal(parseUdpHeader(ok.subarray(0, 3)), 'short');
  t.equal(parseUdpHeader(ok.subarray(0, 9)), 'short', 'port cut off');
  t.equal(parseUdpHeader(udpHeaderFor('2001:db8::1', 1).subarray(0, 21)), 'short', 'IPv6 port cut off');
  t.equal(parseUdpHeader(Buffer.from([0, 0, 0, 3])), 'short', 'a name without its length');
  t.equal(parseUdpHeader(Buffer.from([0, 0, 0, 3, 5, 97, 98, 0, 1])), 'short', 'a name shorter than its length');
  t.equal(parseUdpHeader(Buffer.from([0, 0, 0, 3, 0, 0, 1])), 'empty-name');
});

t.test('a reply is from the destination: same address and port, an IPv4-mapped IPv6 address too', async (t) => {
  const h = udpHeaderFor('203.0.113.7', 5353);
  const reply = (host: string, port: number) => {
    const b = Buffer.concat([udpHeaderFor(host, port), Buffer.from('r')]);
    return [b, udpHeaderLength(b) as number] as const;
  };
  t.ok(sameAddress(...reply('203.0.113.7', 5353), h));
  t.notOk(sameAddress(...reply('203.0.113.8', 5353), h), 'another address');
  t.notOk(sameAddress(...reply('203.0.113.7', 5354), h), 'another port');
  t.ok(sameAddress(...reply('::ffff:203.0.113.7', 5353), h), 'IPv4-mapped');
  t.notOk(sameAddress(...reply('::ffff:203.0.113.8', 5353), h));
  t.notOk(sameAddress(...reply('2001:db8::cb00:7107', 5353), h), 'IPv6 that only ends like it');
  const h6 = udpHeaderFor('2001:db8::7', 53);
  t.ok(sameAddress(...reply('2001:db8::7', 53), h6));
  t.notOk(sameAddress(...reply('2001:db8::8', 53), h6));
});
