// The help pages: complete (every flag args.ts accepts is documented), one
// page per command, run's page lists exactly the flags run takes; --version.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCommandLine, RUN_FLAGS } from '../../../src/cli/args.js';
import { documentedFlags, helpPage, HELP } from '../../../src/cli/help.js';
import type { GatewayFlags } from '../../../src/config/settings.js';

const MAIN = join(import.meta.dirname, '../../../src/cli/main.ts');
const tunsteer = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { encoding: 'utf8', timeout: 60_000 });
const VERSION = JSON.parse(readFileSync(join(import.meta.dirname, '../../../package.json'), 'utf8')).version as string;

/** Every flag of up, from the parser's own table (a flag it accepts is one it parses without error). */
const UP_FLAGS: (keyof GatewayFlags)[] = [
  'config',
  'mode',
  'host',
  'fake-pool',
  'fake-pool6',
  'fake-ip-hold',
  'ipv6',
  'tun-address6',
  'resolv-conf',
  'shared-resolv-conf',
  'no-dns-hijack',
  'tun-name',
  'mtu',
  'tun-address',
  'exclude',
  'state-dir',
  'log-level',
  'dry-run',
  'table',
  'rule-priority',
  'connect-timeout',
  'max-connections',
  'syn-backlog',
  'no-syn-cookies',
  'tun-backend',
  'tun-offload',
  'no-tun-offload',
  'workers',
  'tcp-rcvbuf',
  'tcp-sndbuf',
  'udp-idle-timeout',
  'dns-tcp-idle-timeout',
  'max-udp-flows',
  'memory-budget-mb',
  'block-quic',
  'sniff-timeout',
  'no-http-inspect',
  'metrics',
  'listen',
  'control',
  'user',
  'restart',
  'netns',
  'pid',
  'intercept-port',
];

t.test('--help documents every flag up accepts, and every mode', async (t) => {
  for (const f of UP_FLAGS) {
    const boolean = ['shared-resolv-conf', 'no-dns-hijack', 'dry-run', 'no-syn-cookies', 'block-quic', 'no-http-inspect', 'restart', 'tun-offload', 'no-tun-offload'].includes(f);
    t.doesNotThrow(() => parseCommandLine(['up', `--${f}`, ...(boolean ? [] : ['x'])]), `up accepts --${f}`);
  }
  t.same(documentedFlags('up').sort(), UP_FLAGS.map((f) => `--${f}`).sort(), 'the page lists exactly the flags up accepts');
  for (const m of ['route-all', 'per-host', 'redirect', 'tproxy']) t.match(HELP, new RegExp(`--mode ${m}`), `--mode ${m}`);
  for (const c of ['demo', 'up', 'run', 'proxy', 'check-config', 'down', 'status', 'reload', 'top', 'help', '--version']) t.match(HELP, new RegExp(`tunsteer ${c}`), c);
});

t.test("run's page lists the flags run takes, and only those", async (t) => {
  const page = helpPage('run')!;
  t.same(documentedFlags('run').sort(), [...RUN_FLAGS].sort());
  for (const f of RUN_FLAGS) t.match(page, f);
  t.notMatch(page, /--exclude/, 'a flag of up that run refuses is not on its page');
  t.match(page, /exits with CMD's status/i);
});

t.test("help CMD and CMD --help give the command's own page", async (t) => {
  for (const c of ['up', 'run', 'proxy', 'check-config', 'down', 'status', 'reload', 'top', 'demo']) {
    const a = tunsteer('help', c);
    t.equal(a.status, 0, `help ${c}`);
    t.equal(a.stdout, helpPage(c), `help ${c} is its page`);
    t.match(a.stdout, new RegExp(`^tunsteer ${c}`), `the page starts with ${c}'s usage`);
  }
  t.equal(tunsteer('run', '--help').stdout, helpPage('run'));
  t.equal(tunsteer('status', '-h').stdout, helpPage('status'));
  const bad = tunsteer('help', 'stats');
  t.equal(bad.status, 2);
  t.match(bad.stderr, /unknown command "stats" \(did you mean status\?\)/);
});

t.test('--version, -v, -V and version print the version', async (t) => {
  for (const v of ['--version', '-v', '-V', 'version']) {
    const r = tunsteer(v);
    t.equal(r.status, 0, v);
    t.match(r.stdout, new RegExp(`^tunsteer ${VERSION.replaceAll('.', '\\.')} `), v);
  }
});

t.test('an unknown command names them all (run too) and guesses a typo', async (t) => {
  const r = tunsteer('stauts');
  t.equal(r.status, 2);
  t.match(r.stderr, /did you mean status\?/);
  t.match(r.stderr, /\brun\b/);
  t.match(r.stderr, /\bdemo\b/);
  const u = tunsteer('up', '--mode', 'route-all', '--mtu', 'x');
  t.match(u.stderr, /see tunsteer up --help/, "a usage error points at the command's own page");
});
