// Stack workers end to end (--workers 4): a multi-queue TUN, one worker
// thread per queue, the DNS and fake-IP pool owned by the data plane's
// thread. Per-host mode, so names, fake IPs and connections all cross the
// workers: 200 concurrent downloads byte-exact, every mapped name known on
// every queue, a worker that dies restarted on its queue with the gateway
// whole, and a clean stop.
import t from 'tap';
import { join } from 'node:path';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { nsExec, snapshotRouting, spawnInNs } from '../helpers/netns.js';
import { DNS_IP, NGINX_IP, clientResolvConf, makeTopology, startDnsPeer, startGateway, startNginx, tunsteerArgv, waitForGateway } from '../helpers/topology.js';

t.setTimeout(600_000);
const WORKERS = 4;
const PARALLEL = 200;
const NAMES = 48;

const topo = await makeTopology(t);
await startNginx(t, topo);
const names = Array.from({ length: NAMES }, (_, i) => `n${i}.corp.example`);
await startDnsPeer(t, topo, Object.fromEntries(names.map((n) => [n, [NGINX_IP]])));
await nsExec(topo.servers, ['sh', '-c', `head -c 1048576 /dev/urandom > ${topo.www}/1m.bin`]);
const sha1m = (await nsExec(topo.servers, ['sha256sum', `${topo.www}/1m.bin`])).stdout.split(' ')[0];
const original = `nameserver ${DNS_IP}\noptions timeout:2\n`;
const resolvNow = await clientResolvConf(t, topo.client, original);
const before = await snapshotRouting(topo.client);
const stateDir = join(topo.tmp, 'state');
// the data plane runs as nobody: the trigger lives where nobody can see it
const triggerDir = mkdtempSync(join(tmpdir(), 'tsw-trigger-'));
chmodSync(triggerDir, 0o755);
t.teardown(() => rmSync(triggerDir, { recursive: true, force: true }));
const crashTrigger = join(triggerDir, 'crash-worker-1');
const gw = startGateway(
  t,
  topo.client,
  [
    '--mode',
    'per-host',
    '--host',
    'api.example.com',
    '--host',
    '*.corp.example',
    '--state-dir',
    stateDir,
    '--tun-name',
    'tsw0',
    '--workers',
    String(WORKERS),
    '--metrics',
    '127.0.0.1:9464',
  ],
  {
    env: { ...process.env, TUNSTEER_TEST_WORKER_CRASH: `1:${crashTrigger}` },
  },
);
await waitForGateway(topo.client, stateDir, gw, 60_000);
const status = async () => JSON.parse((await nsExec(topo.client, tunsteerArgv(['status', '--state-dir', stateDir, '--json']))).stdout).status.counters;
const dig = async (name: string) => (await nsExec(topo.client, ['dig', '+time=3', '+tries=2', '+short', name], { allowFail: true })).stdout.trim();

/** PARALLEL downloads of 1m.bin at once (curl --parallel; IPv4 only, so no happy-eyeballs race adds connections), each file's sha256. */
async function parallelDownloads(host: string): Promise<string[]> {
  const dir = join(topo.tmp, `dl-${Date.now()}`);
  const r = await nsExec(
    topo.client,
    [
      'sh',
      '-c',
      `mkdir -p ${dir} && cd ${dir} && curl -4 -sS --max-time 60 -Z --parallel-max ${PARALLEL} --parallel-immediate -o 'f#1' 'http://${host}/1m.bin?[1-${PARALLEL}]' && sha256sum f*`,
    ],
    { timeoutMs: 120_000, allowFail: true },
  );
  if (r.code !== 0) t.comment(`curl: ${r.stderr.slice(0, 2000)}`);
  return r.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(/\s+/)[0]);
}

/** Fetches every name once, in parallel; returns how many of the names the gateway's lines for those connections carry. */
async function fetchEveryName(): Promise<number> {
  const from = gw.stdoutLines().length;
  const r = await nsExec(topo.client, ['sh', '-c', names.map((n) => `curl -sSf --max-time 20 -o /dev/null http://${n}/1m.bin &`).join(' ') + ' wait'], {
    timeoutMs: 60_000,
    allowFail: true,
  });
  t.equal(r.stderr, '', 'every name fetched');
  // a line is written at a connection's end; curl's happy-eyeballs loser (IPv4 or IPv6) ends first,
  // so wait for every name, not for a count of lines
  const seen = () =>
    new Set(
      gw
        .stdoutLines()
        .slice(from)
        .filter((l) => l.includes('"msg":"conn"') && l.includes('corp.example'))
        .map((l) => JSON.parse(l).host as string),
    );
  for (const until = Date.now() + 10_000; names.some((n) => !seen().has(n)) && Date.now() < until;) await new Promise((r) => setTimeout(r, 100));
  const known = seen();
  return names.filter((n) => known.has(n)).length;
}

const fakes = new Map<string, string>();

t.test(`${WORKERS} workers run, one per queue`, async (t) => {
  const c = await status();
  t.equal(c.workers, WORKERS);
  t.equal(c.worker_restarts, 0);
  const q = await nsExec(topo.client, ['sh', '-c', 'ls /sys/class/net/tsw0/queues | grep -c rx-']);
  t.equal(Number(q.stdout.trim()), WORKERS, 'the TUN has a queue per worker');
});

t.test('DNS answers and fake IPs are the same whichever queue asks', async (t) => {
  // each dig comes from its own source port: the kernel spreads them over the queues
  for (const n of names) fakes.set(n, await dig(n));
  t.ok(
    [...fakes.values()].every((ip) => /^198\.1[89]\.\d+\.\d+$/.test(ip)),
    'every name got a fake IP',
  );
  t.equal(new Set(fakes.values()).size, NAMES, 'one fake per name');
  const again = await Promise.all(names.map((n) => dig(n)));
  t.same(
    again,
    names.map((n) => fakes.get(n)),
    'asked again (other ports, other queues): the same fakes',
  );
  t.equal(await fetchEveryName(), NAMES, 'a connection to each fake, on whichever worker, knows its name');
});

t.test(`${PARALLEL} concurrent downloads through ${WORKERS} workers, byte-exact`, async (t) => {
  const from = gw.stdoutLines().length;
  const got = await parallelDownloads('api.example.com');
  t.equal(got.length, PARALLEL, `${PARALLEL} files`);
  t.equal(got.filter((h) => h === sha1m).length, PARALLEL, 'every file byte-exact');
  const conns = () =>
    gw
      .stdoutLines()
      .slice(from)
      .filter((l) => l.includes('"msg":"conn"') && l.includes('"host":"api.example.com"'));
  for (const until = Date.now() + 10_000; conns().length < PARALLEL && Date.now() < until;) await new Promise((r) => setTimeout(r, 100));
  t.equal(conns().length, PARALLEL, 'one line per connection');
  t.ok(
    conns().every((l) => JSON.parse(l).down >= 1048576),
    'each line counts the whole file',
  );
  // the status and the metrics sum the workers' counters (a worker reports once a second)
  await new Promise((r) => setTimeout(r, 1500));
  t.ok((await status()).proxy_total >= PARALLEL + NAMES, "status: the workers' connections summed");
  const m = (await nsExec(topo.client, ['curl', '-sS', 'http://127.0.0.1:9464/metrics'])).stdout;
  const total = Number(/^tunsteer_connections_total\{outcome="all"\} (\d+)/m.exec(m)?.[1]);
  t.ok(total >= PARALLEL + NAMES, `metrics: connections summed over the workers (${total})`);
  const bytes = Number(/^tunsteer_bytes_total\{direction="down"\} (\d+)/m.exec(m)?.[1]);
  t.ok(bytes >= PARALLEL * 1048576, `metrics: bytes summed (${bytes})`);
});

t.test('a worker that dies is restarted on its queue; every flow works after', async (t) => {
  writeFileSync(crashTrigger, '');
  await gw.waitForLine((l) => l.includes('data plane worker died; restarting it on its queue'), 15_000);
  let c = await status();
  for (const until = Date.now() + 15_000; c.worker_restarts !== 1 && Date.now() < until;) {
    await new Promise((r) => setTimeout(r, 300));
    c = await status();
  }
  t.equal(c.worker_restarts, 1, 'status counts the restart');
  t.equal(c.workers, WORKERS);
  t.equal(gw.exitCode, null, 'the gateway runs on');
  // the restarted worker got every mapping: the names of all fakes are still known on every queue
  t.equal(await fetchEveryName(), NAMES, 'every name still known, whichever worker');
  const got = await parallelDownloads('api.example.com');
  t.equal(got.filter((h) => h === sha1m).length, PARALLEL, `${PARALLEL} concurrent downloads byte-exact after the restart`);
  t.same(
    await Promise.all(names.map((n) => dig(n))),
    names.map((n) => fakes.get(n)),
    'the same fakes after the restart',
  );
});

t.test('SIGTERM with connections open on every worker: one gateway-stop line each, the count in "restored"', async (t) => {
  const HELD = 16;
  // slow downloads (10 KB/s of a 1 MB file) from HELD source ports: open on the queues the kernel picked
  const slow = spawnInNs(t, topo.client, ['sh', '-c', `for i in $(seq ${HELD}); do curl -4 -s --limit-rate 10k -o /dev/null http://api.example.com/1m.bin & done; wait`]);
  let c = await status();
  // until the count settles at HELD: the status is a second old at most, and the earlier tests' connections may still be ending
  for (const until = Date.now() + 20_000; c.proxy_active !== HELD && Date.now() < until;) {
    await new Promise((r) => setTimeout(r, 300));
    c = await status();
  }
  t.equal(c.proxy_active, HELD, 'the workers report them open');
  const from = gw.stdoutLines().length;
  gw.kill('SIGTERM');
  t.equal((await gw.exited()).code, 0);
  const recs = gw
    .stdoutLines()
    .slice(from)
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
  const stopped = recs.filter((r) => r.msg === 'conn' && r.end === 'gateway-stop');
  t.equal(stopped.length, HELD, 'one gateway-stop line per open connection');
  t.equal(new Set(stopped.map((r) => r.src)).size, HELD, 'each its own connection');
  const restored = recs.find((r) => /^restored, \d+ connections? closed$/.test(r.msg));
  t.equal(restored?.closed, HELD, `"restored, ${HELD} connections closed"`);
  t.equal(resolvNow(), original);
  t.equal((await snapshotRouting(topo.client)).text, before.text);
  slow.kill('SIGTERM');
});

t.test('a worker that keeps dying ends the gateway with its routes restored, never half of it', async (t) => {
  const stateDir2 = join(topo.tmp, 'state2');
  const trigger = join(triggerDir, 'crash-always');
  const g = startGateway(t, topo.client, ['--mode', 'per-host', '--host', 'api.example.com', '--state-dir', stateDir2, '--tun-name', 'tsw1', '--workers', '2'], {
    env: { ...process.env, TUNSTEER_TEST_WORKER_CRASH: `0:${trigger}:always` },
  });
  // up first, so the deaths are the running gateway's (a start that fails is another path)
  await waitForGateway(topo.client, stateDir2, g, 60_000);
  writeFileSync(trigger, '');
  const { code } = await g.exited();
  t.equal(code, 1, 'the gateway exits 1');
  t.ok(
    g.stdoutLines().some((l) => l.includes('data plane workers keep dying')),
    'and says why',
    { stderr: g.stderrText().slice(-1500), stdout: g.stdoutLines().slice(-8) },
  );
  t.equal(resolvNow(), original, 'resolv.conf restored');
  t.equal((await snapshotRouting(topo.client)).text, before.text, 'routes restored');
});

t.test('the supervisor killed while its workers start: no data plane is left behind', async (t) => {
  const stateDir3 = join(topo.tmp, 'state3');
  // worker 0 says when it has loaded (the test-fault line, its trigger never made): the others
  // are loading then, the data plane not yet up, and its threads keep the process alive
  const g = startGateway(t, topo.client, ['--mode', 'route-all', '--state-dir', stateDir3, '--tun-name', 'tsw2', '--workers', String(WORKERS)], {
    env: { ...process.env, TUNSTEER_TEST_WORKER_CRASH: `0:${join(triggerDir, 'never')}` },
  });
  const line = await g.waitForLine((l) => l.includes('"worker":0') && l.includes('TEST FAULT'), 60_000);
  const readyBefore = g.stdoutLines().some((l) => l.includes('data plane running'));
  g.kill('SIGKILL');
  const child: number = JSON.parse(line).pid;
  t.ok(child > 0 && child !== g.pid, 'the data plane had started');
  await g.exited();
  const alive = () => {
    try {
      process.kill(child, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (const until = Date.now() + 30_000; alive() && Date.now() < until;) await new Promise((r) => setTimeout(r, 100));
  t.notOk(alive(), `the data plane went with its supervisor${readyBefore ? ' (it was up already)' : ' (killed while it started)'}`);
  if (alive()) process.kill(child, 'SIGKILL');
  const d = await nsExec(topo.client, tunsteerArgv(['down', '--state-dir', stateDir3]));
  t.equal(d.code, 0, '`tunsteer down` restores');
  t.equal((await snapshotRouting(topo.client)).text, before.text, 'routes restored');
});
