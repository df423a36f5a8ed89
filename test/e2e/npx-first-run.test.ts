// The first `npx tunsteer` after npm ci: npx installs the package into its
// cache as a link and runs its install and prepare scripts there. They must
// see that npm ci built everything already and build nothing again (it took
// 14 s: node-gyp and tsc, both run a second time). Checked in a copy of the
// repository with a cache of its own, so this machine's npx cache and build
// are not touched.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/topology.js';

t.setTimeout(600_000);
const dir = mkdtempSync(join(tmpdir(), 'tunsteer-npx-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const repo = join(dir, 'repo');
for (const p of ['package.json', 'package-lock.json', 'tsconfig.json', 'binding.gyp', 'scripts', 'src', 'bench', 'test/helpers'])
  cpSync(join(ROOT, p), join(repo, p), { recursive: true });
symlinkSync(join(ROOT, 'node_modules'), join(repo, 'node_modules'));
const npm = (args: string[]) =>
  execFileSync('npm', args, { cwd: repo, encoding: 'utf8', timeout: 300_000, env: { ...process.env, npm_config_cache: join(dir, 'cache'), npm_config_update_notifier: 'false' } });

// what npm ci runs after installing the dependencies
npm(['run', '-s', 'install']);
npm(['run', '-s', 'prepare']);
const built = ['build/Release/tunsteer_tun.node', 'dist/src/cli/main.js', 'dist/.built'];
const mtimes = () => built.map((f) => statSync(join(repo, f)).mtimeMs);
const before = mtimes();

t.test('the first npx tunsteer runs the built CLI and rebuilds nothing', async (t) => {
  const out = npm(['exec', '--yes', '--', 'tunsteer', '--version']);
  const version = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')).version;
  t.match(out, new RegExp(`^tunsteer ${version.replaceAll('.', '\\.')} `));
  t.same(mtimes(), before, 'the addon and dist are the ones npm ci built');
});

t.test('a changed source is built again at the next prepare, and only then', async (t) => {
  execFileSync('touch', [join(repo, 'src/cli/help.ts')]);
  npm(['run', '-s', 'prepare']);
  const after = mtimes();
  t.equal(after[0], before[0], 'the addon is untouched');
  t.ok(after[2] > before[2], 'dist was built again');
});
