// The runner against a fake kernel: journal before every step, rollback in
// reverse on failure, an error that names the command and what ip said.
import t from 'tap';
import { planRouteAll, type Step } from '../../../src/routing/route-plan.js';
import { applySteps, findConflicts, preflight, RouteApplyError } from '../../../src/routing/route-runner.js';
import { IpCommandError } from '../../../src/routing/ip-exec.js';
import { FakeKernel } from './fixtures/fake-kernel.js';

const uplink = { dev: 'eth0', gateway: '192.0.2.2', source: '192.0.2.1' };
const plan = (over = {}) => planRouteAll({ tunName: 'tun0', table: 2022, priorityBase: 9000, excludes: ['10.0.0.0/8'], tunRpFilter: 2, ...over }, uplink);
const RPF = 'net.ipv4.conf.tun0.rp_filter';

function kernel(): FakeKernel {
  const k = new FakeKernel();
  k.sysctls.set(RPF, '1');
  return k;
}

t.test('applies in order, each step journaled before it runs', async (t) => {
  const k = kernel();
  const steps = plan();
  const rec = k.recorder();
  const applied = applySteps(steps, { journal: rec, exec: k.exec, sysctl: k.sysctl });
  t.equal(applied.length, steps.length);
  t.strictSame(applied[0], { ...steps[0], old: '1' }, 'the sysctl remembers the value it replaced');
  t.equal(k.sysctls.get(RPF), '2');
  t.equal(k.objects.size, steps.length - 1);

  // Before each change, the journal already lists it (as in flight).
  const changes = k.log.map((l, i) => [l, i] as const).filter(([l]) => l.startsWith('ip ') || l.startsWith('write '));
  t.equal(changes.length, steps.length);
  changes.forEach(([line, at], n) => {
    const lastJournal = k.log
      .slice(0, at)
      .reverse()
      .find((l) => l.startsWith('journal '));
    t.equal(lastJournal, `journal ${n + 1} applied ${n}`, `journal before: ${line}`);
  });
  t.strictSame(rec.records[rec.records.length - 1], { steps: applied, applied: steps.length }, 'final record: all applied');
  t.strictSame(
    k.log.filter((l) => l.startsWith('ip ')),
    steps.filter((s) => s.kind === 'ip').map((s) => `ip ${(s as { do: string[] }).do.join(' ')}`),
    'ip commands in plan order',
  );
});

t.test('a failure undoes what was applied, newest first, and names the command', async (t) => {
  const k = kernel();
  const steps = plan();
  k.failOn = (a) => (a.includes('suppress_prefixlength') && a.includes('add') ? 'Error: argument "suppress_prefixlength" is wrong: bad\n' : undefined);
  const rec = k.recorder();
  try {
    applySteps(steps, { journal: rec, exec: k.exec, sysctl: k.sysctl });
    t.fail('should throw');
  } catch (e) {
    t.type(e, RouteApplyError);
    const err = e as RouteApplyError;
    t.equal(err.command, 'ip -4 rule add lookup main suppress_prefixlength 0 priority 9004');
    t.match(err.message, '`ip -4 rule add lookup main suppress_prefixlength 0 priority 9004`');
    t.match(err.message, 'Error: argument "suppress_prefixlength" is wrong');
    t.match(err.message, 'everything applied before it was undone');
    t.strictSame(err.rollbackFailures, []);
  }
  t.equal(k.objects.size, 0, 'nothing left in the kernel');
  t.equal(k.sysctls.get(RPF), '1', 'sysctl back to its old value');
  const failedAt = k.log.findIndex((l) => l.includes('suppress_prefixlength'));
  t.strictSame(
    k.log.slice(failedAt + 1).filter((l) => !l.startsWith('journal')),
    [
      'ip -4 rule del to 10.0.0.0/8 lookup main priority 9003',
      'ip -4 rule del to 192.0.2.2/32 lookup main priority 9002',
      'ip -4 rule del from 192.0.2.1 unreachable priority 9001',
      'ip -4 rule del from 192.0.2.1 lookup main priority 9000',
      'ip -4 route del default dev tun0 table 2022',
      `write ${RPF}=1`,
    ],
    'rollback in reverse order',
  );
  t.strictSame(rec.records[rec.records.length - 1], { steps: [], applied: 0 }, 'journal says nothing is in place');
});

t.test("the failed step itself is never undone (its object may be someone else's)", async (t) => {
  const k = kernel();
  k.objects.add('-4 route default dev tun0 table 2022'); // another tool's route
  const rec = k.recorder();
  t.throws(() => applySteps(plan({ tunRpFilter: undefined }), { journal: rec, exec: k.exec, sysctl: k.sysctl }), /File exists/);
  t.ok(k.objects.has('-4 route default dev tun0 table 2022'), 'their route survives');
  t.notOk(
    k.log.some((l) => l.includes(' del ')),
    'no delete issued',
  );
});

t.test('a rollback that fails too is reported and stays journaled', async (t) => {
  const k = kernel();
  const steps = plan({ tunRpFilter: undefined });
  k.failOn = (a) =>
    a.includes('2022') && a.includes('rule') && a.includes('add')
      ? 'RTNETLINK answers: Permission denied\n'
      : a.includes('from') && a.includes('lookup') && a.includes('del')
        ? 'RTNETLINK answers: Operation not permitted\n'
        : undefined;
  const rec = k.recorder();
  try {
    applySteps(steps, { journal: rec, exec: k.exec, sysctl: k.sysctl });
    t.fail('should throw');
  } catch (e) {
    const err = e as RouteApplyError;
    t.match(err.message, 'Permission denied');
    t.match(err.message, 'rollback left 1 change(s) in place: ip -4 rule del from 192.0.2.1 lookup main priority 9000: RTNETLINK answers: Operation not permitted');
    t.equal(err.rollbackFailures.length, 1);
  }
  const last = rec.records[rec.records.length - 1];
  t.equal(last.steps.length, 1);
  t.strictSame(last.steps[0], steps[1], 'the stuck rule is what the journal keeps');
  t.equal(k.objects.size, 1);
});

t.test('the journal can be passed as the second argument itself', async (t) => {
  const k = kernel();
  const rec = k.recorder();
  t.strictSame(applySteps([], rec), []);
  t.strictSame(rec.records, [{ steps: [], applied: 0 }]);
});

t.test('a sysctl that cannot be read stops before anything changes', async (t) => {
  const k = new FakeKernel(); // no rp_filter key: device missing
  const rec = k.recorder();
  t.throws(() => applySteps(plan(), { journal: rec, exec: k.exec, sysctl: k.sysctl }), /sysctl -w net\.ipv4\.conf\.tun0\.rp_filter=2.*ENOENT/);
  t.equal(k.objects.size, 0);
});

t.test('conflicts: our priorities taken, our table in use', async (t) => {
  const steps: Step[] = plan({ tunRpFilter: undefined });
  const rules = JSON.stringify([
    { priority: 0, src: 'all', table: 'local' },
    { priority: 9001, src: 'all', table: '100' },
    { priority: 32766, src: 'all', table: 'main' },
  ]);
  t.strictSame(findConflicts(steps, 2022, rules, '[]'), ['policy rule priority 9001 is taken (lookup 100)']);
  t.strictSame(findConflicts(steps, 2022, '[]', '[{"dst":"default","dev":"wg0"}]'), ['routing table 2022 is not empty (default dev wg0)']);
  t.strictSame(findConflicts(steps, 2022, rules.replace('9001', '8999'), ''), []);

  const k = kernel();
  const calls: string[] = [];
  const exec = (argv: readonly string[]) => {
    calls.push(argv.join(' '));
    if (argv.includes('route')) throw new IpCommandError(argv, 2, 'Error: ipv4: FIB table does not exist.\nDump terminated\n');
    return { stdout: rules.replace('9001', '8999'), stderr: '' };
  };
  preflight(steps, 2022, exec);
  t.strictSame(calls, ['-j -4 rule show', '-j -4 route show table 2022'], 'read-only commands');
  t.throws(() => preflight(steps, 2022, () => ({ stdout: rules, stderr: '' })), /routing state is in the way: policy rule priority 9001/);
  t.equal(k.log.length, 0);
});
