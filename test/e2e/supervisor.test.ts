// Crash-safe routing and least privilege: `tunsteer up` is a root supervisor
// that owns routes and DNS and runs the data plane as a child without root.
// The child is killed with -9 mid-transfer (routes restored at once, or the
// child restarted with --restart), everything is killed with -9 (then
// `tunsteer down`), and a second start is refused.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { nsExec, snapshotRouting } from '../helpers/netns.js';
import { DNS_IP, NGINX_IP, clientResolvConf, makeTopology, startDnsPeer, startGateway, startNginx, tunsteerArgv, waitForGateway } from '../helpers/topology.js';

t.setTimeout(300_000);
const topo = await makeTopology(t);
await Promise.all([startNginx(t, topo), startDnsPeer(t, topo)]);
await nsExec(topo.servers, ['sh', '-c', `head -c 200M /dev/zero > ${topo.www}/200m.bin`]);
const original = `# supervisor test\nnameserver ${DNS_IP}\n`;
const resolvNow = await clientResolvConf(t, topo.client, original);
const before = await snapshotRouting(topo.client);

const statusOf = async (dir: string) => JSON.parse((await nsExec(topo.client, tunsteerArgv(['status', '--state-dir', dir, '--json']), { allowFail: true })).stdout);
const procStatus = (pid: number) => readFileSync(`/proc/${pid}/status`, 'utf8');
const field = (text: string, name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(text)?.[1] ?? '';
const curl = (args: string[], timeoutMs = 15_000) => nsExec(topo.client, ['curl', '-sS', ...args], { timeoutMs, allowFail: true });
const alive = (pid: number) => {
  try {
    return !/^State:\s*Z/m.test(procStatus(pid));
  } catch {
    return false;
  }
};

t.test('the data plane runs as nobody with no capabilities; the supervisor reports it; a second start is refused', async (t) => {
  const dir = join(topo.tmp, 'state-a');
  const gw = startGateway(t, topo.client, ['--mode', 'route-all', '--state-dir', dir, '--tun-name', 'tss0']);
  await waitForGateway(topo.client, dir, gw);
  const report = JSON.parse(await gw.waitForLine((l) => l.includes('data plane running')));
  t.equal(report.user, 'nobody', 'the startup report says who the data plane runs as');
  const st = (await statusOf(dir)).status;
  t.equal(st.dataPlane.pid, report.dataPlanePid);
  const ps = procStatus(st.dataPlane.pid);
  t.match(field(ps, 'Uid'), /^65534\s+65534\s+65534\s+65534$/, 'real, effective, saved and fs uid are nobody');
  t.equal(field(ps, 'CapEff'), '0000000000000000', 'no effective capabilities');
  t.equal(field(ps, 'CapPrm'), '0000000000000000', 'no permitted capabilities');
  t.equal(field(procStatus(gw.pid!), 'Uid').split(/\s+/)[1], '0', 'the supervisor keeps root for the restore');
  const r = await curl(['--max-time', '10', `http://${NGINX_IP}/hello`]);
  t.equal(r.stdout, 'hello from nginx\n', 'traffic flows through the unprivileged data plane');

  const twice = await nsExec(topo.client, tunsteerArgv(['up', '--mode', 'route-all', '--state-dir', dir, '--tun-name', 'tss9']), { allowFail: true });
  t.not(twice.code, 0, 'a second start with the same state dir fails');
  t.match(twice.stderr, /already runs|in use/, `with a clear message: ${twice.stderr.trim()}`);

  gw.kill('SIGTERM');
  t.equal((await gw.exited()).code, 0);
  t.notOk(alive(st.dataPlane.pid), 'the data plane is gone with it');
  t.equal((await snapshotRouting(topo.client)).text, before.text);
});

t.test('kill -9 of the data plane mid-transfer: the supervisor restores the routes at once and exits', async (t) => {
  const dir = join(topo.tmp, 'state-b');
  const gw = startGateway(t, topo.client, ['--mode', 'route-all', '--state-dir', dir, '--tun-name', 'tss1']);
  await waitForGateway(topo.client, dir, gw);
  const dp = (await statusOf(dir)).status.dataPlane.pid as number;
  const transfer = curl(['--max-time', '30', '--limit-rate', '20M', '-o', '/dev/null', `http://${NGINX_IP}/200m.bin`], 40_000);
  await new Promise((r) => setTimeout(r, 1500));
  const t0 = Date.now();
  process.kill(dp, 'SIGKILL');
  const e = await gw.exited();
  const ms = Date.now() - t0;
  t.equal(e.code, 1, 'the supervisor exits 1: its data plane died');
  t.ok(ms < 5000, `within ${ms} ms of the kill`);
  t.equal((await snapshotRouting(topo.client)).text, before.text, 'routes and rules are the originals');
  t.not((await transfer).code, 0, 'the interrupted transfer fails (it cannot complete)');
  const direct = await curl(['--max-time', '10', `http://${NGINX_IP}/hello`]);
  t.equal(direct.stdout, 'hello from nginx\n', 'the machine is reachable directly again');
});

t.test('--restart: a killed data plane is replaced, routes kept, a new connection works within 2 s', async (t) => {
  const dir = join(topo.tmp, 'state-c');
  const gw = startGateway(t, topo.client, ['--mode', 'route-all', '--state-dir', dir, '--tun-name', 'tss2', '--restart']);
  await waitForGateway(topo.client, dir, gw);
  const up = await snapshotRouting(topo.client);
  const dp = (await statusOf(dir)).status.dataPlane.pid as number;
  const transfer = curl(['--max-time', '30', '--limit-rate', '20M', '-o', '/dev/null', `http://${NGINX_IP}/200m.bin`], 40_000);
  await new Promise((r) => setTimeout(r, 1500));
  const t0 = Date.now();
  process.kill(dp, 'SIGKILL');
  let ok = -1;
  for (let i = 0; i < 40 && ok < 0; i++) {
    const r = await curl(['--max-time', '1', `http://${NGINX_IP}/hello`], 5000);
    if (r.stdout === 'hello from nginx\n') ok = Date.now() - t0;
  }
  t.ok(ok >= 0 && ok < 2000, `a new connection works ${ok} ms after the kill`);
  t.equal(gw.exitCode, null, 'the supervisor still runs');
  t.equal((await snapshotRouting(topo.client)).text, up.text, 'the routes were never taken down');
  await transfer; // its connection died with the old data plane (a RST from the new one)
  const line = JSON.parse(await gw.waitForLine((l) => l.includes('data plane running') && l.includes('"restarts":1')));
  t.not(line.dataPlanePid, dp, 'a new process');
  gw.kill('SIGTERM');
  t.equal((await gw.exited()).code, 0);
  t.equal((await snapshotRouting(topo.client)).text, before.text);
});

t.test('kill -9 of everything in per-host mode, then `tunsteer down`: routes, rules and resolv.conf are the originals', async (t) => {
  const dir = join(topo.tmp, 'state-d');
  const gw = startGateway(t, topo.client, ['--mode', 'per-host', '--host', 'api.example.com', '--state-dir', dir, '--tun-name', 'tss3']);
  await waitForGateway(topo.client, dir, gw);
  t.not(resolvNow(), original, 'resolv.conf overridden while up');
  const dp = (await statusOf(dir)).status.dataPlane.pid as number;
  gw.kill('SIGKILL');
  process.kill(dp, 'SIGKILL');
  await gw.exited();
  const st = await statusOf(dir);
  t.equal(st.running, false, 'status: not running');
  const d = await nsExec(topo.client, tunsteerArgv(['down', '--state-dir', dir]));
  t.equal(d.code, 0, d.stdout + d.stderr);
  t.equal(resolvNow(), original, 'resolv.conf byte for byte');
  t.equal((await snapshotRouting(topo.client)).text, before.text, 'routes and rules byte for byte');
});

t.test('kill -9 of the supervisor alone: the orphaned data plane goes too, and `down` restores', async (t) => {
  const dir = join(topo.tmp, 'state-e');
  const gw = startGateway(t, topo.client, ['--mode', 'route-all', '--state-dir', dir, '--tun-name', 'tss4']);
  await waitForGateway(topo.client, dir, gw);
  const dp = (await statusOf(dir)).status.dataPlane.pid as number;
  gw.kill('SIGKILL');
  await gw.exited();
  for (let i = 0; i < 100 && alive(dp); i++) await new Promise((r) => setTimeout(r, 20));
  t.notOk(alive(dp), 'the data plane noticed its supervisor is gone and exited');
  const d = await nsExec(topo.client, tunsteerArgv(['down', '--state-dir', dir]));
  t.equal(d.code, 0);
  t.equal((await snapshotRouting(topo.client)).text, before.text);
});
