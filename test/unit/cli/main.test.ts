// The CLI's exit codes, from the outside: 2 for every usage error (a bad flag,
// a bad config, and one found only once the command runs, such as a --netns
// that is no namespace), 1 when no gateway runs, 0 otherwise.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MAIN = join(import.meta.dirname, '../../../src/cli/main.ts');
const tunsteer = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { encoding: 'utf8', timeout: 60_000 });
const dir = mkdtempSync(join(tmpdir(), 'tunsteer-cli-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('exit 2 on a bad flag, naming it, and 0 on --help', async (t) => {
  const r = tunsteer('up', '--mode', 'route-all', '--mtu', '9');
  t.equal(r.status, 2);
  t.match(r.stderr, /--mtu: 9 is out of range/);
  t.match(r.stderr, /see tunsteer up --help/);
  const u = tunsteer('up', '--frobnicate');
  t.equal(u.status, 2, 'an unknown flag');
  t.match(u.stderr, /frobnicate/);
  const h = tunsteer('--help');
  t.equal(h.status, 0);
  t.match(h.stdout, /tunsteer up --mode route-all/);
});

t.test('status exits 1 when no gateway runs; down with nothing to restore exits 0', async (t) => {
  t.equal(tunsteer('status', '--state-dir', '/nonexistent/tunsteer-test').status, 1);
  t.equal(tunsteer('down', '--state-dir', '/nonexistent/tunsteer-test').status, 0);
});

t.test('check-config: exit 0 with the example, 2 naming the field with a bad one', async (t) => {
  const ok = tunsteer('check-config', 'tunsteer.example.yaml');
  t.equal(ok.status, 0, ok.stderr);
  t.match(ok.stdout, /ok \(6 rules, 2 upstreams\)/);
  t.match(ok.stderr, /warning: rules\[0\]\.value_env: environment variable API_TOKEN is not set/);
  const f = join(dir, 'bad.yaml');
  writeFileSync(f, 'rules: [{ action: proxy, upstream: x }]');
  const bad = tunsteer('check-config', f);
  t.equal(bad.status, 2);
  t.match(bad.stderr, /rules\[0\]\.upstream: unknown upstream "x"/);
  // a secret that is set but would split the header: refused, not a warning
  const sf = join(dir, 'split.yaml');
  writeFileSync(sf, 'rules: [{ domain: a.example, action: set-header, header: Authorization, value_env: TOK }]');
  const split = spawnSync(process.execPath, ['--import', 'tsx', MAIN, 'check-config', sf], {
    encoding: 'utf8',
    env: { ...process.env, TOK: 'Bearer x\r\nX-Evil: 1' },
  });
  t.equal(split.status, 2, split.stdout);
  t.match(split.stderr, /rules\[0\]\.value_env: the value of environment variable TOK holds CR/);
  t.notMatch(split.stderr, /Bearer x/, 'the value itself is not printed');
  const empty = join(dir, 'empty.yaml');
  writeFileSync(empty, '# nothing yet\n');
  const e = tunsteer('check-config', empty);
  t.equal(e.status, 2, 'an empty config is not "ok (0 rules)"');
  t.match(e.stderr, /empty\.yaml: holds no settings/);
});

t.test('a usage error found once up runs exits 2 too', async (t) => {
  // checked before anything changes on the system: no TUN, no routes
  const ns = tunsteer('up', '--mode', 'route-all', '--netns', join(dir, 'no-such-netns'), '--state-dir', join(dir, 'state-ns'));
  t.equal(ns.status, 2, ns.stderr);
  t.match(ns.stderr, /--netns\/--pid: .*no-such-netns is not a network namespace/);
});

t.test('a --user that does not exist exits 2 (as root: only root drops to a user)', { skip: process.getuid?.() === 0 ? false : 'needs root' }, async (t) => {
  const r = tunsteer('up', '--mode', 'redirect', '--dry-run', '--user', 'tunsteer-no-such-user', '--state-dir', join(dir, 'state-user'));
  t.equal(r.status, 2, r.stderr);
  t.match(r.stderr, /--user: no user "tunsteer-no-such-user"/);
});
