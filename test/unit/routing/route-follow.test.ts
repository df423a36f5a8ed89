// Following the uplink: the difference between the journaled plan and the new one, applied new-first.
import t from 'tap';
import { planRouteAll, type RoutePlanConfig } from '../../../src/routing/route-plan.js';
import { applyPlanChange, planDiff, planOrder } from '../../../src/routing/route-follow.js';
import { applySteps } from '../../../src/routing/route-runner.js';
import type { JournaledStep } from '../../../src/routing/route-journal.js';
import { FakeKernel } from './fixtures/fake-kernel.js';
import { journalData } from './fixtures/journal-data.js';

const cfg: RoutePlanConfig = { tunName: 'tun0', table: 2022, priorityBase: 9000, excludes: ['203.0.113.99/32'], route6: true };
const home = { dev: 'eth0', gateway: '192.0.2.2', source: '192.0.2.1' };
const dock = { dev: 'eth1', gateway: '198.51.100.2', source: '198.51.100.1' };
const v6 = { dev: 'eth0', gateway: 'fe80::1', source: '2001:db8:1::1' };

/** A step as the fake kernel keys its objects: the argv without the verb. */
const keyOf = (s: JournaledStep) => {
  const d = (s as { do: string[] }).do;
  return [d[0], d[1], ...d.slice(3)].join(' ');
};

/** A journal stand-in over the fake kernel's recorder. */
function journalOn(k: FakeKernel, start: JournaledStep[]) {
  const rec = k.recorder();
  let steps = start;
  return {
    rec,
    get data() {
      return journalData(steps);
    },
    record(s: readonly JournaledStep[], applied?: number) {
      steps = [...s];
      rec.record(s, applied ?? s.length);
    },
  };
}

function upWith(k: FakeKernel, plan = planRouteAll(cfg, home, null)) {
  const j = journalOn(k, []);
  applySteps(plan, { journal: j, exec: k.exec, sysctl: k.sysctl });
  k.log.length = 0;
  return j;
}

t.test('a new default route elsewhere: new bypass rules in before the old ones go; the catch-all never moves', async (t) => {
  const k = new FakeKernel();
  const j = upWith(k);
  const next = planRouteAll(cfg, dock, null, { sources4: ['192.0.2.1'] });
  const r = applyPlanChange(j, next, k.exec);
  const cmds = k.log.filter((l) => l.startsWith('ip '));
  t.strictSame(
    cmds,
    [
      'ip -4 rule add from 198.51.100.1 lookup main priority 9000',
      'ip -4 rule add from 198.51.100.1 unreachable priority 9001',
      'ip -4 rule add to 198.51.100.2/32 lookup main priority 9002',
      'ip -4 rule del to 192.0.2.2/32 lookup main priority 9002',
    ],
    'the old address is still on the host: its from-rules stay',
  );
  t.equal(r.added.length, 3);
  t.notOk(
    cmds.some((c) => c.includes('lookup 2022') || c.includes('suppress')),
    'steering untouched',
  );
  // the journal lists, in plan order, exactly what is in place
  t.strictSame(new Set(j.data.steps.map(keyOf)), k.objects);
  t.strictSame(j.data.steps, planOrder(j.data.steps), 'in plan order: restore takes the catch-all out first');
  const last4 = j.data.steps.filter((s) => (s as { do: string[] }).do[0] === '-4').at(-1) as { do: string[] };
  t.strictSame(last4.do.slice(-3), ['2022', 'priority', '9005'], 'the IPv4 catch-all where it was');
});

t.test('each new step is journaled before it runs', async (t) => {
  const k = new FakeKernel();
  const j = upWith(k);
  applyPlanChange(j, planRouteAll(cfg, dock, null), k.exec);
  const adds = k.log.map((l, i) => [l, i] as const).filter(([l]) => l.startsWith('ip ') && l.includes(' add '));
  for (const [line, at] of adds) {
    const before = k.log
      .slice(0, at)
      .reverse()
      .find((l) => l.startsWith('journal '));
    t.ok(before, `journal written before ${line}`);
  }
});

t.test('the old address gone: its from-rules go too; the same uplink again: nothing to do', async (t) => {
  const k = new FakeKernel();
  const j = upWith(k);
  applyPlanChange(j, planRouteAll(cfg, { ...home, source: '192.0.2.5' }, null), k.exec);
  t.notOk(
    [...k.objects].some((o) => o.includes('192.0.2.1')),
    'DHCP took 192.0.2.1 away: no rule names it',
  );
  t.ok(k.objects.has('-4 rule from 192.0.2.5 unreachable priority 9001'));
  k.log.length = 0;
  const r = applyPlanChange(j, planRouteAll(cfg, { ...home, source: '192.0.2.5' }, null), k.exec);
  t.same(r, { added: [], removed: [] });
  t.same(
    k.log.filter((l) => l.startsWith('ip ')),
    [],
  );
});

t.test('no uplink, then back; IPv6 appears and goes', async (t) => {
  const k = new FakeKernel();
  const j = upWith(k, planRouteAll(cfg, home, null));
  applyPlanChange(j, planRouteAll(cfg, null, null, { sources4: ['192.0.2.1'] }), k.exec);
  t.notOk(k.objects.has('-4 rule to 192.0.2.2/32 lookup main priority 9002'), 'no uplink: no next hop rule');
  t.ok(k.objects.has('-4 rule from 192.0.2.1 lookup main priority 9000'), 'the address is still there: its sockets stay out of the TUN');
  applyPlanChange(j, planRouteAll(cfg, home, v6), k.exec);
  t.ok(k.objects.has('-6 rule from 2001:db8:1::1 lookup main priority 9000'));
  t.ok(k.objects.has('-4 rule to 192.0.2.2/32 lookup main priority 9002'));
  applyPlanChange(j, planRouteAll(cfg, home, null), k.exec);
  t.notOk(
    [...k.objects].some((o) => o.startsWith('-6 rule from')),
    'IPv6 gone (and its address): no IPv6 bypass',
  );
  t.equal(k.objects.size, planRouteAll(cfg, home, null).length, 'back to the plan at start');
});

t.test('an add that fails leaves the old path whole and says why', async (t) => {
  const k = new FakeKernel();
  const j = upWith(k);
  const before = new Set(k.objects);
  k.failOn = (a) => (a.includes('198.51.100.1') && a.includes('unreachable') ? 'RTNETLINK answers: Permission denied\n' : undefined);
  t.throws(() => applyPlanChange(j, planRouteAll(cfg, dock, null), k.exec), /Permission denied/);
  t.ok(
    [...before].every((o) => k.objects.has(o)),
    'nothing removed',
  );
  t.strictSame(new Set(j.data.steps.map(keyOf)), k.objects, 'the journal lists what is in place (the one that worked, too)');
});

t.test('planDiff compares by command', async (t) => {
  const a = planRouteAll(cfg, home, null);
  t.same(planDiff(a, planRouteAll(cfg, home, null)), { add: [], remove: [] });
  const d = planDiff(a, planRouteAll(cfg, null, null));
  t.equal(d.add.length, 0);
  t.equal(d.remove.length, 3, 'from, unreachable, next hop');
});
