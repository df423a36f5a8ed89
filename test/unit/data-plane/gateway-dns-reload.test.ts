// The gateway's DNS across a reload (gateway-dns.ts setHosts, mappings): a
// name the new patterns match gets a fake IP from the next query on, a name
// they no longer match is not mapped again but keeps the fake it was given
// (clients hold it), and the control API's list shows every mapping with its
// IPv6 twin.
import t from 'tap';
import dnsPacket from 'dns-packet';
import { gatewayDns } from '../../../src/data-plane/gateway-dns.js';
import { DestinationCheck } from '../../../src/proxy/destination-check.js';
import type { DataPlaneConfig } from '../../../src/data-plane/config.js';

const config = {
  ipv6: true,
  hosts: ['a.example'],
  fakePool: '198.18.0.0/15',
  fakePool6: 'fc00::/18',
  fakeIpHoldMs: 3_600_000,
  localAddress: null,
  localAddress6: null,
} as unknown as DataPlaneConfig;

async function ask(d: ReturnType<typeof gatewayDns>, name: string) {
  const q = dnsPacket.encode({ type: 'query', id: 1, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name, class: 'IN' }] });
  const a = await d.dns.answer(q);
  const p = a ? dnsPacket.decode(a) : null;
  // RCODE: the low 4 bits of the header's flags (RFC 1035 §4.1.1).
  const rcode = p ? (p.flags ?? 0) & 0xf : undefined;
  const isA = (x: dnsPacket.Answer): x is dnsPacket.StringAnswer => x.type === 'A';
  return { rcode, a: (p?.answers ?? []).filter(isA).map((x) => x.data) };
}

t.test('setHosts: new names mapped from the next query, old mappings kept and listed', async (t) => {
  const d = gatewayDns(
    config,
    [],
    () => false,
    () => {},
    new DestinationCheck(null),
  );
  const a1 = await ask(d, 'a.example');
  t.match(a1.a[0], /^198\.1[89]\./, 'a.example: a fake IP');
  t.notOk(
    (await ask(d, 'b.example')).a.some((ip) => ip.startsWith('198.18.')),
    'b.example: not mapped before the reload',
  );
  d.setHosts(['b.example']);
  const b = await ask(d, 'b.example');
  t.match(b.a[0], /^198\.1[89]\./, 'b.example: mapped from the next query on');
  t.notOk(
    (await ask(d, 'a.example')).a.some((ip) => ip.startsWith('198.18.')),
    'a.example: no longer answered with a fake',
  );
  const m = d.mappings();
  t.same(m.map((x) => x.host).sort(), ['a.example', 'b.example'], 'the mapping a client may hold stays');
  const am = m.find((x) => x.host === 'a.example')!;
  t.equal(am.ip, a1.a[0]);
  t.match(am.ip6, /^fc00:/, 'with its IPv6 twin');
  t.equal(d.hostnameOf(Number(am.ip.split('.').reduce((n, o) => n * 256 + Number(o), 0))), 'a.example', 'and a connection to it is still named');
});
