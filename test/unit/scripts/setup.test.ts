// scripts/setup and npm test's preflight (scripts/test.mjs) on a copy of the
// scripts whose package list names a program no machine has: setup, not
// root, prints the exact command to run; the preflight names every missing
// program in one message and runs no test.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'tunsteer-setup-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
chmodSync(dir, 0o755);
cpSync(join(ROOT, 'scripts'), join(dir, 'scripts'), { recursive: true });
const list = readFileSync(join(ROOT, 'scripts/packages.txt'), 'utf8');
writeFileSync(join(dir, 'scripts/packages.txt'), `${list}tunsteer-no-such-pkg  tunsteer-no-such-prog  build\ntunsteer-no-such-peer  tunsteer-no-such-peer  test\n`);

t.test('the package list: the build tools and every test peer CI installs', async (t) => {
  const pkgs = list
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'))
    .map((l) => l.trim().split(/\s+/));
  t.ok(
    pkgs.every((p) => p.length === 3 && ['build', 'test', 'optional'].includes(p[2])),
    'package, program, group on each line',
  );
  for (const p of ['python3', 'make', 'g++', 'iproute2'])
    t.ok(
      pkgs.some((x) => x[0] === p && x[2] === 'build'),
      `${p} for the build`,
    );
  t.match(readFileSync(join(ROOT, '.ci/run'), 'utf8'), /scripts\/packages\.txt/, 'CI installs from the same list');
});

t.test('setup, not as root: names the missing packages and the exact command', { skip: process.getuid?.() === 0 ? false : 'needs root to become nobody' }, async (t) => {
  // a clean environment: tap's NODE_OPTIONS loads its hooks from the repo, which nobody may not be able to read
  const r = spawnSync(
    'setpriv',
    ['--reuid=nobody', '--regid=nogroup', '--clear-groups', 'env', '-i', `PATH=${process.env.PATH}`, 'HOME=/tmp', 'bash', join(dir, 'scripts/setup')],
    { encoding: 'utf8', timeout: 60_000 },
  );
  t.equal(r.status, 1, r.stderr);
  t.match(r.stdout, /setup: missing packages: tunsteer-no-such-pkg\n/);
  t.match(r.stdout, /^ {2}sudo apt-get install -y --no-install-recommends tunsteer-no-such-pkg$/m, 'the command, as one would paste it');
  t.notMatch(r.stdout, /tunsteer-no-such-peer/, 'the test peers only with --tests');
  const tests = spawnSync(
    'setpriv',
    ['--reuid=nobody', '--regid=nogroup', '--clear-groups', 'env', '-i', `PATH=${process.env.PATH}`, 'HOME=/tmp', 'bash', join(dir, 'scripts/setup'), '--tests'],
    { encoding: 'utf8', timeout: 60_000 },
  );
  t.match(tests.stdout, /sudo apt-get install -y --no-install-recommends tunsteer-no-such-pkg tunsteer-no-such-peer/);
});

t.test("npm test's preflight: every missing program in one message, no test run", async (t) => {
  const r = spawnSync(process.execPath, [join(dir, 'scripts/test.mjs')], { encoding: 'utf8', timeout: 60_000 });
  t.equal(r.status, 1);
  t.match(r.stderr, /npm test cannot run yet:/);
  t.match(r.stderr, /missing programs the tests run: tunsteer-no-such-prog, tunsteer-no-such-peer\n/, 'one line naming them all');
  t.match(r.stderr, /apt-get install -y --no-install-recommends tunsteer-no-such-pkg tunsteer-no-such-peer/);
  t.notMatch(r.stdout, /# \{ total/, 'tap did not run');
});
