// Restore from a real journal file with a fake executor: reverse order,
// idempotent, refuses the wrong namespace and a live owner.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planRouteAll } from '../../../src/routing/route-plan.js';
import { applySteps } from '../../../src/routing/route-runner.js';
import { journalPath, processStartTime, readJournal, RouteJournal } from '../../../src/routing/route-journal.js';
import { restoreFromJournal, RestoreFailedError, RestoreRefusedError } from '../../../src/routing/restore.js';
import { FakeKernel } from './fixtures/fake-kernel.js';

type Teardown = { teardown(fn: () => unknown): void };
const uplink = { dev: 'eth0', gateway: '192.0.2.2', source: '192.0.2.1' };
const RPF = 'net.ipv4.conf.tun0.rp_filter';
const steps = planRouteAll({ tunName: 'tun0', table: 2022, priorityBase: 9000, excludes: ['10.0.0.0/8'], tunRpFilter: 2 }, uplink);

function stateDir(t: Teardown): string {
  const d = mkdtempSync(join(tmpdir(), 'tsR-restore-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Applies the plan into a fake kernel with a real journal in dir (owned by this process). */
function applied(dir: string): FakeKernel {
  const k = new FakeKernel();
  k.sysctls.set(RPF, '1');
  const j = RouteJournal.acquire(dir, { mode: 'route-all', tunName: 'tun0', table: 2022, priorityBase: 9000, uplink });
  applySteps(steps, { journal: j, exec: k.exec, sysctl: k.sysctl });
  k.log.length = 0;
  return k;
}

const ipDo = steps.flatMap((s) => (s.kind === 'ip' ? [`ip ${s.undo.join(' ')}`] : []));

t.test('undoes in reverse order, removes the journal; again is a no-op', async (t) => {
  const dir = stateDir(t);
  const k = applied(dir);
  const r = restoreFromJournal(dir, { exec: k.exec, sysctl: k.sysctl });
  t.strictSame(r, { found: true, undone: steps.length, alreadyGone: 0, pid: process.pid });
  t.strictSame(k.log, [...[...ipDo].reverse(), `write ${RPF}=1`], 'last applied, first undone');
  t.equal(k.objects.size, 0);
  t.equal(k.sysctls.get(RPF), '1');
  t.notOk(existsSync(journalPath(dir)), 'journal removed');

  k.log.length = 0;
  t.strictSame(restoreFromJournal(dir, { exec: k.exec, sysctl: k.sysctl }), { found: false, undone: 0, alreadyGone: 0 });
  t.strictSame(k.log, [], 'second restore runs nothing');
});

t.test('things already gone count as done (restore after a partial restore)', async (t) => {
  const dir = stateDir(t);
  const k = applied(dir);
  // as if an earlier restore died half way: the TUN went, and with it its route and sysctl
  k.objects.delete('-4 route default dev tun0 table 2022');
  k.objects.delete('-4 rule lookup 2022 priority 9005');
  k.sysctls.delete(RPF);
  const lines: string[] = [];
  const r = restoreFromJournal(dir, { exec: k.exec, sysctl: k.sysctl, log: (l) => lines.push(l) });
  t.strictSame(r, { found: true, undone: 5, alreadyGone: 3, pid: process.pid });
  t.equal(k.objects.size, 0);
  t.equal(lines.filter((l) => l.startsWith('already gone')).length, 3);
  t.notOk(existsSync(journalPath(dir)));
});

t.test('a step journaled in flight but never applied is tolerated', async (t) => {
  const dir = stateDir(t);
  const k = new FakeKernel();
  const j = RouteJournal.acquire(dir, { mode: 'route-all', tunName: 'tun0', table: 2022, priorityBase: 9000 });
  const ipSteps = steps.filter((s) => s.kind === 'ip');
  k.exec((ipSteps[0] as { do: string[] }).do);
  j.record(ipSteps.slice(0, 2), 1); // killed between journal and `ip rule add`
  k.log.length = 0;
  t.strictSame(restoreFromJournal(dir, { exec: k.exec, sysctl: k.sysctl }), { found: true, undone: 1, alreadyGone: 1, pid: process.pid });
  t.equal(k.objects.size, 0);
});

t.test('a hard failure keeps just that step journaled for another try', async (t) => {
  const dir = stateDir(t);
  const k = applied(dir);
  k.failOn = (a) => (a.includes('from') && a.includes('lookup') && a.includes('del') ? 'RTNETLINK answers: Operation not permitted\n' : undefined);
  try {
    restoreFromJournal(dir, { exec: k.exec, sysctl: k.sysctl });
    t.fail('should throw');
  } catch (e) {
    t.type(e, RestoreFailedError);
    t.match((e as Error).message, 'could not undo 1 routing change(s)');
    t.match((e as Error).message, '`ip -4 rule del from 192.0.2.1 lookup main priority 9000`: RTNETLINK answers: Operation not permitted');
  }
  t.equal(k.objects.size, 1, 'the rest was undone anyway');
  t.strictSame(
    readJournal(dir)!.steps.map((s) => s.desc),
    [steps[2].desc],
  );
  k.failOn = undefined;
  t.strictSame(restoreFromJournal(dir, { exec: k.exec, sysctl: k.sysctl }), { found: true, undone: 1, alreadyGone: 0, pid: process.pid });
  t.equal(k.objects.size, 0);
});

t.test('another network namespace is refused, nothing touched', async (t) => {
  const dir = stateDir(t);
  const k = applied(dir);
  const before = readFileSync(journalPath(dir), 'utf8');
  const j = JSON.parse(before);
  j.netns.name = 'tsR-elsewhere';
  writeFileSync(journalPath(dir), JSON.stringify(j));
  try {
    restoreFromJournal(dir, { exec: k.exec, sysctl: k.sysctl, netns: { inode: 4026532999, dev: j.netns.dev } });
    t.fail('should refuse');
  } catch (e) {
    t.type(e, RestoreRefusedError);
    t.equal((e as RestoreRefusedError).reason, 'netns-mismatch');
    t.match((e as Error).message, `was written in network namespace "tsR-elsewhere" inode ${j.netns.inode}`);
    t.match((e as Error).message, 'this process runs in network namespace inode 4026532999');
    t.match((e as Error).message, `ip netns exec tsR-elsewhere tunsteer down --state-dir ${dir}`);
  }
  t.strictSame(k.log, []);
  t.ok(existsSync(journalPath(dir)));
});

t.test('a live owner other than us: refused, unless forced; ownOnly leaves it alone', async (t) => {
  const dir = stateDir(t);
  const k = applied(dir);
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  t.teardown(() => {
    if (sleeper.exitCode === null) process.kill(sleeper.pid!, 'SIGKILL');
  });
  const j = JSON.parse(readFileSync(journalPath(dir), 'utf8'));
  writeFileSync(journalPath(dir), JSON.stringify({ ...j, pid: sleeper.pid, pidStart: processStartTime(sleeper.pid!) }));

  t.strictSame(restoreFromJournal(dir, { exec: k.exec, sysctl: k.sysctl, ownOnly: true }), { found: false, undone: 0, alreadyGone: 0 });
  t.throws(() => restoreFromJournal(dir, { exec: k.exec, sysctl: k.sysctl }), {
    name: 'RestoreRefusedError',
    reason: 'owner-alive',
    message: new RegExp(`tunsteer pid ${sleeper.pid} still runs`),
  });
  t.strictSame(k.log, []);
  t.equal(restoreFromJournal(dir, { exec: k.exec, sysctl: k.sysctl, force: true }).undone, steps.length);
  t.equal(k.objects.size, 0);
});
