// Settings: the flags over the config file over the defaults, every value
// checked whichever of the two gave it, and a bad one named by its flag (a
// ConfigError: the CLI exits 2).
import t from 'tap';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCommandLine } from '../../../src/cli/args.js';
import { defaultWorkers, gatewaySettings, MAX_DEFAULT_WORKERS, proxySettings, runSettings, type GatewaySettings } from '../../../src/config/settings.js';
import { loadConfigFile } from '../../../src/config/load-config.js';
import { ConfigError } from '../../../src/config/config-error.js';
import { thrown } from '../../helpers/thrown.js';

const dir = mkdtempSync(join(tmpdir(), 'tunsteer-settings-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(text: string): string {
  const f = join(dir, `c${n++}.yaml`);
  writeFileSync(f, text);
  return f;
}

/** `tunsteer ARGV...` resolved as the CLI does before running up or run. */
function settings(argv: string[]): GatewaySettings {
  const p = parseCommandLine(argv);
  if (p.command === 'up') return gatewaySettings(p.flags, loadConfigFile(p.flags.config));
  if (p.command === 'run') return runSettings(p.flags, loadConfigFile(p.flags.config));
  throw new Error(`not up or run: ${argv.join(' ')}`);
}

t.test('up: defaults and flags', async (t) => {
  const a = settings(['up', '--mode', 'route-all']);
  t.equal(a.mtu, 65520);
  t.equal(a.tunName, 'tunsteer0');
  t.equal(a.stateDir, '/run/tunsteer');
  t.same(a.excludes, []);
  const b = settings([
    'up',
    '--mode',
    'route-all',
    '--mtu',
    '1500',
    '--exclude',
    '203.0.113.0/24',
    '--exclude',
    '192.0.2.7',
    '--tun-name',
    'ts9',
    '--dry-run',
    '--log-level',
    'debug',
  ]);
  t.equal(b.mtu, 1500);
  t.same(b.excludes, ['203.0.113.0/24', '192.0.2.7/32']);
  t.equal(b.dryRun, true);
  t.equal(b.logLevel, 'debug');
});

t.test('up: SYN backlog and cookies', async (t) => {
  const a = settings(['up', '--mode', 'route-all']);
  t.equal(a.synBacklog, 1024, 'backlog 1024 by default');
  t.equal(a.synCookies, true, 'cookies on by default');
  const b = settings(['up', '--mode', 'route-all', '--syn-backlog', '64', '--no-syn-cookies']);
  t.equal(b.synBacklog, 64);
  t.equal(b.synCookies, false);
  t.equal(settings(['run', '--syn-backlog', '32', '--', 'true']).synBacklog, 32, 'run takes it too');
});

t.test('up: IPv6 defaults and flags', async (t) => {
  const a = settings(['up', '--mode', 'route-all']);
  t.equal(a.ipv6, true, 'on by default');
  t.equal(a.fakePool6, 'fc00::/18');
  t.match(a.tunAddress6, /^fd[0-9a-f]{2}:/, 'a ULA');
  const b = settings([
    'up',
    '--mode',
    'per-host',
    '--host',
    'a.example',
    '--ipv6',
    'off',
    '--fake-pool6',
    'FD00:AB::/96',
    '--exclude',
    '2001:DB8:1::/48',
    '--tun-address6',
    'fd00:1::1/64',
  ]);
  t.equal(b.ipv6, false);
  t.equal(b.fakePool6, 'fd00:ab::/96', 'canonical text');
  t.same(b.excludes, ['2001:db8:1::/48'], 'IPv6 excludes accepted, canonical');
  t.equal(b.tunAddress6, 'fd00:1::1/64');
  t.equal(settings(['run', '--ipv6', 'off', '--', 'true']).ipv6, false, 'run takes --ipv6');
});

t.test('run: route-all in a state dir of its own, DNS answered, whatever the file says', async (t) => {
  const r = settings(['run', '--config', file('mode: per-host\nhosts: [a.example]\ndns_hijack: false\nstate_dir: /elsewhere\n'), '--', 'true']);
  t.equal(r.mode, 'route-all');
  t.equal(r.dnsHijack, true);
  t.match(r.stateDir, new RegExp(`tunsteer-run-${process.pid}$`));
  t.same(r.hosts, ['a.example'], 'its hosts still get fake IPs');
});

const BAD: [string[], RegExp][] = [
  [['up', '--mode', 'route-all', '--syn-backlog', '0'], /--syn-backlog: 0 is out of range 1\.\.1000000/],
  [['up'], /--mode: required/],
  [['up', '--mode', 'everything'], /--mode: "everything" is not one of/],
  [['up', '--mode', 'route-all', '--mtu', '70000'], /--mtu: 70000 is out of range/],
  [['up', '--mode', 'route-all', '--mtu', 'big'], /--mtu: expected a whole number/],
  [['up', '--mode', 'route-all', '--exclude', '203.0.113.5/24'], /--exclude: "203.0.113.5\/24" is not a CIDR/],
  [['up', '--mode', 'route-all', '--exclude', 'nonsense'], /--exclude/],
  [['up', '--mode', 'route-all', '--tun-name', 'a name with spaces'], /--tun-name/],
  [['up', '--mode', 'route-all', '--log-level', 'loud'], /--log-level/],
  [['up', '--mode', 'route-all', '--ipv6', 'maybe'], /--ipv6: "maybe" is not on or off/],
  [['up', '--mode', 'route-all', '--ipv6', 'true'], /--ipv6: "true" is not on or off/],
  [['up', '--mode', 'route-all', '--fake-pool6', '198.18.0.0/15'], /--fake-pool6: "198.18.0.0\/15" is not an IPv6 network/],
  [['up', '--mode', 'route-all', '--fake-pool6', 'fc00::/112'], /--fake-pool6: .*\/111 or larger/],
  [['up', '--mode', 'route-all', '--tun-address6', '192.0.2.1/24'], /--tun-address6/],
  [['up', '--mode', 'route-all', '--exclude', '2001:db8::1/32'], /--exclude: "2001:db8::1\/32" is not a CIDR/],
  [['up', '--mode', 'route-all', '--metrics', '0.0.0.0:9090'], /--metrics: "0.0.0.0" is not a loopback address/],
  [['up', '--mode', 'redirect', '--netns', 'x'], /--netns\/--pid: only route-all/],
  [['up', '--mode', 'route-all', '--netns', 'x', '--pid', '1'], /--netns and --pid/],
];
for (const [argv, re] of BAD) {
  t.test(`rejects ${argv.join(' ')}`, async (t) => {
    t.ok(thrown(() => settings(argv)) instanceof ConfigError, 'a ConfigError (exit 2)');
    t.throws(() => settings(argv), { message: re });
  });
}

t.test('flags override the file; the file overrides defaults', async (t) => {
  const f = file('mode: per-host\nhosts: [a.example]\nlimits: { connect_timeout_ms: 2500, max_connections: 7 }\nsniff: { timeout_ms: 50 }\ntun: { mtu: 9000 }\n');
  const a = settings(['up', '--config', f]);
  t.equal(a.mode, 'per-host');
  t.same(a.hosts, ['a.example']);
  t.equal(a.connectTimeoutMs, 2500);
  t.equal(a.maxConnections, 7);
  t.equal(a.sniffTimeoutMs, 50);
  t.equal(a.mtu, 9000);
  const b = settings(['up', '--config', f, '--mode', 'route-all', '--connect-timeout', '900', '--mtu', '1500', '--host', 'b.example']);
  t.equal(b.mode, 'route-all');
  t.equal(b.connectTimeoutMs, 900);
  t.equal(b.mtu, 1500);
  t.same(b.hosts, ['b.example']);
  t.equal(b.maxConnections, 7);
  const bad = file('mode: sideways');
  t.throws(() => settings(['up', '--config', bad]), { message: new RegExp(`^${bad}: mode: `) });
  t.ok(thrown(() => settings(['up', '--config', bad])) instanceof ConfigError, 'a config error: exit 2');
  t.ok(thrown(() => settings(['up', '--config', join(dir, 'missing.yaml')])) instanceof ConfigError, 'so is a file that is not there');
});

t.test('ipv6 in the file: booleans or on/off; the flag wins', async (t) => {
  t.equal(settings(['up', '--config', file('mode: route-all\n')]).ipv6, true, 'default on');
  t.equal(settings(['up', '--config', file('mode: route-all\nipv6: false\n')]).ipv6, false);
  t.equal(settings(['up', '--config', file('mode: route-all\nipv6: "off"\n')]).ipv6, false);
  t.equal(settings(['up', '--config', file('mode: route-all\nipv6: false\n'), '--ipv6', 'on']).ipv6, true);
  const a = settings(['up', '--config', file('mode: route-all\nfake_pool6: "2001:db8:ff::/96"\ntun: { address6: "fd00:1::1/64" }\n')]);
  t.equal(a.fakePool6, '2001:db8:ff::/96');
  t.equal(a.tunAddress6, 'fd00:1::1/64');
});

t.test('proxy: a loopback listener by default, the file under the flags', async (t) => {
  const p = parseCommandLine(['proxy', '--config', file('listen: "127.0.0.2:3128"\nsniff: { timeout_ms: 40 }\n'), '--sniff-timeout', '70']);
  if (p.command !== 'proxy') return t.fail('not proxy');
  const s = proxySettings(p.flags, loadConfigFile(p.flags.config));
  t.same(s.listen, { host: '127.0.0.2', port: 3128 });
  t.equal(s.sniffTimeoutMs, 70);
  t.same(proxySettings({}, {}).listen, { host: '127.0.0.1', port: 8080 });
  t.ok(thrown(() => proxySettings({ listen: '192.0.2.1:8080' }, {})) instanceof ConfigError, 'a listener off loopback is refused');
});

t.test('a CIDR flag says what is wrong with it (issue 19)', async (t) => {
  t.throws(() => settings(['up', '--mode', 'route-all', '--exclude', '203.0.113.0/33']), {
    message: /--exclude: "203\.0\.113\.0\/33" is not a CIDR: the prefix \/33 is out of range/,
  });
  t.throws(() => settings(['up', '--mode', 'per-host', '--host', 'a.example', '--fake-pool', '198.18.0.0/40']), { message: /--fake-pool: .*the prefix \/40 is out of range/ });
});

t.test('TUN offloads: on by default, off with --no-tun-offload; --tun-offload is still taken, but not with --no-tun-offload', async (t) => {
  t.equal(settings(['up', '--mode', 'route-all']).tunOffload, true, 'on by default');
  t.equal(settings(['up', '--mode', 'route-all', '--no-tun-offload']).tunOffload, false, '--no-tun-offload');
  t.equal(settings(['up', '--mode', 'route-all', '--tun-offload']).tunOffload, true, '--tun-offload, as before');
  t.throws(() => settings(['up', '--mode', 'route-all', '--tun-offload', '--no-tun-offload']), { message: /--no-tun-offload: cannot be given with --tun-offload/ });
});

t.test('workers: one per core by default where the TUN can have a queue each, 1 where it cannot (issue 16)', async (t) => {
  const cores = Math.min(availableParallelism(), MAX_DEFAULT_WORKERS);
  t.equal(settings(['up', '--mode', 'route-all']).workers, cores, `route-all: the cores (${availableParallelism()}, at most ${MAX_DEFAULT_WORKERS})`);
  t.equal(settings(['up', '--mode', 'per-host', '--host', 'a.example']).workers, cores, 'per-host too');
  t.equal(settings(['up', '--mode', 'route-all', '--tun-backend', 'tuntap2']).workers, 1, 'tuntap2 has one queue');
  t.equal(settings(['up', '--mode', 'redirect']).workers, 1, 'redirect has no TUN');
  t.equal(settings(['up', '--mode', 'tproxy']).workers, 1, 'tproxy has no TUN');
  t.equal(settings(['up', '--mode', 'route-all', '--workers', '1']).workers, 1, '--workers 1 keeps the single thread');
  t.equal(settings(['up', '--mode', 'route-all', '--config', file('tun:\n  workers: 3\n')]).workers, 3, 'the file over the default');
  t.equal(
    defaultWorkers('route-all', 'native', 64, 65520, () => true, true),
    MAX_DEFAULT_WORKERS,
    'a 64-core host gets the ceiling',
  );
  t.equal(
    defaultWorkers('route-all', 'native', 1, 65520, () => true, true),
    1,
    'one core: one thread',
  );
  t.equal(
    defaultWorkers('per-host', 'native', 2, 65520, () => true, true),
    2,
  );
  t.equal(
    defaultWorkers('tproxy', 'native', 16, 65520, () => true, true),
    1,
  );
  t.equal(
    defaultWorkers('route-all', 'native', 4, 1500, () => true, true),
    4,
    'below the largest MTU with our steering program: every core',
  );
  t.equal(
    defaultWorkers('route-all', 'native', 4, 1500, () => false, true),
    1,
    'without it: one thread (the kernel steers UDP fragments by addresses alone)',
  );
  t.equal(
    defaultWorkers(
      'route-all',
      'native',
      4,
      65520,
      () => {
        throw new Error('not asked');
      },
      true,
    ),
    4,
    'at the largest MTU the program is not asked about',
  );
});
