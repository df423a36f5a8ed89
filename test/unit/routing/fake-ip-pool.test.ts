import t from 'tap';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
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
  const p = new FakeIpPool({ cidr: '198.18.0.0/29', reserved: 1, holdMs: 0 }, (ip) => live.has(ip));
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

t.test('a mapping is held after its last answer and its last connection: a client holding the answer never reaches another name', async (t) => {
  let now = 0;
  const live = new Set<number>();
  const p = new FakeIpPool(
    { cidr: '198.18.0.0/28', reserved: 4, holdMs: 60_000 },
    (ip) => live.has(ip),
    () => now,
  );
  t.equal(p.capacity, 11);
  const a = p.assign('a.example.test')!;
  for (let i = 1; i <= 10; i++) p.assign(`n${i}.example.test`);
  now = 30_000;
  t.equal(p.assign('n11.example.test'), null, 'full, and every mapping answered within the hold: no address (SERVFAIL)');
  t.equal(p.counters.exhausted, 1);
  t.equal(p.nameOf(a), 'a.example.test', 'a still holds its address');
  // a's answer is 30 s old, but a connection now renews its hold; n1's does not
  now = 61_000;
  live.add(a);
  const n11 = p.assign('n11.example.test')!;
  t.not(n11, a, 'a has a connection: never recycled');
  t.equal(p.counters.recycled, 1, 'n1 (held until 60 s) was recycled');
  t.equal(p.nameOf(n11), 'n11.example.test');
  live.delete(a);
  p.touch(a); // its connection ended at 61 s
  now = 100_000;
  t.equal(p.assign('n12.example.test') !== a, true, 'a is held for 60 s after its last connection ended');
  now = 200_000;
  const again = p.assign('a.example.test');
  t.equal(again, a, 'a name keeps its address while it is mapped');
  t.same(p.counters, { recycled: 2, exhausted: 1 });
});

t.test('loaded mappings are held from the start: clients may hold answers from before the restart', async (t) => {
  let now = 5_000_000;
  const p = new FakeIpPool({ cidr: '198.18.0.0/29', reserved: 1, holdMs: 60_000 }, undefined, () => now);
  const saved = ['a', 'b', 'c', 'd', 'e', 'f'].map((n) => [`${n}.test`, ipv4ToString(p.assign(`${n}.test`)!)] as [string, string]);
  const q = new FakeIpPool({ cidr: '198.18.0.0/29', reserved: 1, holdMs: 60_000 }, undefined, () => now);
  q.load(saved);
  t.equal(q.assign('g.test'), null);
  now += 60_001;
  t.not(q.assign('g.test'), null);
});

t.test('a pool holds memory for the mappings it has, not for its capacity (an idle gateway has none)', async (t) => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  const before = getHeapStatistics().used_heap_size;
  // the default pool: 65,536 mappings; an LRUCache of that size preallocated about 1 MB of heap each
  const pools = Array.from({ length: 8 }, () => new FakeIpPool());
  pools[0].assign('one.test');
  gc();
  const grown = getHeapStatistics().used_heap_size - before;
  t.ok(grown < 1 << 20, `8 empty pools grew the heap by ${grown} bytes (under 1 MiB)`);
  t.equal(pools[0].mappings, 1);
});
