// Uplink discovery from `ip -j` output (fixtures copied from iproute2 6.1).
import t from 'tap';
import { discoverUplink, pickDefaultRoute, pickSourceAddress, UplinkError } from '../../../src/routing/uplink.js';
import type { IpExecSync } from '../../../src/routing/ip-exec.js';

const addrVa = JSON.stringify([
  {
    ifindex: 2,
    ifname: 'va',
    addr_info: [
      { family: 'inet', local: '192.0.2.1', prefixlen: 24, scope: 'global', label: 'va' },
      { family: 'inet6', local: 'fe80::1', prefixlen: 64, scope: 'link' },
    ],
  },
]);

t.test('single default route', async (t) => {
  t.strictSame(pickDefaultRoute('[{"dst":"default","gateway":"192.0.2.2","dev":"va","flags":[]}]'), {
    dev: 'va',
    gateway: '192.0.2.2',
    prefsrc: undefined,
  });
});

t.test("the kernel's choice among several: unicast, link up, lowest metric", async (t) => {
  const routes = [
    { type: 'unreachable', dst: 'default', metric: 5, flags: [] },
    { dst: 'default', gateway: '10.9.0.1', dev: 'eth9', metric: 1, flags: ['linkdown'] },
    { dst: 'default', gateway: '10.2.0.1', dev: 'd0', metric: 10, flags: [] },
    { dst: 'default', gateway: '10.1.0.1', dev: 'd0', prefsrc: '10.1.0.6', metric: 50, flags: [] },
  ];
  t.strictSame(pickDefaultRoute(JSON.stringify(routes)), { dev: 'd0', gateway: '10.2.0.1', prefsrc: undefined });
  t.strictSame(pickDefaultRoute(JSON.stringify(routes.slice(3))), { dev: 'd0', gateway: '10.1.0.1', prefsrc: '10.1.0.6' });
  t.strictSame(pickDefaultRoute(JSON.stringify(routes.slice(1, 2))), { dev: 'eth9', gateway: '10.9.0.1', prefsrc: undefined }, 'a linkdown one when it is all there is');
  t.strictSame(pickDefaultRoute('[{"dst":"default","dev":"wg0","scope":"link","flags":[]}]'), { dev: 'wg0', gateway: undefined, prefsrc: undefined }, 'point-to-point');
});

t.test('no usable default route is a clear error', async (t) => {
  t.throws(() => pickDefaultRoute(''), { name: 'UplinkError', message: /no IPv4 default route in the main table: route-all needs an uplink/ });
  t.throws(() => pickDefaultRoute('[]'), UplinkError);
  t.throws(() => pickDefaultRoute('[{"type":"blackhole","dst":"default","flags":[]}]'), /only blackhole default routes/);
  t.throws(
    () => pickDefaultRoute('[{"dst":"default","flags":[],"nexthops":[{"gateway":"10.1.0.1","dev":"a"},{"gateway":"10.2.0.1","dev":"b"}]}]'),
    /multipath \(10\.1\.0\.1 dev a, 10\.2\.0\.1 dev b\)/,
  );
  t.throws(() => pickDefaultRoute('{oops'), /cannot parse/);
});

t.test('source address: the one on the gateway subnet, else the primary', async (t) => {
  const addrs = JSON.stringify([
    {
      ifname: 'd0',
      addr_info: [
        { family: 'inet', local: '10.1.0.5', prefixlen: 24, scope: 'global' },
        { family: 'inet', local: '10.1.0.6', prefixlen: 24, scope: 'global', secondary: true },
        { family: 'inet', local: '10.2.0.5', prefixlen: 24, scope: 'global' },
        { family: 'inet', local: '127.0.0.9', prefixlen: 8, scope: 'host' },
      ],
    },
  ]);
  t.equal(pickSourceAddress(addrs, 'd0', '10.2.0.1'), '10.2.0.5', 'gateway in the second subnet');
  t.equal(pickSourceAddress(addrs, 'd0', '10.1.0.1'), '10.1.0.5', 'primary before secondary');
  t.equal(pickSourceAddress(addrs, 'd0', '172.16.0.1'), '10.1.0.5', 'onlink gateway outside every subnet: primary');
  t.equal(pickSourceAddress(addrs, 'd0'), '10.1.0.5', 'no gateway: primary');
  t.equal(pickSourceAddress(addrVa, 'va', '192.0.2.2'), '192.0.2.1');
  t.throws(() => pickSourceAddress('[{"ifname":"d0","addr_info":[]}]', 'd0'), /uplink d0 has no IPv4 address/);
});

t.test('discoverUplink runs two read-only commands', async (t) => {
  const calls: string[] = [];
  const fake: IpExecSync = (argv) => {
    calls.push(argv.join(' '));
    if (argv.includes('route')) return { stdout: '[{"dst":"default","gateway":"192.0.2.2","dev":"va","flags":[]}]\n', stderr: '' };
    return { stdout: addrVa, stderr: '' };
  };
  t.strictSame(discoverUplink(fake), { dev: 'va', gateway: '192.0.2.2', source: '192.0.2.1' });
  t.strictSame(calls, ['-j -4 route show table main default', '-j -4 addr show dev va']);

  calls.length = 0;
  const withSrc: IpExecSync = (argv) => {
    calls.push(argv.join(' '));
    return { stdout: '[{"dst":"default","gateway":"192.0.2.2","dev":"va","prefsrc":"192.0.2.9","flags":[]}]', stderr: '' };
  };
  t.strictSame(discoverUplink(withSrc), { dev: 'va', gateway: '192.0.2.2', source: '192.0.2.9' });
  t.equal(calls.length, 1, 'prefsrc: no address lookup');

  const none: IpExecSync = () => ({ stdout: '[]', stderr: '' });
  t.throws(() => discoverUplink(none), { name: 'UplinkError' });
});
