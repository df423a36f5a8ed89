// The IPv6 half of the route-all plan and IPv6 uplink discovery.
import t from 'tap';
import { planPriorities, planRouteAll, RoutePlanError, type IpStep, type RoutePlanConfig, type Step } from '../../../src/routing/route-plan.js';
import { discoverUplink6, pickSourceAddress6, type Uplink, type Uplink6 } from '../../../src/routing/uplink.js';
import { findConflicts } from '../../../src/routing/route-runner.js';
import type { IpExecSync } from '../../../src/routing/ip-exec.js';
import { FakeKernel } from './fixtures/fake-kernel.js';
import { applySteps, undoStep } from '../../../src/routing/route-runner.js';

const uplink: Uplink = { dev: 'eth0', gateway: '192.0.2.2', source: '192.0.2.1' };
const up6: Uplink6 = { dev: 'eth0', gateway: 'fe80::1', source: '2001:db8:1::1' };
const base: RoutePlanConfig = { tunName: 'tun0', table: 2022, priorityBase: 9000, excludes: [], route6: true };
const strip = (steps: Step[]) => steps.map((s) => ({ ...s, desc: '' }));
const rule6 = (tail: string[]): IpStep => ({ kind: 'ip', do: ['-6', 'rule', 'add', ...tail], undo: ['-6', 'rule', 'del', ...tail], desc: '' });
const table6: IpStep = {
  kind: 'ip',
  do: ['-6', 'route', 'add', 'default', 'dev', 'tun0', 'table', '2022'],
  undo: ['-6', 'route', 'del', 'default', 'dev', 'tun0', 'table', '2022'],
  desc: '',
};
const v6 = (steps: Step[]) => strip(steps).filter((s) => s.kind === 'ip' && s.do[0] === '-6');

t.test('IPv6 after IPv4, same layout: link-local next hop needs no rule', async (t) => {
  const steps = planRouteAll(base, uplink, up6);
  t.equal(
    steps.findIndex((s) => s.kind === 'ip' && s.do[0] === '-6'),
    6,
    'the six IPv4 steps first',
  );
  t.strictSame(v6(steps), [
    table6,
    rule6(['from', '2001:db8:1::1', 'lookup', 'main', 'priority', '9000']),
    rule6(['from', '2001:db8:1::1', 'unreachable', 'priority', '9001']),
    rule6(['lookup', 'main', 'suppress_prefixlength', '0', 'priority', '9003']),
    rule6(['lookup', '2022', 'priority', '9004']),
  ]);
  for (const s of steps) t.ok(s.desc.length > 10, s.desc);
  t.strictSame(planPriorities(steps, '-4'), [9000, 9001, 9002, 9003, 9004]);
  t.strictSame(planPriorities(steps, '-6'), [9000, 9001, 9003, 9004], 'the next-hop slot (9002) kept empty');
});

t.test('global next hop and IPv6 excludes (canonical text, duplicates dropped), IPv4 excludes stay IPv4', async (t) => {
  const steps = planRouteAll({ ...base, excludes: ['2001:DB8:AA::/48', '10.0.0.0/8', '2001:db8:aa::/48', '2001:db8:bb::7'] }, uplink, {
    dev: 'eth0',
    gateway: '2001:db8:1::fffe',
    source: '2001:db8:1::1',
  });
  t.strictSame(v6(steps), [
    table6,
    rule6(['from', '2001:db8:1::1', 'lookup', 'main', 'priority', '9000']),
    rule6(['from', '2001:db8:1::1', 'unreachable', 'priority', '9001']),
    rule6(['to', '2001:db8:1::fffe/128', 'lookup', 'main', 'priority', '9002']),
    rule6(['to', '2001:db8:aa::/48', 'lookup', 'main', 'priority', '9003']),
    rule6(['to', '2001:db8:bb::7/128', 'lookup', 'main', 'priority', '9004']),
    rule6(['lookup', 'main', 'suppress_prefixlength', '0', 'priority', '9005']),
    rule6(['lookup', '2022', 'priority', '9006']),
  ]);
  t.ok(steps.some((s) => s.kind === 'ip' && s.do[0] === '-4' && s.do.includes('10.0.0.0/8')));
  t.notOk(
    steps.some((s) => s.kind === 'ip' && s.do[0] === '-4' && s.do.some((a) => a.includes(':'))),
    'no IPv6 in IPv4 rules',
  );
});

t.test('no IPv6 uplink: ::/0 still into the TUN, no bypass rules', async (t) => {
  t.strictSame(v6(planRouteAll({ ...base, excludes: ['2001:db8:aa::/48'] }, uplink, null)), [
    table6,
    rule6(['to', '2001:db8:aa::/48', 'lookup', 'main', 'priority', '9003']),
    rule6(['lookup', 'main', 'suppress_prefixlength', '0', 'priority', '9004']),
    rule6(['lookup', '2022', 'priority', '9005']),
  ]);
});

t.test('without route6 the plan is IPv4 only and IPv6 excludes are refused', async (t) => {
  const steps = planRouteAll({ ...base, route6: false }, uplink, up6);
  t.notOk(steps.some((s) => s.kind === 'ip' && s.do[0] === '-6'));
  t.throws(() => planRouteAll({ ...base, route6: false, excludes: ['2001:db8::/32'] }, uplink), RoutePlanError);
});

t.test('bad IPv6 input is refused with a reason', async (t) => {
  t.throws(() => planRouteAll({ ...base, excludes: ['2001:db8::1/32'] }, uplink), /not a CIDR .*no host bits/);
  t.throws(() => planRouteAll(base, uplink, { ...up6, source: '192.0.2.1' }), /IPv6 uplink source/);
  t.throws(() => planRouteAll(base, uplink, { ...up6, dev: 'tun0' }), /IPv6 default route already goes through tun0/);
  t.throws(() => planRouteAll({ ...base, priorityBase: 32761, excludes: ['2001:db8::/32', '2001:db9::/32'] }, uplink, up6), /IPv6 rule priorities 32761..32767/);
});

t.test('every IPv6 step applies and undoes on a kernel stand-in, leaving nothing', async (t) => {
  const k = new FakeKernel();
  const steps = planRouteAll({ ...base, excludes: ['2001:db8:aa::/48', '203.0.113.0/24'] }, uplink, up6);
  const done = applySteps(steps, { journal: k.recorder(), exec: k.exec, sysctl: k.sysctl });
  t.equal(k.objects.size, steps.length);
  for (const s of [...done].reverse()) t.equal(undoStep(s, k.exec, k.sysctl), 'undone');
  t.equal(k.objects.size, 0);
});

t.test('conflicts are checked per family', async (t) => {
  const steps = planRouteAll(base, uplink, up6);
  const rules = '[{"priority":9003,"table":"100"}]';
  t.strictSame(findConflicts(steps, 2022, rules, '[]', '-6'), ['IPv6 policy rule priority 9003 is taken (lookup 100)']);
  t.strictSame(findConflicts(steps, 2022, '[{"priority":9002,"table":"100"}]', '[]', '-6'), [], '9002 is only an IPv4 priority here (no global IPv6 next hop)');
  t.strictSame(findConflicts(steps, 2022, '[]', '[{"dst":"default","dev":"wg0"}]', '-6'), ['IPv6 routing table 2022 is not empty (default dev wg0)']);
});

const addr6 = JSON.stringify([
  {
    ifname: 'eth0',
    addr_info: [
      { family: 'inet', local: '192.0.2.1', prefixlen: 24, scope: 'global' },
      { family: 'inet6', local: '2001:db8:1::99', prefixlen: 64, scope: 'global', temporary: true, dynamic: true },
      { family: 'inet6', local: 'fd12:3456::1', prefixlen: 64, scope: 'global' },
      { family: 'inet6', local: '2001:db8:1::5', prefixlen: 64, scope: 'global', tentative: true },
      { family: 'inet6', local: '2001:db8:1::6', prefixlen: 64, scope: 'global', deprecated: true },
      { family: 'inet6', local: '2001:db8:1::1', prefixlen: 64, scope: 'global', mngtmpaddr: true },
      { family: 'inet6', local: 'fe80::1', prefixlen: 64, scope: 'link' },
    ],
  },
]);

t.test('IPv6 source: global, settled, fresh, stable before temporary, global unicast before ULA', async (t) => {
  t.equal(pickSourceAddress6(addr6, 'eth0'), '2001:db8:1::1');
  const onlyUla = JSON.stringify([
    {
      addr_info: [
        { family: 'inet6', local: 'fd12:3456::1', scope: 'global' },
        { family: 'inet6', local: 'fe80::1', scope: 'link' },
      ],
    },
  ]);
  t.equal(pickSourceAddress6(onlyUla, 'eth0'), 'fd12:3456::1');
  t.equal(pickSourceAddress6(JSON.stringify([{ addr_info: [{ family: 'inet6', local: 'fe80::1', scope: 'link' }] }]), 'eth0'), undefined, 'link-local only');
  const onlyDeprecated = JSON.stringify([{ addr_info: [{ family: 'inet6', local: '2001:db8:1::6', scope: 'global', deprecated: true }] }]);
  t.equal(pickSourceAddress6(onlyDeprecated, 'eth0'), '2001:db8:1::6', 'deprecated beats nothing');
});

t.test('discoverUplink6: default route (RA style), prefsrc, none, unreachable only, multipath', async (t) => {
  const calls: string[] = [];
  const ra = '[{"dst":"default","gateway":"fe80::1","dev":"eth0","protocol":"ra","metric":1024,"flags":[],"pref":"medium"}]';
  const ex: IpExecSync = (argv) => {
    calls.push(argv.join(' '));
    return { stdout: argv.includes('route') ? ra : addr6, stderr: '' };
  };
  t.strictSame(discoverUplink6(ex), { dev: 'eth0', gateway: 'fe80::1', source: '2001:db8:1::1' });
  t.strictSame(calls, ['-j -6 route show table main default', '-j -6 addr show dev eth0']);
  const withSrc: IpExecSync = () => ({ stdout: '[{"dst":"default","dev":"wg0","prefsrc":"2001:db8:9::1","flags":[]}]', stderr: '' });
  t.strictSame(discoverUplink6(withSrc), { dev: 'wg0', source: '2001:db8:9::1' });
  t.equal(
    discoverUplink6(() => ({ stdout: '[]', stderr: '' })),
    null,
    'no IPv6 default route',
  );
  t.equal(
    discoverUplink6(() => ({ stdout: '[{"type":"unreachable","dst":"default","dev":"lo"}]', stderr: '' })),
    null,
    'only unreachable',
  );
  const noGlobal: IpExecSync = (argv) => ({ stdout: argv.includes('route') ? ra : '[{"addr_info":[{"family":"inet6","local":"fe80::2","scope":"link"}]}]', stderr: '' });
  t.equal(discoverUplink6(noGlobal), null, 'a default route but no global address to bind');
  const multi: IpExecSync = () => ({ stdout: '[{"dst":"default","nexthops":[{"gateway":"fe80::1","dev":"a"},{"gateway":"fe80::2","dev":"b"}]}]', stderr: '' });
  t.throws(() => discoverUplink6(multi), /IPv6 default route is multipath/);
});

t.test('a TUN without IPv6 (MTU below 1280, disable_ipv6): table T prohibits, no bypass rules, nothing leaks', async (t) => {
  t.strictSame(v6(planRouteAll({ ...base, tunIpv6: false, excludes: ['2001:db8:aa::/48'] }, uplink, up6)), [
    { kind: 'ip', do: ['-6', 'route', 'add', 'prohibit', 'default', 'table', '2022'], undo: ['-6', 'route', 'del', 'prohibit', 'default', 'table', '2022'], desc: '' },
    rule6(['to', '2001:db8:aa::/48', 'lookup', 'main', 'priority', '9003']),
    rule6(['lookup', 'main', 'suppress_prefixlength', '0', 'priority', '9004']),
    rule6(['lookup', '2022', 'priority', '9005']),
  ]);
});
