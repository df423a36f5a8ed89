// `tunsteer run -- CMD`: one program in a namespace of its own, all its
// traffic through the gateway, which stays outside; nothing left behind.
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { nsExec, snapshotRouting, spawnInNs } from '../helpers/netns.js';
import { DNS_IP, NGINX_IP, ROOT, clientResolvConf, makeTopology, startDnsPeer, startNginx, tunsteerArgv } from '../helpers/topology.js';

t.setTimeout(300_000);
const L7_IP = '203.0.113.30';
const TOKEN = 'Bearer run-s3cret-77';
const topo = await makeTopology(t);
await nsExec(topo.servers, ['ip', 'addr', 'add', `${L7_IP}/32`, 'dev', 'lo']);
await startNginx(t, topo);
// api.example.com is on nginx and the L7 peer: the header rule's secret goes only to the name's own addresses
await startDnsPeer(t, topo, { 'api.example.com': [NGINX_IP, L7_IP] });
const peer = spawnInNs(t, topo.servers, [process.execPath, '--import', 'tsx', join(ROOT, 'test/helpers/l7-peer.ts'), 'server', L7_IP]);
await peer.waitForLine((l) => l.includes('listening'));
const resolv = `nameserver ${DNS_IP}\n`;
await clientResolvConf(t, topo.client, resolv);
const cfg = join(topo.tmp, 'run.yaml');
writeFileSync(cfg, 'rules:\n  - { domain: api.example.com, action: set-header, header: Authorization, value_env: API_TOKEN }\n');
const before = await snapshotRouting(topo.client);

/** What a run (by the pid of tunsteer) may leave: its state dir (under /run as root, else the temp dir) and its resolv.conf's dir. */
function leftovers(pid: number): string[] {
  const out: string[] = [];
  for (const d of ['/run', tmpdir()]) {
    for (const e of readdirSync(d)) if (e === `tunsteer-run-${pid}` || e.startsWith(`tunsteer-run-${pid}-`)) out.push(join(d, e));
  }
  return out;
}

/** tunsteer run ARGS in the client namespace; asserts it left nothing behind. */
async function run(t: Test, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const c = spawnInNs(t, topo.client, tunsteerArgv(['run', '--config', cfg, ...args]), { env: { ...process.env, API_TOKEN: TOKEN, ...env } });
  let stdout = '';
  c.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const timer = setTimeout(() => c.kill('SIGKILL'), 60_000);
  const { code } = await c.exited();
  clearTimeout(timer);
  t.same(leftovers(c.pid!), [], `run left nothing behind (no /run or ${tmpdir()} tunsteer-run-${c.pid})`);
  return { code, stdout, stderr: c.stderrText() };
}

t.test('curl through the gateway: the name resolves to a fake IP, the log shows it, the header rule applies', async (t) => {
  const r = await run(t, ['--host', 'api.example.com', '--', 'curl', '-sS', '--max-time', '10', 'http://api.example.com/hello']);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'hello from nginx\n', "stdout is the program's alone");
  const conn = r.stderr.split('\n').filter((l) => l.includes('"msg":"conn"') && l.includes('"host":"api.example.com"'));
  t.equal(conn.length, 1, 'the gateway logged the connection, with its name');
  t.match(JSON.parse(conn[0]).dst, /^(198\.1[89]\.\d+\.\d+|\[fc00:[0-9a-f:]+\]):80$/, 'a fake IP, IPv4 or IPv6 (curl may prefer IPv6)');
  const h = await run(t, ['--', 'curl', '-sS', '--max-time', '10', '-H', 'Host: api.example.com', `http://${L7_IP}:8080/headers`]);
  t.equal(JSON.parse(h.stdout).authorization, TOKEN, h.stderr);
  t.notOk(h.stderr.includes('s3cret'), 'the secret is not logged');
});

t.test("the program sees only the TUN and the gateway's resolver; DNS for other names is forwarded", async (t) => {
  const r = await run(t, ['--', 'sh', '-c', 'ip -o route; cat /etc/resolv.conf; getent hosts other.example.com']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^default dev tunsteer0/m);
  t.match(r.stdout, /^nameserver 198\.18\.0\.2$/m);
  t.match(r.stdout, new RegExp(`^${NGINX_IP.replaceAll('.', '\\.')}\\s+other\\.example\\.com$`, 'm'), 'forwarded to the outer resolver');
});

t.test("the exit status is the program's; nothing is left behind; the outside is untouched", async (t) => {
  const r = await run(t, ['--', 'sh', '-c', 'readlink /proc/self/ns/net; exit 7']);
  t.equal(r.code, 7);
  const inode = r.stdout.trim();
  t.match(inode, /^net:\[\d+\]$/);
  const outer = (await nsExec(topo.client, ['readlink', '/proc/self/ns/net'])).stdout.trim();
  t.not(inode, outer, 'the program ran in a namespace of its own');
  const still = readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .some((p) => {
      try {
        return readlinkSync(`/proc/${p}/ns/net`) === inode;
      } catch {
        return false;
      }
    });
  t.notOk(still, "no process is left in the program's namespace");
  t.equal((await nsExec(topo.client, ['cat', '/etc/resolv.conf'])).stdout, resolv, 'the outer resolv.conf is the same');
  t.equal((await snapshotRouting(topo.client)).text, before.text, 'the outer routes are the same');
  const direct = await nsExec(topo.client, ['curl', '-sS', '--max-time', '10', `http://${NGINX_IP}/hello`]);
  t.equal(direct.stdout, 'hello from nginx\n', 'a program outside goes direct as before');
  t.equal((await nsExec(topo.client, ['ip', '-o', 'link', 'show', 'type', 'tun'])).stdout, '', 'no TUN outside');
});

t.test('Ctrl-C: the program is interrupted, and run exits with its status (130), not 0; nothing left', async (t) => {
  // a process group of its own, as a shell's foreground job: Ctrl-C signals all of it
  const c = spawnInNs(t, topo.client, tunsteerArgv(['run', '--', 'sleep', '60']), { detached: true });
  // the program runs once the gateway is up: its startup line
  for (let i = 0; i < 300 && !c.stderrText().includes('"msg":"gateway up"'); i++) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 300));
  process.kill(-c.pid!, 'SIGINT');
  const { code } = await c.exited();
  t.equal(code, 130, `the interrupted program's status: ${c.stderrText().slice(-500)}`);
  t.match(c.stderrText(), /"msg":"restored, 0 connections closed"/);
  t.same(leftovers(c.pid!), [], 'nothing left behind');
});

t.test('a program that cannot be found: one clear line, exit 127, nothing made', async (t) => {
  const r = await run(t, ['--', 'nosuchprog-tunsteer', '--x']);
  t.equal(r.code, 127, 'as shells say it');
  t.match(r.stderr, /^tunsteer run: nosuchprog-tunsteer: command not found \(looked in PATH: /);
  t.notMatch(r.stderr, /resolv\.conf|exec:/, "not the inner shell's message about our resolv.conf");
  const p = await run(t, ['--', './no/such/path']);
  t.equal(p.code, 127);
  t.match(p.stderr, /\.\/no\/such\/path: no such program, or not executable/);
});

t.test('bad use is refused with a clear message', async (t) => {
  const r = await nsExec(topo.client, tunsteerArgv(['run', 'curl']), { allowFail: true });
  t.equal(r.code, 2);
  t.match(r.stderr, /give the program after --/);
  const r2 = await nsExec(topo.client, tunsteerArgv(['run', '--exclude', '1.2.3.4/32', '--', 'true']), { allowFail: true });
  t.equal(r2.code, 2);
  t.match(r2.stderr, /--exclude does not apply to run/);
});

t.test('without root, through a user namespace: the same curl, its log line, its exit status', async (t) => {
  // nobody must be able to read the code it runs; tap's preload (NODE_OPTIONS) could not write its files as nobody
  const nobody = ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups'];
  if ((await nsExec(topo.client, [...nobody, 'test', '-r', join(ROOT, 'src/cli/main.ts')], { allowFail: true })).code !== 0) {
    t.skip('the repository is not readable by nobody on this machine', () => {});
    return;
  }
  // A root in a user namespace is "other" to /dev/net/tun: it must be mode 666, as
  // most distributions ship it. Where it is not, a private mount namespace gets a 666
  // node of its own (the machine's stays as it is).
  const dev = mkdtempSync(join(tmpdir(), 'tsE-dev-'));
  t.teardown(() => rmSync(dev, { recursive: true, force: true }));
  chmodSync(dev, 0o755);
  const cfgOpen = join(dev, 'run.yaml');
  writeFileSync(cfgOpen, readFileSync(cfg));
  chmodSync(cfgOpen, 0o644);
  const open666 = (statSync('/dev/net/tun').mode & 0o777) === 0o666;
  if (!open666) await nsExec(topo.client, ['sh', '-c', `mknod ${dev}/tun c 10 200 && chmod 666 ${dev}/tun`]);
  const tunNode = open666 ? '' : `mount --bind ${dev}/tun /dev/net/tun && `;
  const asNobody = (args: string[]) =>
    nsExec(
      topo.client,
      [
        'unshare',
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        `${tunNode}exec "$@"`,
        'sh',
        ...nobody,
        'env',
        '-u',
        'NODE_OPTIONS',
        'HOME=/tmp',
        `API_TOKEN=${TOKEN}`,
        ...tunsteerArgv(['run', '--config', cfgOpen, ...args]),
      ],
      {
        allowFail: true,
        timeoutMs: 60_000,
      },
    );
  const nobodyUid = Number((await nsExec(topo.client, ['id', '-u', 'nobody'])).stdout.trim());
  const nobodysRuns = () => readdirSync(tmpdir()).filter((e) => e.startsWith('tunsteer-run-') && statSync(join(tmpdir(), e)).uid === nobodyUid);
  const hadBefore = nobodysRuns();
  const r = await asNobody(['--host', 'api.example.com', '--', 'curl', '-sS', '--max-time', '10', 'http://api.example.com/hello']);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'hello from nginx\n');
  const conn = r.stderr.split('\n').filter((l) => l.includes('"msg":"conn"') && l.includes('"host":"api.example.com"'));
  t.equal(conn.length, 1, 'the gateway, running as nobody, logged the connection with its name');
  const s = await asNobody(['--', 'sh', '-c', 'exit 9']);
  t.equal(s.code, 9, `the program's exit status: ${s.stderr}`);
  t.same(
    nobodysRuns().filter((e) => !hadBefore.includes(e)),
    [],
    `nothing left in ${tmpdir()} by the runs as nobody`,
  );
  t.equal((await snapshotRouting(topo.client)).text, before.text, 'the outer routes are the same');
});
