// `tunsteer demo`: runs offline in namespaces of its own, shows the log line,
// the status and the rule, and leaves nothing behind: not when it finishes,
// not on Ctrl-C or SIGTERM, not on an error; what a demo killed with -9 left,
// the next one removes.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tunsteerArgv, ROOT } from '../helpers/topology.js';

t.setTimeout(600_000);

interface DemoRun {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function startDemo(env: NodeJS.ProcessEnv = {}): DemoRun {
  const argv = tunsteerArgv(['demo']);
  // a process group of its own, as a shell gives a foreground job: Ctrl-C signals the whole group
  const proc = spawn(argv[0], argv.slice(1), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, detached: true });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const timer = setTimeout(() => proc.kill('SIGKILL'), 240_000);
  void exited.then(() => clearTimeout(timer));
  t.teardown(() => void proc.kill('SIGKILL'));
  return { proc, stdout: () => out, stderr: () => err, exited };
}

/** Everything a demo with this pid could leave: namespaces, its resolv.conf dir, its state dirs, processes with its state dir in their command line. */
function leftovers(pid: number): string[] {
  const left: string[] = [];
  for (const ns of [`tsdemo-${pid}-c`, `tsdemo-${pid}-s`]) if (existsSync(`/run/netns/${ns}`)) left.push(`namespace ${ns}`);
  for (const p of [`/etc/netns/tsdemo-${pid}-c`, `/run/tunsteer-demo-${pid}`]) if (existsSync(p)) left.push(p);
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(`tunsteer-demo-${pid}/`)) left.push(`process ${p}`);
    } catch {
      // gone
    }
  }
  return left;
}

async function until(ok: () => boolean, ms: number): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) if (ok()) return;
  throw new Error('timed out');
}

t.test('the demo runs to the end and shows what to look at', async (t) => {
  const d = startDemo();
  const code = await d.exited;
  t.equal(code, 0, d.stderr());
  const out = d.stdout();
  t.match(out, /1\. route-all: every connection/);
  t.match(out, /fetch http:\/\/app\.demo\.example\/ from the client: 200 "hello from the demo server/);
  const conns = out
    .split('\n')
    .filter((l) => l.includes('"msg":"conn"'))
    .map((l) => JSON.parse(l.trim()));
  t.equal(conns.length, 2, 'a connection log line in each mode');
  t.match(conns[0], { host: 'app.demo.example', dst: '203.0.113.80:80', rule: 'demo-app', action: 'direct', end: 'closed' }, 'route-all: the real address, the name from Host');
  t.match(conns[1], { host: 'app.demo.example', dst: /^198\.1[89]\.\d+\.\d+:80$/, rule: 'demo-app' }, 'per-host: a fake IP, the name from DNS');
  t.match(out, /403 "Blocked by tunsteer rule "demo-block"\."/, 'the reject rule');
  t.match(out, /tunsteer status --state-dir .*\n\s+mode\s+route-all/, 'status, route-all');
  t.match(out, /\n\s+mode\s+per-host/, 'status, per-host');
  t.match(out, /mem_rss\s+[\d.]+ MiB/, 'memory in MiB');
  t.match(out, /no log line: it went direct, past the gateway/, 'per-host leaves other names alone');
  t.equal((out.match(/"restoring", then "restored, 0 connections closed"; exit 0/g) ?? []).length, 2, 'both gateways stop cleanly');
  const err = d.stderr();
  t.match(err, /^demo \[1\/9\] network · 0:00 elapsed, about \d+:\d\d left$/m, 'a progress line per step (no terminal here)');
  t.match(err, /^demo \[7\/9\] per-host: fetch · /m);
  t.match(err, /^demo: finished; its namespaces and files are removed in \d+:\d\d$/m);
  t.same(leftovers(d.proc.pid!), [], 'nothing left behind');
});

for (const [sig, at, expected] of [
  ['SIGINT', 'route-all: fetch', 130],
  ['SIGTERM', 'per-host', 143],
] as const) {
  t.test(`${sig} during "${at}": everything removed, exit ${expected}`, async (t) => {
    const d = startDemo();
    await until(() => new RegExp(`^demo \\[\\d/9\\] ${at} · `, 'm').test(d.stderr()), 120_000);
    t.not(leftovers(d.proc.pid!), [], 'it had built its network');
    // SIGINT as Ctrl-C sends it: to the whole process group; SIGTERM as kill sends it: to the demo alone
    if (sig === 'SIGINT') process.kill(-d.proc.pid!, sig);
    else d.proc.kill(sig);
    t.equal(await d.exited, expected);
    t.match(d.stderr(), new RegExp(`tunsteer demo: ${sig}: stopping`));
    t.match(d.stderr(), /tunsteer demo: everything removed/);
    t.same(leftovers(d.proc.pid!), [], 'nothing left behind');
  });
}

t.test('an error (a gateway that fails to start): said, everything removed, exit 1', async (t) => {
  const d = startDemo({ TUNSTEER_TEST_DEMO_BREAK: 'per-host' });
  t.equal(await d.exited, 1);
  t.match(d.stderr(), /tunsteer demo failed: the per-host gateway did not come up/);
  t.match(d.stderr(), /--mtu: 1 is out of range/, "with the gateway's own message");
  t.match(d.stderr(), /tunsteer demo: everything removed/);
  t.same(leftovers(d.proc.pid!), [], 'nothing left behind');
});

t.test('a demo killed with -9 leaves its network; the next demo removes it', async (t) => {
  const d = startDemo();
  await until(() => /^demo \[\d\/9\] route-all: fetch · /m.test(d.stderr()), 120_000);
  d.proc.kill('SIGKILL');
  await d.exited;
  t.not(leftovers(d.proc.pid!), [], 'kill -9 leaves it all');
  const next = startDemo();
  t.equal(await next.exited, 0, next.stderr());
  t.match(next.stdout(), new RegExp(`removed what earlier demos, killed before they could clean up, left: pids [\\d, ]*${d.proc.pid}`));
  t.same(leftovers(d.proc.pid!), [], "the killed one's leftovers are gone");
  t.same(leftovers(next.proc.pid!), [], "and the next one's");
});
