// A stack worker's copy of the fake-IP names: answers names and pool
// membership itself, asks the pool's owner for DNS answers and real
// addresses, reports ended connections to fakes, and takes a recycled
// address's new name.
import t from 'tap';
import { FakeIpReplica, type PoolOwner } from '../../../src/data-plane/workers/fake-ip-replica.js';
import { workerLimits } from '../../../src/data-plane/workers/worker-reload.js';
import { FakeIpPool } from '../../../src/routing/fake-ip-pool.js';
import { ipv4ToInt } from '../../../src/net/address.js';
import type { DataPlaneConfig } from '../../../src/data-plane/config.js';

function replica() {
  const asked: string[] = [];
  const used: number[] = [];
  const owner: PoolOwner = {
    answer: async (q, viaTcp) => (asked.push(`answer ${q.toString()} ${viaTcp}`), Buffer.from('reply')),
    lookup: async (name, family) => (asked.push(`lookup ${name} ${family}`), family === 6 ? '2001:db8::10' : '203.0.113.10'),
    used: (ip) => used.push(ip),
  };
  const r = new FakeIpReplica({ fakePool: '198.18.0.0/15', fakePool6: 'fc00::/18', ipv6: true }, owner);
  return { r, asked, used };
}

t.test('names of fakes, IPv4 and their IPv6 twins; nothing for others', async (t) => {
  const { r } = replica();
  r.apply([['api.example.com', '198.18.0.5']]);
  t.equal(r.hostnameOf(ipv4ToInt('198.18.0.5')), 'api.example.com');
  t.equal(r.hostnameOf6('fc00::5'), 'api.example.com');
  t.equal(r.hostnameOfEndpoint({ family: 4, address: '198.18.0.5', port: 80 }), 'api.example.com');
  t.equal(r.hostnameOfEndpoint({ family: 6, address: 'fc00::5', port: 80 }), 'api.example.com');
  t.equal(r.hostnameOf(ipv4ToInt('198.18.0.6')), undefined, 'an unmapped fake');
  t.equal(r.hostnameOf(ipv4ToInt('203.0.113.10')), undefined, 'not a fake');
  t.ok(r.proxy.isFakeAddress('198.18.9.9'));
  t.ok(r.proxy.isFakeAddress('fc00::9'));
  t.notOk(r.proxy.isFakeAddress('203.0.113.10'));
});

t.test('a recycled address takes its new name', async (t) => {
  const { r } = replica();
  r.apply([['old.example', '198.18.0.5']]);
  r.apply([['new.example', '198.18.0.5']]);
  t.equal(r.hostnameOf(ipv4ToInt('198.18.0.5')), 'new.example');
  t.equal(r.size, 1);
});

t.test('real addresses come from the owner; others and stale fakes are answered here', async (t) => {
  const { r, asked } = replica();
  r.apply([['api.example.com', '198.18.0.5']]);
  t.equal(await r.resolveTarget(ipv4ToInt('198.18.0.5')), '203.0.113.10');
  t.equal(await r.resolveTarget(0, 'fc00::5'), '2001:db8::10');
  t.equal(await r.resolveTarget(ipv4ToInt('198.18.0.6')), null, 'a stale fake');
  t.equal(await r.resolveTarget(ipv4ToInt('192.0.2.1')), '192.0.2.1', 'not a fake: as addressed');
  t.equal(await r.resolveTarget(0, '2001:db8::1'), '2001:db8::1');
  t.same(asked, ['lookup api.example.com 4', 'lookup api.example.com 6']);
  t.equal((await r.dns.answer(Buffer.from('q'), true))?.toString(), 'reply');
  t.equal(asked.at(-1), 'answer q true');
});

t.test('an ended connection to a mapped fake is reported (its hold time restarts at the owner)', async (t) => {
  const { r, used } = replica();
  r.apply([['api.example.com', '198.18.0.5']]);
  r.proxy.fakeAddressUsed('198.18.0.5');
  r.proxy.fakeAddressUsed('fc00::5');
  r.proxy.fakeAddressUsed('198.18.0.6');
  r.proxy.fakeAddressUsed('203.0.113.10');
  t.same(used, [ipv4ToInt('198.18.0.5'), ipv4ToInt('198.18.0.5')]);
});

t.test('the pool tells of each new mapping, and of a recycled one', async (t) => {
  let now = 0;
  const pool = new FakeIpPool(
    { cidr: '198.18.0.0/29', reserved: 1, holdMs: 10, cidr6: null },
    () => false,
    () => now,
  );
  const told: string[] = [];
  pool.onAssign = (name, ip) => told.push(`${name} ${ip}`);
  const a = pool.assign('a.example')!;
  pool.assign('a.example');
  t.same(told, [`a.example ${a}`], 'once per new mapping');
  for (const n of ['b', 'c', 'd', 'e', 'f']) pool.assign(`${n}.example`);
  now = 100;
  const g = pool.assign('g.example');
  t.equal(g, a, 'the least recently used address, recycled');
  t.equal(told.at(-1), `g.example ${a}`);
});

t.test('limits split over the workers, rounded up', async (t) => {
  const c = { maxConnections: 100_000, synBacklog: 1024, maxUdpFlows: 4096, memoryBudgetMb: 256 } as DataPlaneConfig;
  t.same((({ maxConnections, synBacklog, maxUdpFlows, memoryBudgetMb }) => ({ maxConnections, synBacklog, maxUdpFlows, memoryBudgetMb }))(workerLimits(c, 3)), {
    maxConnections: 33_334,
    synBacklog: 342,
    maxUdpFlows: 1366,
    memoryBudgetMb: 256 / 3,
  });
  t.equal(workerLimits({ ...c, maxConnections: 1 }, 4).maxConnections, 1, 'never below one');
});
