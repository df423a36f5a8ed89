// UDP admission: QUIC's SNI is a UDP flow's name; UDP to port 443 that is no
// readable QUIC is unknown; a fake IP's QUIC for another name is refused.
import t from 'tap';
import { Policy } from '../../../src/proxy/policy.js';
import { admitUdp, type UdpPending, type UdpVerdict } from '../../../src/proxy/udp-admission.js';
import type { Rule } from '../../../src/proxy/rules/rule-types.js';
import type { UpstreamProxy } from '../../../src/proxy/upstream-proxies.js';
import { clientHelloMessage, initialDatagrams } from '../../helpers/quic-initial-encoder.js';

const rules: Rule[] = [
  { index: 0, match: { domain: ['blocked.example'] }, action: { type: 'reject' } },
  { index: 1, match: { protocol: ['unknown'], port: [{ from: 443, to: 443 }] }, action: { type: 'reject' } },
];
const policy = new Policy(rules, new Map(), new Map());
const flow = (dstPort = 443, hostname?: string) => ({ dstAddress: '203.0.113.7', dstPort, srcAddress: '192.0.2.1', ...(hostname ? { hostname } : {}) });

/** Feeds datagrams until a verdict. */
function run(v: UdpVerdict | UdpPending, rest: Buffer[]): UdpVerdict {
  for (const d of rest) {
    if (!('next' in v)) return v;
    const r = v.next(d);
    if (r) return r;
  }
  return 'next' in v ? v.next(null)! : v;
}

t.test('QUIC is decided by its SNI, also when the hello spans datagrams', async (t) => {
  const [one] = initialDatagrams(await clientHelloMessage('blocked.example'));
  t.match(admitUdp(policy, flow(), one), { action: 'reject', rule: 'rules[0]', proto: 'quic', sni: 'blocked.example' });
  const allowed = initialDatagrams(await clientHelloMessage('ok.example'));
  t.match(admitUdp(policy, flow(), allowed[0]), { action: 'direct', proto: 'quic', sni: 'ok.example' });
  const big = initialDatagrams(await clientHelloMessage('blocked.example', ['h3'], 2000), { reverse: true });
  const first = admitUdp(policy, flow(), big[0]);
  t.ok('next' in first, 'undecided after the first datagram');
  t.match(run(first, big.slice(1)), { action: 'reject', sni: 'blocked.example' });
});

t.test('UDP to 443 that is no readable QUIC is unknown (rejected by the fail-closed rule); elsewhere plain udp', async (t) => {
  t.match(admitUdp(policy, flow(443), Buffer.from('hello')), { action: 'reject', rule: 'rules[1]', proto: 'unknown' });
  t.match(admitUdp(policy, flow(5353), Buffer.from('hello')), { action: 'direct', proto: 'udp' });
  const big = initialDatagrams(await clientHelloMessage('ok.example', ['h3'], 2000));
  t.match(run(admitUdp(policy, flow(), big[0]), []), { action: 'reject', proto: 'unknown' }, 'a hello that never completes');
  const none = new Policy([], new Map(), new Map());
  t.match(admitUdp(none, flow(443), Buffer.from('x')), { action: 'direct', proto: 'udp' }, 'no rule cares: not even looked at');
});

t.test("a fake IP's QUIC for another name is refused", async (t) => {
  let told = '';
  const [d] = initialDatagrams(await clientHelloMessage('n11.example'));
  t.match(
    admitUdp(policy, flow(443, 'a.example'), d, (m, s) => (told = `${m}>${s}`)),
    { action: 'reject', rule: 'fake-ip' },
  );
  t.equal(told, 'a.example>n11.example');
  const [ok] = initialDatagrams(await clientHelloMessage('a.example'));
  t.match(admitUdp(policy, flow(443, 'a.example'), ok), { action: 'direct', proto: 'quic' });
});

t.test('a proxy rule carries UDP through its SOCKS5 upstream, a mapped name as the name; an HTTP upstream cannot, so it refuses', async (t) => {
  const socks = { name: 'dante', type: 'socks5' as const, host: '203.0.113.20', port: 1080 };
  const http = { name: 'corp', type: 'http' as const, host: '203.0.113.21', port: 3128 };
  const p = new Policy(
    [
      { index: 0, match: { domain: ['game.example'] }, action: { type: 'proxy', upstream: 'dante' } },
      { index: 1, match: { port: [{ from: 5000, to: 5000 }] }, action: { type: 'proxy', upstream: 'dante' } },
      { index: 2, match: { port: [{ from: 6000, to: 6000 }] }, action: { type: 'proxy', upstream: 'corp' } },
    ],
    new Map<string, UpstreamProxy>([
      ['dante', socks],
      ['corp', http],
    ]),
    new Map(),
  );
  const byName = admitUdp(p, flow(27015, 'game.example'), Buffer.from('x')) as UdpVerdict;
  t.match(byName, { action: 'proxy', rule: 'rules[0]', host: 'game.example' });
  t.equal(byName.upstream, socks);
  const byPort = admitUdp(p, flow(5000), Buffer.from('x')) as UdpVerdict;
  t.match(byPort, { action: 'proxy', rule: 'rules[1]' });
  t.equal(byPort.host, undefined, 'no mapped name: the address goes to the upstream');
  t.match(admitUdp(p, flow(6000), Buffer.from('x')), { action: 'reject', rule: 'rules[2]' }, 'HTTP CONNECT carries no UDP: refused, never sent past the proxy');
  t.match(admitUdp(p, flow(7000), Buffer.from('x')), { action: 'direct', rule: 'default' });
});
