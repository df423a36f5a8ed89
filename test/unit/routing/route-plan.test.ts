// The route-all plan is data: exact steps per config, each with its undo.
import t from 'tap';
import {
  MAIN_RULE_PRIORITY,
  planPriorities,
  planRouteAll,
  renderPlan,
  renderUndo,
  RoutePlanError,
  type IpStep,
  type RoutePlanConfig,
  type Step,
} from '../../../src/routing/route-plan.js';
import type { Uplink } from '../../../src/routing/uplink.js';

const uplink: Uplink = { dev: 'eth0', gateway: '192.0.2.2', source: '192.0.2.1' };
const base: RoutePlanConfig = { tunName: 'tun0', table: 2022, priorityBase: 9000, excludes: [] };

const rule = (tail: string[]): IpStep => ({
  kind: 'ip',
  do: ['-4', 'rule', 'add', ...tail],
  undo: ['-4', 'rule', 'del', ...tail],
  desc: '',
});
const strip = (steps: Step[]) => steps.map((s) => ({ ...s, desc: '' }));

t.test('default config: table route, then bypass rules, then the catch-all last', async (t) => {
  const steps = planRouteAll(base, uplink);
  t.strictSame(strip(steps), [
    {
      kind: 'ip',
      do: ['-4', 'route', 'add', 'default', 'dev', 'tun0', 'table', '2022'],
      undo: ['-4', 'route', 'del', 'default', 'dev', 'tun0', 'table', '2022'],
      desc: '',
    },
    rule(['from', '192.0.2.1', 'lookup', 'main', 'priority', '9000']),
    rule(['from', '192.0.2.1', 'unreachable', 'priority', '9001']),
    rule(['to', '192.0.2.2/32', 'lookup', 'main', 'priority', '9002']),
    rule(['lookup', 'main', 'suppress_prefixlength', '0', 'priority', '9003']),
    rule(['lookup', '2022', 'priority', '9004']),
  ]);
  for (const s of steps) t.ok(s.desc.length > 10, `described: ${s.desc}`);
});

t.test('excludes, custom table and priority', async (t) => {
  const steps = planRouteAll({ ...base, tunName: 'tsg1', table: 7777, priorityBase: 100, excludes: ['10.0.0.0/8', '198.51.100.7', '10.0.0.0/8', '172.16.0.0/12'] }, uplink);
  t.strictSame(
    strip(steps),
    [
      {
        kind: 'ip',
        do: ['-4', 'route', 'add', 'default', 'dev', 'tsg1', 'table', '7777'],
        undo: ['-4', 'route', 'del', 'default', 'dev', 'tsg1', 'table', '7777'],
        desc: '',
      },
      rule(['from', '192.0.2.1', 'lookup', 'main', 'priority', '100']),
      rule(['from', '192.0.2.1', 'unreachable', 'priority', '101']),
      rule(['to', '192.0.2.2/32', 'lookup', 'main', 'priority', '102']),
      rule(['to', '10.0.0.0/8', 'lookup', 'main', 'priority', '103']),
      rule(['to', '198.51.100.7/32', 'lookup', 'main', 'priority', '104']),
      rule(['to', '172.16.0.0/12', 'lookup', 'main', 'priority', '105']),
      rule(['lookup', 'main', 'suppress_prefixlength', '0', 'priority', '106']),
      rule(['lookup', '7777', 'priority', '107']),
    ],
    'duplicates dropped, bare address becomes /32',
  );
  t.strictSame(planPriorities(steps), [100, 101, 102, 103, 104, 105, 106, 107]);
});

t.test('point-to-point uplink (no gateway) and keepGatewayDirect=false: the gateway slot stays empty', async (t) => {
  const p2p = planRouteAll(base, { dev: 'ppp0', source: '100.64.3.4' });
  t.strictSame(planPriorities(p2p), [9000, 9001, 9003, 9004], 'the catch-all where it is with a gateway, so an uplink change never moves it');
  t.notOk(p2p.some((s) => s.kind === 'ip' && s.do.includes('192.0.2.2/32')));
  const noGw = planRouteAll({ ...base, keepGatewayDirect: false }, uplink);
  t.strictSame(planPriorities(noGw), [9000, 9001, 9003, 9004]);
  t.notOk(noGw.some((s) => s.kind === 'ip' && s.do.includes('192.0.2.2/32')));
});

t.test('no IPv4 uplink: no bypass rules, everything into the TUN, the same priorities', async (t) => {
  t.strictSame(strip(planRouteAll({ ...base, excludes: ['203.0.113.0/24'] }, null)).slice(1), [
    rule(['to', '203.0.113.0/24', 'lookup', 'main', 'priority', '9003']),
    rule(['lookup', 'main', 'suppress_prefixlength', '0', 'priority', '9004']),
    rule(['lookup', '2022', 'priority', '9005']),
  ]);
});

t.test('former uplink addresses still on the host keep their bypass at the same priority', async (t) => {
  const steps = planRouteAll(base, { dev: 'eth1', gateway: '198.51.100.1', source: '198.51.100.7' }, null, { sources4: ['192.0.2.1', '198.51.100.7'] });
  t.strictSame(
    strip(steps).slice(1, 6),
    [
      rule(['from', '198.51.100.7', 'lookup', 'main', 'priority', '9000']),
      rule(['from', '192.0.2.1', 'lookup', 'main', 'priority', '9000']),
      rule(['from', '198.51.100.7', 'unreachable', 'priority', '9001']),
      rule(['from', '192.0.2.1', 'unreachable', 'priority', '9001']),
      rule(['to', '198.51.100.1/32', 'lookup', 'main', 'priority', '9002']),
    ],
    'the current source first, each once, every lookup before every unreachable',
  );
  t.match(steps[2].desc, /former uplink address 192\.0\.2\.1/);
  t.strictSame(
    strip(planRouteAll(base, null, null, { sources4: ['192.0.2.1'] })).slice(1, 3),
    [rule(['from', '192.0.2.1', 'lookup', 'main', 'priority', '9000']), rule(['from', '192.0.2.1', 'unreachable', 'priority', '9001'])],
    'kept with no uplink at all',
  );
});

t.test('rp_filter as a sysctl step, first, when asked for', async (t) => {
  const steps = planRouteAll({ ...base, tunRpFilter: 2 }, uplink);
  t.strictSame(strip(steps)[0], { kind: 'sysctl', key: 'net.ipv4.conf.tun0.rp_filter', value: '2', desc: '' });
  t.equal(planRouteAll(base, uplink).filter((s) => s.kind === 'sysctl').length, 0, 'left alone by default');
});

t.test('every do has the matching undo, and priorities are ours alone', async (t) => {
  const configs: RoutePlanConfig[] = [
    base,
    { ...base, excludes: ['203.0.113.0/24'] },
    { ...base, table: 100, priorityBase: 32000, excludes: ['0.0.0.0/1'] },
    { ...base, tunRpFilter: 1, keepGatewayDirect: false },
  ];
  for (const cfg of configs) {
    const steps = planRouteAll(cfg, uplink);
    for (const s of steps) {
      if (s.kind !== 'ip') continue;
      const verb = s.do.indexOf('add');
      t.ok(verb === 2, `verb position: ${s.do.join(' ')}`);
      t.strictSame(s.undo, [...s.do.slice(0, verb), 'del', ...s.do.slice(verb + 1)], `undo of ${s.do.join(' ')}`);
    }
    const prios = planPriorities(steps).filter((p) => p !== cfg.priorityBase + 2);
    t.strictSame(
      prios,
      prios.map((_, i) => cfg.priorityBase + (i < 2 ? i : i + 1)),
      'consecutive from the base, the gateway slot reserved',
    );
    t.ok(
      prios.every((p) => p > 0 && p < MAIN_RULE_PRIORITY),
      'between local (0) and main (32766)',
    );
    const last = steps[steps.length - 1] as IpStep;
    t.strictSame(last.do.slice(-4), ['lookup', String(cfg.table), 'priority', String(prios[prios.length - 1])], 'steering rule last');
    const route = steps.findIndex((s) => s.kind === 'ip' && s.do[1] === 'route');
    const firstRule = steps.findIndex((s) => s.kind === 'ip' && s.do[1] === 'rule');
    t.ok(route < firstRule, 'table filled before any rule points at it');
  }
});

t.test('pure: same input, same output; config untouched', async (t) => {
  const cfg = { ...base, excludes: ['10.0.0.0/8'] };
  const frozen = JSON.stringify(cfg);
  t.strictSame(planRouteAll(cfg, uplink), planRouteAll(cfg, uplink));
  t.equal(JSON.stringify(cfg), frozen);
});

t.test('configs it cannot honour are refused with the reason', async (t) => {
  const bad: [Partial<RoutePlanConfig>, Uplink, RegExp][] = [
    [{ excludes: ['2001:db8::/32'] }, uplink, /IPv6.*IPv4 only/],
    [{ excludes: ['10.0.0.1/8'] }, uplink, /not a CIDR.*no host bits/],
    [{ excludes: ['banana'] }, uplink, /"banana" is not a CIDR/],
    [{ table: 254 }, uplink, /table 254 is not usable/],
    [{ table: 0 }, uplink, /table 0 is not usable/],
    [{ tunName: 'eth0' }, uplink, /already goes through eth0/],
    [{ tunName: 'a b' }, uplink, /not a valid interface name/],
    [{ priorityBase: 32762 }, uplink, /reach main's 32766/],
    [{ priorityBase: 0 }, uplink, /at least 1/],
    [{}, { ...uplink, source: '2001:db8::1' }, /uplink source.*not an IPv4/],
  ];
  for (const [over, up, re] of bad) {
    t.throws(() => planRouteAll({ ...base, ...over }, up), re, JSON.stringify(over));
    try {
      planRouteAll({ ...base, ...over }, up);
    } catch (e) {
      t.type(e, RoutePlanError);
    }
  }
  t.doesNotThrow(() => planRouteAll({ ...base, priorityBase: 32761 }, uplink), 'the last free slot is 32765');
});

t.test('dry-run rendering', async (t) => {
  const steps = planRouteAll({ ...base, excludes: ['10.0.0.0/8'], tunRpFilter: 2 }, uplink);
  t.strictSame(renderPlan(steps, { comments: false }), [
    'sysctl -w net.ipv4.conf.tun0.rp_filter=2',
    'ip -4 route add default dev tun0 table 2022',
    'ip -4 rule add from 192.0.2.1 lookup main priority 9000',
    'ip -4 rule add from 192.0.2.1 unreachable priority 9001',
    'ip -4 rule add to 192.0.2.2/32 lookup main priority 9002',
    'ip -4 rule add to 10.0.0.0/8 lookup main priority 9003',
    'ip -4 rule add lookup main suppress_prefixlength 0 priority 9004',
    'ip -4 rule add lookup 2022 priority 9005',
  ]);
  const commented = renderPlan(steps);
  t.equal(commented.length, steps.length * 2);
  t.match(commented[0], /^# reverse-path filter/);
  t.strictSame(renderUndo(steps.map((s) => (s.kind === 'sysctl' ? { ...s, old: '1' } : s))), [
    'ip -4 rule del lookup 2022 priority 9005',
    'ip -4 rule del lookup main suppress_prefixlength 0 priority 9004',
    'ip -4 rule del to 10.0.0.0/8 lookup main priority 9003',
    'ip -4 rule del to 192.0.2.2/32 lookup main priority 9002',
    'ip -4 rule del from 192.0.2.1 unreachable priority 9001',
    'ip -4 rule del from 192.0.2.1 lookup main priority 9000',
    'ip -4 route del default dev tun0 table 2022',
    'sysctl -w net.ipv4.conf.tun0.rp_filter=1',
  ]);
});

t.test('sysctl keys: sysctl(8) spelling for dotted interface names', async (t) => {
  const { sysctlPath } = await import('../../../src/routing/ip-exec.js');
  const [s] = planRouteAll({ ...base, tunName: 'tun.7', tunRpFilter: 0 }, uplink);
  t.match(s, { kind: 'sysctl', key: 'net.ipv4.conf.tun/7.rp_filter' });
  t.equal(sysctlPath('net.ipv4.conf.tun/7.rp_filter'), '/proc/sys/net/ipv4/conf/tun.7/rp_filter');
  t.equal(sysctlPath('net.ipv4.conf.tun0.rp_filter'), '/proc/sys/net/ipv4/conf/tun0/rp_filter');
  for (const bad of ['net..x', 'net.ipv4/../x', '../etc', 'a b', 'net./x']) t.throws(() => sysctlPath(bad), /bad sysctl key/, bad);
});
