import t from 'tap';
import { FakeIpPool } from '../../../src/routing/fake-ip-pool.js';
import { HostPatterns, isHostPattern } from '../../../src/routing/host-patterns.js';
import { ipv4ToString } from '../../../src/net/address.js';

t.test('host patterns: exact and *.suffix, case and trailing dot ignored', async (t) => {
  const h = new HostPatterns(['api.example.com', '*.corp.example']);
  t.ok(h.matches('api.example.com'));
  t.ok(h.matches('API.Example.COM.'));
  t.notOk(h.matches('x.api.example.com'), 'exact means exact');
  t.ok(h.matches('a.corp.example'));
  t.ok(h.matches('a.b.corp.example'));
  t.notOk(h.matches('corp.example'), 'a wildcard does not match its apex');
  t.notOk(h.matches('xcorp.example'));
  t.ok(isHostPattern('*.corp.example'));
  t.ok(isHostPattern('api.example.com'));
  t.notOk(isHostPattern('bad name'));
  t.notOk(isHostPattern('*.'));
});

t.test('the same name keeps its address; addresses come from the pool, past the reserved ones', async (t) => {
  const p = new FakeIpPool({ cidr: '198.18.0.0/15', reserved: 4 });
  const a = p.assign('api.example.com')!;
  t.equal(ipv4ToString(a), '198.18.0.4');
  t.equal(p.assign('API.example.com.'), a, 'same name, same address');
  const b = p.assign('b.example.com')!;
  t.not(b, a);
  t.equal(p.nameOf(a), 'api.example.com');
  t.equal(p.nameOf(b), 'b.example.com');
  t.ok(p.contains(a));
  t.notOk(p.contains(0xc0000201));
  t.equal(p.nameOf(0xc6120063), undefined, 'an address never handed out has no name');
});

t.test('a full pool recycles the least recently used idle mapping, never a live one', async (t) => {
  const live = new Set<number>();
  const p = new FakeIpPool({ cidr: '198.18.0.0/29', reserved: 1 }, (ip) => live.has(ip));
  t.equal(p.capacity, 6);
  const ips = ['a', 'b', 'c', 'd', 'e', 'f'].map((n) => p.assign(`${n}.test`)!);
  t.equal(new Set(ips).size, 6);
  p.assign('a.test'); // a is now the most recent; b the least
  live.add(ips[1]); // b has a connection
  const g = p.assign('g.test')!;
  t.equal(g, ips[2], 'c (least recent idle) was recycled, not b (live)');
  t.equal(p.nameOf(ips[2]), 'g.test');
  t.equal(p.assign('c.test') !== null, true, 'c gets a new address again by recycling');
  for (const ip of ips) live.add(ip);
  live.add(g);
  const all = new Set(p.save().map(([, ip]) => ip));
  for (const ip of all) live.add(Number(ip.split('.').reduce((x, o) => x * 256 + Number(o), 0)));
  t.equal(p.assign('h.test'), null, 'every mapping live: no address');
});

t.test('mappings survive save and load (a restart)', async (t) => {
  const p = new FakeIpPool();
  const a = p.assign('one.test')!;
  const b = p.assign('two.test')!;
  const q = new FakeIpPool();
  q.load(p.save());
  t.equal(q.assign('one.test'), a);
  t.equal(q.assign('two.test'), b);
  t.equal(q.nameOf(b), 'two.test');
  const c = q.assign('three.test')!;
  t.notOk(c === a || c === b, 'new names do not collide with loaded ones');
});
