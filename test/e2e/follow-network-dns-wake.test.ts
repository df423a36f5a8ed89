// The network changes under a running gateway, the rest of issue 21: the
// resolvers change (a DHCP client rewrites resolv.conf) under per-host mode,
// which must keep its override and restore the newest original, and under
// route-all's DNS hijack, whose forwarder must follow; and a stall of the
// supervisor (SIGSTOP: its timers fire late, as after a suspend) must get the
// upstream connections checked, so a dead one ends instead of hanging, while
// new connections work at once.
import t from 'tap';
import { renameSync, writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { nsExec, snapshotRouting, spawnNodeInNs } from '../helpers/netns.js';
import { DNS_IP, ROOT, clientResolvConf, makeTopology } from '../helpers/topology.js';
import { upFor } from '../helpers/moving-network.js';

t.setTimeout(600_000);

const DNS2_IP = '203.0.113.54';
const topo = await makeTopology(t);
await nsExec(topo.servers, ['ip', 'addr', 'add', `${DNS_IP}/32`, 'dev', 'lo']);
await nsExec(topo.servers, ['ip', 'addr', 'add', `${DNS2_IP}/32`, 'dev', 'lo']);
// the two resolvers tell themselves apart by other.example.com
for (const [ip, other] of [
  [DNS_IP, '203.0.113.10'],
  [DNS2_IP, '203.0.113.11'],
]) {
  const p = spawnNodeInNs(t, topo.servers, join(ROOT, 'test/helpers/dns-peer.ts'), [ip, `other.example.com=${other}`]);
  await p.waitForLine((l) => l.includes('listening'));
}
const original = `# as DHCP wrote it first\nsearch example.com\nnameserver ${DNS_IP}\n`;
const renewed = `# a new lease\nsearch corp.example\nnameserver ${DNS2_IP}\noptions timeout:1\n`;
const resolvNow = await clientResolvConf(t, topo.client, original);
const resolvFile = `/etc/netns/${topo.client}/resolv.conf`;
const dig = async (...a: string[]) => (await nsExec(topo.client, ['dig', '+time=2', '+tries=1', '+short', ...a], { allowFail: true })).stdout.trim();
const waitFor = async (what: () => boolean | Promise<boolean>, ms = 10_000) => {
  for (const until = Date.now() + ms; Date.now() < until; await new Promise((r) => setTimeout(r, 100))) if (await what()) return true;
  return false;
};

t.test('per-host: resolv.conf rewritten in place by someone else', async (t) => {
  const before = await snapshotRouting(topo.client);
  const stateDir = join(topo.tmp, 'ph');
  const gw = await upFor(t, topo.client, stateDir, ['--mode', 'per-host', '--host', 'api.example.com', '--state-dir', stateDir, '--tun-name', 'tsp0']);
  t.match(resolvNow(), /^nameserver 198\.18\.0\.2$/m);
  t.equal(await dig('other.example.com'), '203.0.113.10', 'forwarded to the first resolver');

  writeFileSync(resolvFile, renewed); // in place, as through the namespace's bind mount
  t.ok(await waitFor(() => /^nameserver 198\.18\.0\.2$/m.test(resolvNow())), 'the override is put back');
  t.match(resolvNow(), /^search corp\.example$/m, "with the new file's search line");
  t.match(resolvNow(), /^options timeout:1$/m);
  const line = JSON.parse(await gw.waitForLine((l) => l.includes('resolv.conf was rewritten'), 10_000));
  t.same(line.upstreams, [DNS2_IP], 'a log line says so, with the new resolvers');
  t.ok(await waitFor(async () => (await dig('other.example.com')) === '203.0.113.11'), 'other names are forwarded to the new resolver');
  t.match(await dig('api.example.com'), /^198\.1[89]\./, 'mapped names still get fake IPs');

  gw.kill('SIGTERM');
  t.equal((await gw.exited()).code, 0, 'exit 0 after a clean stop on SIGTERM');
  t.equal(resolvNow(), renewed, 'on exit: the newest original, not the one found at start');
  t.equal((await snapshotRouting(topo.client)).text, before.text);
  writeFileSync(resolvFile, original);
});

t.test('per-host: a new file renamed over resolv.conf, then kill -9 and `tunsteer down`', async (t) => {
  // a resolv.conf of its own (not the namespace's bind mount), so it can be replaced by rename as DHCP clients do
  const dir = join(topo.tmp, 'etc');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'resolv.conf');
  writeFileSync(file, original);
  const stateDir = join(topo.tmp, 'ph2');
  const gw = await upFor(t, topo.client, stateDir, ['--mode', 'per-host', '--host', 'api.example.com', '--resolv-conf', file, '--state-dir', stateDir, '--tun-name', 'tsp1']);
  t.match(readFileSync(file, 'utf8'), /^nameserver 198\.18\.0\.2$/m);
  writeFileSync(`${file}.new`, renewed);
  renameSync(`${file}.new`, file);
  t.ok(await waitFor(() => /^nameserver 198\.18\.0\.2$/m.test(readFileSync(file, 'utf8'))), 'the replaced file gets the override too');
  t.match(readFileSync(file, 'utf8'), /^search corp\.example$/m);
  const j = JSON.parse(readFileSync(join(stateDir, 'routes.json'), 'utf8'));
  const step = j.steps.find((s: { kind: string }) => s.kind === 'file');
  t.equal(Buffer.from(step.old, 'base64').toString(), renewed, 'the journal keeps the newest original');
  gw.kill('SIGKILL');
  await gw.exited();
  await nsExec(topo.client, [process.execPath, '--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'down', '--state-dir', stateDir]);
  t.equal(readFileSync(file, 'utf8'), renewed, 'after kill -9, `down` restores the newest original');
});

t.test('route-all: the DNS forwarder follows resolv.conf', async (t) => {
  writeFileSync(resolvFile, original);
  const stateDir = join(topo.tmp, 'ra');
  const gw = await upFor(t, topo.client, stateDir, ['--mode', 'route-all', '--state-dir', stateDir, '--tun-name', 'tsr0']);
  // any address:53 is answered by the gateway, which forwards to the system's resolvers
  t.equal(await dig('@198.51.100.99', 'other.example.com'), '203.0.113.10');
  writeFileSync(resolvFile, renewed);
  t.ok(await waitFor(async () => (await dig('@198.51.100.99', 'other.example.com')) === '203.0.113.11'), 'now forwarded to the new resolver');
  const line = JSON.parse(await gw.waitForLine((l) => l.includes('"resolvers changed"'), 5000));
  t.same(line.upstreams, [DNS2_IP]);
  t.equal(resolvNow(), renewed, 'route-all does not touch resolv.conf');
  gw.kill('SIGTERM');
  await gw.exited();
  writeFileSync(resolvFile, original);
});

t.test('after a stall (timers fire late, as after a suspend): a dead upstream connection ends, new ones work at once', async (t) => {
  const PORT = 7200;
  const srv = spawnNodeInNs(t, topo.servers, join(ROOT, 'test/helpers/net-change-peer.ts'), ['server', '203.0.113.12', String(PORT)]);
  await srv.waitForLine((l) => l.includes('listening'));
  const stateDir = join(topo.tmp, 'wake');
  const gw = await upFor(t, topo.client, stateDir, ['--mode', 'route-all', '--state-dir', stateDir, '--tun-name', 'tsw0']);
  // a long download (60 s), which the server's side will silently forget, as a NAT does during a long sleep
  const dl = spawnNodeInNs(t, topo.client, join(ROOT, 'test/helpers/net-change-peer.ts'), ['paced', '203.0.113.12', String(PORT), '600', '100', '90000']);
  await dl.waitForLine((l) => l.includes('"started"'), 20_000);
  const ss = (await nsExec(topo.client, ['ss', '-Htn', 'state', 'established', 'src', '192.0.2.1', 'dst', `203.0.113.12:${PORT}`])).stdout.trim();
  const port = /192\.0\.2\.1:(\d+)/.exec(ss)?.[1];
  t.ok(port, `the gateway's upstream socket (${ss})`);
  await nsExec(topo.servers, ['nft', '-f', '-'], {
    input: `table inet tsw {\n chain inp { type filter hook input priority 0; tcp dport ${PORT} tcp sport ${port} drop; }\n chain outp { type filter hook output priority 0; tcp sport ${PORT} tcp dport ${port} drop; }\n}\n`,
  });
  // the supervisor does not run for 7 s
  process.kill(gw.pid!, 'SIGSTOP');
  await new Promise((r) => setTimeout(r, 7000));
  process.kill(gw.pid!, 'SIGCONT');
  const woke = JSON.parse(await gw.waitForLine((l) => l.includes('timers fired late'), 10_000));
  t.ok(woke.sleptMs >= 5000, `the stall is noticed (${woke.sleptMs} ms)`);
  const probe = JSON.parse(await gw.waitForLine((l) => l.includes('probing upstream connections'), 10_000));
  t.ok(probe.probed >= 1, 'the data plane probes its upstream connections');
  const r = JSON.parse(
    (await nsExec(topo.client, [process.execPath, '--import', 'tsx', join(ROOT, 'test/helpers/net-change-peer.ts'), 'connect', '203.0.113.12', String(PORT)])).stdout
      .trim()
      .split('\n')
      .pop()!,
  );
  t.ok(r.ok, 'a new connection works at once');
  const end = JSON.parse(await dl.waitForLine((l) => l.includes('"outcome"'), 40_000));
  t.equal(end.outcome, 'error', `the dead connection ends (keepalive), not after the client's own 90 s: ${JSON.stringify(end)}`);
  t.equal(end.code, 'ECONNRESET');
  const st = (await nsExec(topo.client, [process.execPath, '--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'status', '--state-dir', stateDir])).stdout;
  t.match(st, /woke +\d{4}-\S+ after \d+ s \(late-timers\)/, '`tunsteer status` shows the wake with its time');
  gw.kill('SIGTERM');
  await gw.exited();
});
