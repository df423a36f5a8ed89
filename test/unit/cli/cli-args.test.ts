import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseCli, UsageError } from '../../../src/cli-args.js';

t.test('up: defaults and flags', async (t) => {
  const a = parseCli(['up', '--mode', 'route-all']);
  t.equal(a.command, 'up');
  if (a.command !== 'up') return;
  t.equal(a.mtu, 65520);
  t.equal(a.tunName, 'tunsteer0');
  t.equal(a.stateDir, '/run/tunsteer');
  t.same(a.excludes, []);
  const b = parseCli(['up', '--mode', 'route-all', '--mtu', '1500', '--exclude', '203.0.113.0/24', '--exclude', '192.0.2.7', '--tun-name', 'ts9', '--dry-run', '--log-level', 'debug']);
  if (b.command !== 'up') return t.fail('not up');
  t.equal(b.mtu, 1500);
  t.same(b.excludes, ['203.0.113.0/24', '192.0.2.7/32']);
  t.equal(b.dryRun, true);
  t.equal(b.logLevel, 'debug');
});

const bad: [string[], RegExp][] = [
  [['up'], /--mode: required/],
  [['up', '--mode', 'everything'], /--mode: "everything" is not one of/],
  [['up', '--mode', 'route-all', '--mtu', '70000'], /--mtu: 70000 is out of range/],
  [['up', '--mode', 'route-all', '--mtu', 'big'], /--mtu: expected a whole number/],
  [['up', '--mode', 'route-all', '--exclude', '203.0.113.5/24'], /--exclude: "203.0.113.5\/24" is not a CIDR/],
  [['up', '--mode', 'route-all', '--exclude', 'nonsense'], /--exclude/],
  [['up', '--mode', 'route-all', '--tun-name', 'a name with spaces'], /--tun-name/],
  [['up', '--mode', 'route-all', '--log-level', 'loud'], /--log-level/],
  [['up', '--mode', 'route-all', '--frobnicate'], /frobnicate/],
  [['launch'], /unknown command "launch"/],
];
for (const [argv, re] of bad) {
  t.test(`rejects ${argv.join(' ')}`, async (t) => {
    let err: unknown = null;
    try {
      parseCli(argv);
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof UsageError, 'a UsageError');
    t.match((err as Error)?.message, re);
  });
}

t.test('the CLI exits 2 on a bad flag, naming it, and 0 on --help', async (t) => {
  const main = join(import.meta.dirname, '../../../src/main.ts');
  const r = spawnSync(process.execPath, ['--import', 'tsx', main, 'up', '--mode', 'route-all', '--mtu', '9'], { encoding: 'utf8' });
  t.equal(r.status, 2);
  t.match(r.stderr, /--mtu: 9 is out of range/);
  const h = spawnSync(process.execPath, ['--import', 'tsx', main, '--help'], { encoding: 'utf8' });
  t.equal(h.status, 0);
  t.match(h.stdout, /tunsteer up --mode route-all/);
  const s = spawnSync(process.execPath, ['--import', 'tsx', main, 'status', '--state-dir', '/nonexistent/tunsteer-test'], { encoding: 'utf8' });
  t.equal(s.status, 1, 'status exits non-zero when no gateway runs');
  const d = spawnSync(process.execPath, ['--import', 'tsx', main, 'down', '--state-dir', '/nonexistent/tunsteer-test'], { encoding: 'utf8' });
  t.equal(d.status, 0, 'down with nothing to restore exits 0');
});
