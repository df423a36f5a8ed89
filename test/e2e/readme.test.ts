// The README as a newcomer follows it: the "Trying it safely" recipe, pasted
// as it is (its names made unique to this run, `./tunsteer` pointed at the
// source), builds its namespaces, runs the gateway, fetches through it, stops
// it and removes everything. And the two commands at the top name what exists.
import t from 'tap';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, tunsteerArgv } from '../helpers/topology.js';

t.setTimeout(300_000);
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The first ```sh block after a heading. */
function shBlock(heading: string): string {
  const at = readme.indexOf(heading);
  if (at < 0) throw new Error(`README has no "${heading}"`);
  const m = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  if (!m) throw new Error(`no sh block under "${heading}"`);
  return m[1];
}

t.test('the two commands at the top: setup, then the demo; setup --tests, then the tests', async (t) => {
  const top = shBlock('# tunsteer\n')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.replace(/\s+#.*$/, ''));
  t.same(top, ['scripts/setup && npx tunsteer demo', 'scripts/setup --tests && npm test']);
  t.doesNotThrow(() => accessSync(join(ROOT, 'scripts/setup'), constants.X_OK), 'scripts/setup is there and executable');
  t.equal(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).bin.tunsteer, 'dist/src/cli/main.js');
  t.notMatch(readme.slice(0, readme.indexOf('## Commands')), /sudo /, 'the first steps work as root without sudo');
  t.match(readme, /about 20-25 min/, 'how long the tests take (a fresh clone, 2026-12-07: 20 min 52 s)');
});

t.test('./tunsteer runs the built CLI as its own process', { skip: existsSync(join(ROOT, 'dist/src/cli/main.js')) ? false : 'not built (npm ci builds it)' }, async (t) => {
  const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
  t.match(execFileSync(join(ROOT, 'tunsteer'), ['--version'], { encoding: 'utf8' }), new RegExp(`^tunsteer ${version.replaceAll('.', '\\.')} `));
  // exec, not a child: the pid a shell's $! gets is tunsteer's own, so kill reaches it and wait gets its status
  const sh = spawn('sh', ['-c', `${join(ROOT, 'tunsteer')} proxy --listen 127.0.0.1:0 & echo $!; wait $!; echo "exit $?"`]);
  let out = '';
  sh.stdout.on('data', (d: Buffer) => (out += d.toString()));
  // running, its signal handlers in place, once it says it listens
  for (let i = 0; i < 600 && !out.includes('"msg":"proxy listening"'); i++) await new Promise((r) => setTimeout(r, 50));
  const pid = Number(out.split('\n')[0]);
  t.match(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), /dist\/src\/cli\/main\.js\0proxy/, '$! is the node process running tunsteer');
  process.kill(pid, 'SIGTERM');
  await new Promise((r) => sh.once('exit', r));
  t.match(out, /^exit 0$/m, 'and its own exit status reaches the shell');
});

t.test('"Trying it safely" works as pasted and leaves nothing behind', async (t) => {
  const ns = `tsR${process.pid}`;
  const recipe = shBlock('## Trying it safely')
    .replaceAll('./tunsteer', tunsteerArgv([]).join(' '))
    .replaceAll('tstry', ns)
    .replaceAll('tunsteer-try', `tunsteer-try-${process.pid}`);
  t.match(recipe, /ip netns add/, 'the recipe builds its namespace');
  t.teardown(() => {
    for (const n of [ns, `${ns}-up`]) {
      try {
        for (const pid of execFileSync('ip', ['netns', 'pids', n], { encoding: 'utf8' }).split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
        execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
      } catch {
        // gone, as it should be
      }
    }
    rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
    rmSync(`/run/tunsteer-try-${process.pid}`, { recursive: true, force: true });
  });
  const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile('bash', ['-e', '-c', recipe], { cwd: ROOT, timeout: 100_000, killSignal: 'SIGKILL', encoding: 'utf8' }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    ),
  );
  t.equal(r.code, 0, `the recipe ran to its end: ${r.stdout.slice(-1500)} ${r.stderr.slice(-1500)}`);
  t.match(r.stdout, /^ip -4 route add default dev tunsteer0 table 2022$/m, '--dry-run printed the plan');
  t.match(r.stdout, /^mode +route-all$/m, 'status: the gateway is up');
  t.match(r.stdout, /^HTTP\/1\.0 200 OK/m, 'curl reached the server behind the uplink');
  const conn = r.stdout.split('\n').find((l) => l.includes('"msg":"conn"'));
  t.ok(conn, 'the gateway logged the connection');
  t.match(JSON.parse(conn ?? '{}'), { dst: '203.0.113.10:8000', end: 'closed' });
  t.match(r.stdout, /^exit 0$/m, 'the gateway stopped cleanly: exit 0');
  t.match(r.stdout, /"msg":"restoring"[\s\S]*"msg":"restored, \d+ connections? closed"/, 'and its last two lines say so');
  for (const p of [`/run/netns/${ns}`, `/run/netns/${ns}-up`, `/etc/netns/${ns}`, `/run/tunsteer-try-${process.pid}`, `/tmp/tunsteer-try-${process.pid}.log`]) {
    t.notOk(existsSync(p), `${p} is gone`);
  }
});
