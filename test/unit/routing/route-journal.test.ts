// The journal in a temp dir: atomic writes, the lock, stale detection.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  currentNetns,
  JOURNAL_FILE,
  JournalCorruptError,
  JournalLockedError,
  ownerAlive,
  processStartTime,
  readJournal,
  RouteJournal,
  StaleJournalError,
  type JournalData,
  type JournalMeta,
} from '../../../src/routing/route-journal.js';
import type { IpStep } from '../../../src/routing/route-plan.js';

type Teardown = { teardown(fn: () => unknown): void };

const meta: JournalMeta = {
  mode: 'route-all',
  tunName: 'tun0',
  table: 2022,
  priorityBase: 9000,
  uplink: { dev: 'eth0', gateway: '192.0.2.2', source: '192.0.2.1' },
};
const step = (n: number): IpStep => ({
  kind: 'ip',
  do: ['-4', 'rule', 'add', 'lookup', 'main', 'priority', String(n)],
  undo: ['-4', 'rule', 'del', 'lookup', 'main', 'priority', String(n)],
  desc: `rule ${n}`,
});

function tempDir(t: Teardown): string {
  const d = mkdtempSync(join(tmpdir(), 'tsR-journal-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return join(d, 'state'); // not there yet: acquire makes it
}

/** The pid of a process that has come and gone (and been reaped). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  return r.pid!;
}

/** A live process that is not us, killed by its PID at teardown. */
function otherLivePid(t: Teardown): number {
  const c = spawn('sleep', ['60'], { stdio: 'ignore' });
  t.teardown(() => {
    if (c.exitCode === null) process.kill(c.pid!, 'SIGKILL');
  });
  return c.pid!;
}

/** Writes a journal as some other gateway would have left it. */
function plant(stateDir: string, over: Partial<JournalData>): void {
  mkdirSync(stateDir, { recursive: true });
  const now = new Date().toISOString();
  const data: JournalData = {
    version: 1,
    pid: process.pid,
    netns: currentNetns(),
    ...meta,
    createdAt: now,
    updatedAt: now,
    steps: [step(1), step(2)],
    applied: 2,
    ...over,
  };
  writeFileSync(join(stateDir, JOURNAL_FILE), JSON.stringify(data));
}

t.test('acquire writes who, where and what; record replaces atomically', async (t) => {
  const dir = tempDir(t);
  const j = RouteJournal.acquire(dir, meta);
  const first = readJournal(dir)!;
  t.equal(first.pid, process.pid);
  t.equal(first.pidStart, processStartTime(process.pid));
  t.equal(first.netns.inode, statSync('/proc/self/ns/net').ino, 'netns identity is the nsfs inode');
  t.equal(first.mode, 'route-all');
  t.equal(first.tunName, 'tun0');
  t.strictSame(first.uplink, meta.uplink);
  t.strictSame(first.steps, []);

  j.record([step(1)], 0);
  t.strictSame(readJournal(dir)!.steps, [step(1)], 'the step in flight is listed before it is applied');
  t.equal(readJournal(dir)!.applied, 0);
  j.record([step(1), step(2)]);
  t.equal(j.read()!.applied, 2);
  t.strictSame(readdirSync(dir), [JOURNAL_FILE], 'no temp files left behind');
  t.strictSame(j.data.steps, [step(1), step(2)]);

  j.clear();
  t.equal(readJournal(dir), null, 'clear removes it');
  j.clear();
  t.pass('clear twice is fine');
  RouteJournal.acquire(dir, meta).clear();
  t.pass('free again after clear');
});

t.test('a live owner keeps the state dir: clear refusal naming it', async (t) => {
  const dir = tempDir(t);
  const j = RouteJournal.acquire(dir, meta);
  t.throws(() => RouteJournal.acquire(dir, meta), JournalLockedError, 'same process twice');
  j.clear();

  const pid = otherLivePid(t);
  plant(dir, { pid, pidStart: processStartTime(pid) });
  try {
    RouteJournal.acquire(dir, meta);
    t.fail('should have been refused');
  } catch (e) {
    t.type(e, JournalLockedError);
    t.match(
      (e as Error).message,
      new RegExp(`state dir ${dir} is in use by tunsteer pid ${pid} \\(network namespace .*inode \\d+, since .*\\); stop that gateway first, or give this one its own --state-dir`),
    );
  }
  t.equal(readJournal(dir)!.pid, pid, "the owner's journal is untouched");
});

t.test('stale: dead owner with steps is reported, without steps taken over', async (t) => {
  const dir = tempDir(t);
  const dead = deadPid();
  t.notOk(ownerAlive({ pid: dead }), 'reaped pid is dead');
  plant(dir, { pid: dead, pidStart: '1' });
  try {
    RouteJournal.acquire(dir, meta);
    t.fail('should have been refused');
  } catch (e) {
    t.type(e, StaleJournalError);
    t.match((e as Error).message, `tunsteer pid ${dead}`);
    t.match((e as Error).message, 'died without restoring its routing (2 step(s)');
    t.match((e as Error).message, `tunsteer down --state-dir ${dir}`);
    t.equal((e as StaleJournalError).journal.steps.length, 2);
  }

  plant(dir, { pid: dead, steps: [] });
  const j = RouteJournal.acquire(dir, meta);
  t.equal(readJournal(dir)!.pid, process.pid, 'empty stale journal taken over');
  j.clear();
});

t.test('a reused pid is not the owner (start time differs)', async (t) => {
  const dir = tempDir(t);
  const pid = otherLivePid(t);
  t.ok(ownerAlive({ pid, pidStart: processStartTime(pid) }));
  t.notOk(ownerAlive({ pid, pidStart: '12345' }), 'same pid, other start: a different process');
  t.notOk(ownerAlive({ pid: 0 }));
  t.notOk(ownerAlive({ pid: -1 }));
  plant(dir, { pid, pidStart: '12345' });
  t.throws(() => RouteJournal.acquire(dir, meta), StaleJournalError);
});

t.test('two-phase use: name it, look, then begin', async (t) => {
  const dir = tempDir(t);
  const j = new RouteJournal(dir);
  t.equal(j.holder(), null, 'nobody holds a fresh dir');
  t.notOk(j.exists());
  t.throws(() => j.record([]), /not begun/);
  t.throws(() => j.data, /not begun/);
  j.clear();
  t.pass('clear before begin is a no-op');

  j.begin({ mode: 'route-all', tunName: 'tun0' });
  t.ok(j.exists());
  t.equal(j.holder(), process.pid, 'we hold it now');
  t.throws(() => j.begin({ mode: 'route-all', tunName: 'tun0' }), /begin\(\) twice/);
  j.record([step(1)]);
  t.equal(j.read()!.upAt, undefined);
  j.markUp();
  const after = j.read()!;
  t.type(after.upAt, 'string', 'markUp stamps upAt');
  t.strictSame(after.steps, [step(1)], 'and keeps the steps');
  t.equal(new RouteJournal(dir).holder(), process.pid, 'another handle sees the holder');
  j.clear();
  t.notOk(j.exists());

  const dead = deadPid();
  plant(dir, { pid: dead });
  const k = new RouteJournal(dir);
  t.equal(k.holder(), null, 'a dead owner holds nothing...');
  t.ok(k.exists(), '...but its journal is there to restore');
});

t.test('something that is not a journal is refused, not overwritten', async (t) => {
  const dir = tempDir(t);
  RouteJournal.acquire(dir, meta).clear();
  writeFileSync(join(dir, JOURNAL_FILE), '{"half": ');
  t.throws(() => readJournal(dir), JournalCorruptError);
  t.throws(() => RouteJournal.acquire(dir, meta), /is not valid JSON/);
  writeFileSync(join(dir, JOURNAL_FILE), '{"version": 99}');
  t.throws(() => readJournal(dir), /not a tunsteer routing journal/);
  t.equal(readFileSync(join(dir, JOURNAL_FILE), 'utf8'), '{"version": 99}');
});

t.test('currentNetns', async (t) => {
  const n = currentNetns('/nonexistent');
  t.equal(n.inode, statSync('/proc/self/ns/net').ino);
  t.equal(n.dev, statSync('/proc/self/ns/net').dev);
  t.equal(n.name, undefined, 'no /run/netns entry: no name');
});
