import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseCli, UsageError } from '../../../src/cli/args.js';

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

t.test('up: SYN backlog and cookies', async (t) => {
  const a = parseCli(['up', '--mode', 'route-all']);
  if (a.command !== 'up') return t.fail('not up');
  t.equal(a.synBacklog, 1024, 'backlog 1024 by default');
  t.equal(a.synCookies, true, 'cookies on by default');
  const b = parseCli(['up', '--mode', 'route-all', '--syn-backlog', '64', '--no-syn-cookies']);
  if (b.command !== 'up') return t.fail('not up');
  t.equal(b.synBacklog, 64);
  t.equal(b.synCookies, false);
  const r = parseCli(['run', '--syn-backlog', '32', '--', 'true']);
  t.equal(r.command === 'run' && r.up.synBacklog, 32, 'run takes it too');
});

const bad: [string[], RegExp][] = [
  [['up', '--mode', 'route-all', '--syn-backlog', '0'], /--syn-backlog: 0 is out of range 1\.\.1000000/],
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
  [['up', '--mode', 'route-all', '--ipv6', 'maybe'], /--ipv6: "maybe" is not on or off/],
  [['up', '--mode', 'route-all', '--ipv6', 'true'], /--ipv6: "true" is not on or off/],
  [['up', '--mode', 'route-all', '--fake-pool6', '198.18.0.0/15'], /--fake-pool6: "198.18.0.0\/15" is not an IPv6 network/],
  [['up', '--mode', 'route-all', '--fake-pool6', 'fc00::/112'], /--fake-pool6: .*\/111 or larger/],
  [['up', '--mode', 'route-all', '--tun-address6', '192.0.2.1/24'], /--tun-address6/],
  [['up', '--mode', 'route-all', '--exclude', '2001:db8::1/32'], /--exclude: "2001:db8::1\/32" is not a CIDR/],
];

t.test('up: IPv6 defaults and flags', async (t) => {
  const a = parseCli(['up', '--mode', 'route-all']);
  if (a.command !== 'up') return t.fail('not up');
  t.equal(a.ipv6, true, 'on by default');
  t.equal(a.fakePool6, 'fc00::/18');
  t.match(a.tunAddress6, /^fd[0-9a-f]{2}:/, 'a ULA');
  const b = parseCli(['up', '--mode', 'per-host', '--host', 'a.example', '--ipv6', 'off', '--fake-pool6', 'FD00:AB::/96', '--exclude', '2001:DB8:1::/48', '--tun-address6', 'fd00:1::1/64']);
  if (b.command !== 'up') return t.fail('not up');
  t.equal(b.ipv6, false);
  t.equal(b.fakePool6, 'fd00:ab::/96', 'canonical text');
  t.same(b.excludes, ['2001:db8:1::/48'], 'IPv6 excludes accepted, canonical');
  t.equal(b.tunAddress6, 'fd00:1::1/64');
  const r = parseCli(['run', '--ipv6', 'off', '--', 'true']);
  t.equal(r.command === 'run' && r.up.ipv6, false, 'run takes --ipv6');
});
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
  const main = join(import.meta.dirname, '../../../src/cli/main.ts');
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
