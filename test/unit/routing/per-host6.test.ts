// Per-host mode's plan with the IPv6 fake pool.
import t from 'tap';
import { planPerHost } from '../../../src/routing/per-host.js';

const cfg = { tunName: 'tun0', pool: '198.18.0.0/15', dnsAddress: '198.18.0.2', resolvConf: '/x/resolv.conf', resolvConfText: 'nameserver 192.0.2.53\n' };

t.test('IPv6 on: the IPv6 pool is routed into the TUN too', async (t) => {
  const steps = planPerHost({ ...cfg, pool6: 'FC00::/18' });
  const ips = steps.filter((s) => s.kind === 'ip').map((s) => (s.kind === 'ip' ? s.do.join(' ') : ''));
  t.strictSame(ips.sort(), ['-4 route add 198.18.0.0/15 dev tun0', '-6 route add fc00::/18 dev tun0'].sort());
  const six = steps.find((s) => s.kind === 'ip' && s.do[0] === '-6');
  t.strictSame(six?.kind === 'ip' && six.undo, ['-6', 'route', 'del', 'fc00::/18', 'dev', 'tun0']);
  t.equal(steps.filter((s) => s.kind === 'file').length, 1);
});

t.test('IPv6 off: no IPv6 route', async (t) => {
  const steps = planPerHost(cfg);
  t.notOk(steps.some((s) => s.kind === 'ip' && s.do[0] === '-6'));
  t.throws(() => planPerHost({ ...cfg, pool6: '10.0.0.0/8' }), /--fake-pool6/);
});
