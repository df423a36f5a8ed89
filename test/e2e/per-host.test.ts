// Per-host mode end to end: the client namespace's resolver file (its own,
// /etc/netns/NAME/resolv.conf, bind-mounted by `ip netns exec`) is overridden;
// mapped names resolve to fake IPs routed into the TUN; everything else
// resolves and flows as before, past the gateway.
import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createNetns, nsExec, snapshotRouting, spawnInNs } from '../helpers/netns.js';
import { DNS_IP, NGINX_IP, clientResolvConf, fakeDsts, makeTopology, startDnsPeer, startGateway, startNginx, tunsteerArgv, waitForGateway } from '../helpers/topology.js';

t.setTimeout(300_000);
const topo = await makeTopology(t);
await startNginx(t, topo);
await startDnsPeer(t, topo);
const original = `# test resolver\nsearch example.com\nnameserver ${DNS_IP}\noptions timeout:2\n`;
const resolvNow = await clientResolvConf(t, topo.client, original);
const before = await snapshotRouting(topo.client);
const stateDir = join(topo.tmp, 'state');
const args = ['--mode', 'per-host', '--host', 'api.example.com', '--host', '*.corp.example', '--state-dir', stateDir, '--tun-name', 'tsh0'];
let gw = startGateway(t, topo.client, args);
await waitForGateway(topo.client, stateDir, gw);
const dig = async (...a: string[]) => (await nsExec(topo.client, ['dig', '+time=3', '+tries=1', ...a], { allowFail: true })).stdout;
const status = async () => JSON.parse((await nsExec(topo.client, tunsteerArgv(['status', '--state-dir', stateDir, '--json']))).stdout);

let fakeIp = '';
t.test('resolv.conf points at the gateway, search/options kept', async (t) => {
  t.match(resolvNow(), /^nameserver 198\.18\.0\.2$/m);
  t.match(resolvNow(), /^search example\.com$/m);
  t.notMatch(resolvNow(), new RegExp(`nameserver ${DNS_IP.replaceAll('.', '\\.')}`));
});

t.test('a mapped name resolves to a pool address, the same one twice (dig and getent)', async (t) => {
  fakeIp = (await dig('+short', 'api.example.com')).trim();
  t.match(fakeIp, /^198\.1[89]\.\d+\.\d+$/);
  t.equal((await dig('+short', 'api.example.com')).trim(), fakeIp);
  const g = await nsExec(topo.client, ['getent', 'ahostsv4', 'api.example.com']);
  t.equal(g.stdout.split(/\s+/)[0], fakeIp);
  t.match((await dig('+short', 'x.corp.example')).trim(), /^198\.1[89]\./, 'a *.suffix pattern maps too');
  t.match((await dig('+short', 'AAAA', 'api.example.com')).trim(), /^fc00:/, 'AAAA: its IPv6 fake (test/e2e/ipv6.test.ts goes further)');
});

t.test('curl to the mapped name goes through the gateway, which knows the hostname', async (t) => {
  const r = await nsExec(topo.client, ['curl', '-sSf', '--max-time', '10', 'http://api.example.com/hello']);
  t.equal(r.stdout, 'hello from nginx\n');
  const line = await gw.waitForLine((l) => l.includes('"msg":"conn"') && l.includes('"host":"api.example.com"'), 10_000);
  const rec = JSON.parse(line);
  t.ok(fakeDsts(fakeIp, 80).includes(rec.dst), `to the fake IP or its IPv6 twin (curl may prefer IPv6): ${rec.dst}`);
  t.equal(rec.end, 'closed');
});

t.test('a fake IP with no mapping (a stale cached answer) is refused with a RST and logged', async (t) => {
  const n = await nsExec(
    topo.client,
    [
      process.execPath,
      '-e',
      `require('net').connect(80,'198.18.3.3').on('error',e=>{console.log(e.code);process.exit(0)}).on('connect',()=>{console.log('connected');process.exit(1)})`,
    ],
    { timeoutMs: 15_000, allowFail: true },
  );
  t.equal(n.stdout.trim(), 'ECONNREFUSED');
  const line = JSON.parse(await gw.waitForLine((l) => l.includes('198.18.3.3:80'), 5000));
  t.equal(line.end, 'stale-fake-ip');
});

t.test('an unmapped name resolves to its real address and never touches the gateway', async (t) => {
  // the status file is written once per period: let the earlier tests' connections settle in it first
  await new Promise((r) => setTimeout(r, 1200));
  const totalBefore = (await status()).status.counters.proxy_total;
  const linesBefore = gw.stdoutLines().length;
  t.equal((await dig('+short', 'other.example.com')).trim(), NGINX_IP);
  const r = await nsExec(topo.client, ['curl', '-sSf', '--max-time', '10', 'http://other.example.com/hello']);
  t.equal(r.stdout, 'hello from nginx\n');
  await new Promise((r) => setTimeout(r, 1200)); // one status period
  t.equal((await status()).status.counters.proxy_total, totalBefore, 'no connection through the gateway');
  const logged = gw
    .stdoutLines()
    .slice(linesBefore)
    .filter((l) => l.includes(`${NGINX_IP}:80`));
  t.same(logged, [], 'no connection line for the real address');
});

t.test('an unknown name gives NXDOMAIN; a truncated answer makes dig retry over TCP', async (t) => {
  t.match(await dig('nowhere.example.com'), /status: NXDOMAIN/);
  const big = await dig('big.example.com');
  t.match(big, /Truncated, retrying in TCP mode/);
  t.equal((big.match(/IN\s+A\s+203\.0\.113\./g) ?? []).length, 40, 'the full answer over TCP');
});

t.test('normal exit restores resolv.conf and routes byte for byte', async (t) => {
  gw.kill('SIGTERM');
  t.equal((await gw.exited()).code, 0);
  t.equal(resolvNow(), original);
  t.equal((await snapshotRouting(topo.client)).text, before.text);
});

t.test('mappings survive a restart', async (st) => {
  // owned by the file's top level, not this subtest: it must still run (and be killed) in the next one
  gw = startGateway(t, topo.client, args);
  await waitForGateway(topo.client, stateDir, gw);
  st.equal((await dig('+short', 'api.example.com')).trim(), fakeIp);
});

t.test('kill -9 then `tunsteer down` restores resolv.conf and routes byte for byte', async (t) => {
  t.not(resolvNow(), original);
  gw.kill('SIGKILL');
  await gw.exited();
  const d = await nsExec(topo.client, tunsteerArgv(['down', '--state-dir', stateDir]));
  t.equal(d.code, 0);
  t.equal(resolvNow(), original);
  t.equal((await snapshotRouting(topo.client)).text, before.text);
  t.ok(existsSync(join(stateDir, 'fake-ip.json')), 'the mappings stay for the next start');
});

t.test('the same from a config file: mode, hosts, pool, device and state dir', async (t) => {
  const cfgState = join(topo.tmp, 'state-cfg');
  const cfg = join(topo.tmp, 'per-host.yaml');
  writeFileSync(
    cfg,
    `mode: per-host\nhosts: ["cfg.example.com", "*.cfg.example"]\nfake_pool: 198.18.0.0/16\nstate_dir: ${cfgState}\ntun: { name: tsh1 }\nrules:\n  - { domain: blocked.cfg.example, action: reject }\n`,
  );
  const g = spawnInNs(t, topo.client, tunsteerArgv(['up', '--config', cfg]));
  await waitForGateway(topo.client, cfgState, g);
  t.match(resolvNow(), /^nameserver 198\.18\.0\.2$/m);
  t.match((await dig('+short', 'cfg.example.com')).trim(), /^198\.18\.\d+\.\d+$/, 'a configured name maps into the configured pool');
  t.match((await dig('+short', 'x.cfg.example')).trim(), /^198\.18\./);
  t.equal((await dig('+short', 'api.example.com')).trim(), NGINX_IP, 'a name only the flags had named is forwarded now');
  const r = await nsExec(topo.client, ['curl', '-sS', '--max-time', '10', 'http://blocked.cfg.example/hello'], { allowFail: true });
  t.match(r.stdout, /Blocked by tunsteer rule/, "the config file's rules apply");
  g.kill('SIGTERM');
  t.equal((await g.exited()).code, 0);
  t.equal(resolvNow(), original);
  t.equal((await snapshotRouting(topo.client)).text, before.text);
});

// ip netns exec NS without /etc/netns/NS/resolv.conf: the file per-host would rewrite is pid 1's. To test
// that without going near this machine's resolver, the gateway runs in a PID and mount namespace of its
// own, where pid 1 is a shell whose /etc/resolv.conf is a temp file bind-mounted over (checked first).
t.test("per-host refuses to rewrite pid 1's resolv.conf from another namespace, unless told", async (t) => {
  const bare = await createNetns(t, 'tsE-'); // no /etc/netns/<bare>/resolv.conf
  t.notOk(existsSync(`/etc/netns/${bare}`), 'the namespace has no resolv.conf of its own');
  const sentinel = `# tunsteer test ${process.pid}\nnameserver ${DNS_IP}\n`;
  const fake = join(topo.tmp, 'pid1-resolv.conf');
  writeFileSync(fake, sentinel);
  const dir = join(topo.tmp, 'state-shared');
  const inPidNs = (extra: string[]) => {
    const gw = tunsteerArgv(['up', '--mode', 'per-host', '--host', 'api.example.com', '--state-dir', dir, '--tun-name', 'tsh9', ...extra])
      .map((a) => `'${a}'`)
      .join(' ');
    // every step checks it sees the fake file, so nothing can reach the machine's own; `; exit $?` keeps sh (pid 1) from exec'ing away
    const script = `mount --bind '${fake}' /etc/resolv.conf && grep -q 'tunsteer test ${process.pid}' /etc/resolv.conf && ip netns exec ${bare} sh -c "grep -q 'tunsteer test ${process.pid}' /etc/resolv.conf && exec ${gw.replaceAll('"', '\\"')}"; exit $?`;
    return ['unshare', '--mount', '--propagation', 'private', '--pid', '--fork', '--mount-proc', '--kill-child', 'sh', '-c', script];
  };
  const refused = await nsExecPlain(inPidNs([]));
  t.equal(refused.code, 2, refused.stderr);
  t.match(refused.stderr, /--resolv-conf: \/etc\/resolv\.conf is the resolver file of pid 1's network namespace/);
  t.match(refused.stderr, /--shared-resolv-conf/);
  t.equal(readFileSync(fake, 'utf8'), sentinel, 'the file is as it was');

  const told = spawn(inPidNs(['--shared-resolv-conf'])[0], inPidNs(['--shared-resolv-conf']).slice(1), { stdio: 'ignore' });
  t.teardown(() => void told.kill('SIGKILL'));
  let rewritten = '';
  for (let i = 0; i < 200 && !rewritten.includes('nameserver 198.18.0.2'); i++) {
    await new Promise((r) => setTimeout(r, 100));
    rewritten = readFileSync(fake, 'utf8');
  }
  t.match(rewritten, /^nameserver 198\.18\.0\.2$/m, 'with --shared-resolv-conf it does as told');
  // unshare kills its pid 1, and the namespace's other processes with it; the namespace's routes go with it (teardown)
  told.kill('SIGKILL');
  await new Promise((r) => told.once('exit', r));
});

/** A command in this namespace, not inside a test namespace (it makes its own); SIGKILL on timeout: unshare --fork ignores SIGTERM, and its pid 1 too. */
function nsExecPlain(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(argv[0], argv.slice(1), { timeout: 60_000, killSignal: 'SIGKILL', encoding: 'utf8' }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}
