// The fake-IP pool's IPv6 side: one index space, the IPv6 fake is the IPv6 prefix plus the IPv4 fake's offset.
import t from 'tap';
import { FakeIpPool, DEFAULT_FAKE_POOL } from '../../../src/routing/fake-ip-pool.js';
import { ipv4ToInt } from '../../../src/cidr.js';

t.test('default: fc00::/18, same offset as the IPv4 fake', async (t) => {
  t.equal(DEFAULT_FAKE_POOL.cidr6, 'fc00::/18');
  const p = new FakeIpPool();
  const a = p.assign('api.example.com')!;
  t.equal(p.toV6(a), 'fc00::4', '198.18.0.4 is index 4');
  t.equal(p.toV6(ipv4ToInt('198.19.255.254')), 'fc00::1:fffe', 'the last usable index');
  t.equal(p.assign6('api.example.com'), 'fc00::4', 'assign6 reuses the mapping');
  t.equal(p.mappings, 1);
  t.equal(p.fromV6('fc00::4'), a);
  t.equal(p.fromV6('FC00:0:0:0:0:0:0:4'), a, 'any spelling');
  t.equal(p.nameOf6('fc00::4'), 'api.example.com');
  t.equal(p.fromV6('fc00::2:0'), undefined, 'past the IPv4 pool size');
  t.equal(p.fromV6('fc00:4000::4'), undefined, 'outside the /18');
  t.equal(p.fromV6('2001:db8::4'), undefined);
  t.equal(p.fromV6('198.18.0.4'), undefined, 'IPv4 text is not an IPv6 fake');
  t.equal(p.fromV6('nonsense'), undefined);
  t.equal(p.nameOf6('fc00::5'), undefined, 'never handed out');
  const b = p.assign6('b.example.com')!;
  t.equal(b, 'fc00::5');
  t.equal(p.nameOf(p.fromV6(b)!), 'b.example.com', 'an IPv6-first name has its IPv4 fake too');
});

t.test('a custom IPv6 pool, and none', async (t) => {
  const p = new FakeIpPool({ cidr: '198.18.0.0/24', reserved: 4, cidr6: '2001:db8:ff::/120' });
  const a = p.assign('x.test')!;
  t.equal(p.toV6(a), '2001:db8:ff::4');
  t.equal(p.fromV6('2001:db8:ff::ff'), ipv4ToInt('198.18.0.255'));
  const off = new FakeIpPool({ cidr6: null });
  t.equal(off.base6, null);
  t.equal(off.toV6(off.assign('x.test')!), null);
  t.equal(off.assign6('y.test'), null);
  t.equal(off.fromV6('fc00::4'), undefined);
  t.throws(() => new FakeIpPool({ cidr: '198.18.0.0/15', cidr6: '2001:db8::/120' }), /smaller than/);
  t.throws(() => new FakeIpPool({ cidr6: '10.0.0.0/8' }), /not an IPv6 CIDR/);
});

t.test('recycling frees both addresses; liveness is asked by index', async (t) => {
  const live = new Set<number>();
  const p = new FakeIpPool({ cidr: '198.18.0.0/29', reserved: 1, holdMs: 0 }, (ip) => live.has(ip));
  const names = ['a', 'b', 'c', 'd', 'e', 'f'].map((n) => `${n}.test`);
  const v6 = names.map((n) => p.assign6(n)!);
  live.add(p.fromV6(v6[0])!); // a connection to a's IPv6 fake keeps a
  const g = p.assign6('g.test')!;
  t.equal(g, v6[1], 'b (least recent idle) recycled, a kept');
  t.equal(p.nameOf6(v6[0]), 'a.test');
  t.equal(p.nameOf6(g), 'g.test');
});

t.test('save/load keeps IPv6 fakes (they follow the IPv4 ones)', async (t) => {
  const p = new FakeIpPool();
  p.assign('a.test');
  const b6 = p.assign6('b.test')!;
  const q = new FakeIpPool();
  q.load(p.save());
  t.equal(q.nameOf6(b6), 'b.test');
});
