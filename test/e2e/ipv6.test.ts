// IPv6 end to end (issue 8): route-all steers ::/0 through the TUN with its own
// bypass rules, per-host gives mapped names IPv6 fakes from fc00::/18, and
// --ipv6 off refuses IPv6 at the TUN so nothing leaks. Client and servers
// namespaces as in the IPv4 tests, plus 2001:db8:1::/64 on the veth and test
// hosts on 2001:db8:10::/64 in the servers namespace.
import t from 'tap';
import { join } from 'node:path';
import { createNetns, nsExec, snapshotRouting, veth } from '../helpers/netns.js';
import {
  CLIENT_IP6,
  DNS_IP,
  IPERF_IP6,
  NGINX_IP6,
  ROOT,
  addIpv6,
  clientResolvConf,
  makeTopology,
  startDnsPeer,
  startGateway,
  startNginx,
  tunsteerArgv,
  waitForGateway,
  waitForPort,
} from '../helpers/topology.js';
import { spawnInNs } from '../helpers/netns.js';

t.setTimeout(600_000);

const TUN_ULA = 'fd84:ff6e:64cb::1';
const topo = await makeTopology(t);
await addIpv6(topo);
await startNginx(t, topo, { ipv6: true });
await waitForPort(topo.servers, `[${NGINX_IP6}]`, 80);
spawnInNs(t, topo.servers, ['iperf3', '-s', '-B', IPERF_IP6]);
await waitForPort(topo.servers, `[${IPERF_IP6}]`, 5201);
await startDnsPeer(t, topo);
const udpEcho = spawnInNs(t, topo.servers, [process.execPath, '--import', 'tsx', join(ROOT, 'test/helpers/udp-peer.ts'), 'server', NGINX_IP6, '5400']);
await udpEcho.waitForLine((l) => l.includes('listening'));
await nsExec(topo.servers, ['sh', '-c', `head -c 1024 /dev/urandom > ${topo.www}/1k.bin && head -c 100M /dev/urandom > ${topo.www}/100m.bin`]);
const sha = async (file: string) => (await nsExec(topo.servers, ['sha256sum', file])).stdout.split(' ')[0];
const sha1k = await sha(`${topo.www}/1k.bin`);
const sha100m = await sha(`${topo.www}/100m.bin`);
const original = `# test resolver\nnameserver ${DNS_IP}\n`;
const resolvNow = await clientResolvConf(t, topo.client, original);

// the direct path works before any gateway runs
const direct = (await nsExec(topo.client, ['curl', '-6', '-sSf', '--max-time', '5', `http://[${NGINX_IP6}]/hello`])).stdout;
if (direct !== 'hello from nginx\n') throw new Error(`IPv6 not reachable directly: ${direct}`);
const before = await snapshotRouting(topo.client);
if (!/default via 2001:db8:1::2/.test(before.route6)) throw new Error(`no IPv6 default route: ${before.route6}`);

/** Packets the servers namespace received over IPv6 from the client's prefix (an nft counter made on the call). */
async function ipv6Counter() {
  await nsExec(topo.servers, ['nft', '-f', '-'], {
    input: 'table inet tsv6count {\n  chain pre {\n    type filter hook prerouting priority -300;\n    ip6 saddr 2001:db8:1::/64 ip6 daddr 2001:db8:10::/64 counter\n  }\n}\n',
  });
  return async () => {
    const r = await nsExec(topo.servers, ['nft', 'list', 'table', 'inet', 'tsv6count']);
    return Number(/counter packets (\d+)/.exec(r.stdout)?.[1] ?? 'NaN');
  };
}

/** A TCP connect from the client: its outcome and how long it took. */
async function timedConnect(host: string, port: number): Promise<{ outcome: string; ms: number }> {
  const js =
    `const t0=performance.now();const s=require('net').connect({host:'${host}',port:${port}});` +
    `s.on('connect',()=>{console.log(JSON.stringify({outcome:'connected',ms:performance.now()-t0}));process.exit(0)});` +
    `s.on('error',e=>{console.log(JSON.stringify({outcome:e.code,ms:performance.now()-t0}));process.exit(0)});` +
    `setTimeout(()=>{console.log(JSON.stringify({outcome:'timeout',ms:performance.now()-t0}));process.exit(0)},10000)`;
  const r = await nsExec(topo.client, [process.execPath, '-e', js], { timeoutMs: 20_000 });
  return JSON.parse(r.stdout.trim()) as { outcome: string; ms: number };
}

t.test('route-all with IPv6 on', async (t) => {
  const stateDir = join(topo.tmp, 'state-ra');
  const gw = startGateway(t, topo.client, [
    '--mode',
    'route-all',
    '--state-dir',
    stateDir,
    '--tun-name',
    'tsv0',
    '--connect-timeout',
    '1500',
    '--listen',
    '127.0.0.1:18080',
    '--udp-idle-timeout',
    '2000',
  ]);
  await waitForGateway(topo.client, stateDir, gw);

  t.test("::/0 goes into the TUN, the gateway's own IPv6 source stays direct", async (t) => {
    t.match((await nsExec(topo.client, ['ip', '-6', 'route', 'get', NGINX_IP6])).stdout, /dev tsv0/);
    t.match((await nsExec(topo.client, ['ip', '-6', 'route', 'get', NGINX_IP6, 'from', CLIENT_IP6])).stdout, /via 2001:db8:1::2/);
    const rules = (await nsExec(topo.client, ['ip', '-6', 'rule', 'show'])).stdout;
    t.match(rules, /9000:\s+from 2001:db8:1::1 lookup main/);
    t.match(rules, /lookup main suppress_prefixlength 0/);
    t.match(rules, /lookup 2022/);
    t.match((await nsExec(topo.client, ['ip', '-6', 'addr', 'show', 'dev', 'tsv0'])).stdout, new RegExp(`inet6 ${TUN_ULA}/64`), 'the TUN has its ULA');
    const up = JSON.parse(await gw.waitForLine((l) => l.includes('"gateway up"'), 5000));
    t.same(up.uplink6, { dev: up.uplink.dev, gateway: '2001:db8:1::2', source: CLIENT_IP6 }, 'IPv6 uplink discovered');
    const st = (await nsExec(topo.client, tunsteerArgv(['status', '--state-dir', stateDir]))).stdout;
    t.match(st, /uplink6\s+\S+ via 2001:db8:1::2, sockets bound to 2001:db8:1::1/, 'status shows the IPv6 uplink');
    t.match(st, /ip -6 route add default dev tsv0 table 2022/, 'and the IPv6 steps');
  });

  t.test('curl -6 downloads 1 KB and 100 MB byte-exact', async (t) => {
    const small = await nsExec(topo.client, ['sh', '-c', `curl -6 -sSf http://[${NGINX_IP6}]/1k.bin | sha256sum`]);
    t.equal(small.stdout.split(' ')[0], sha1k);
    const t0 = performance.now();
    const big = await nsExec(topo.client, ['sh', '-c', `curl -6 -sSf http://[${NGINX_IP6}]/100m.bin | sha256sum`], { timeoutMs: 120_000 });
    const secs = (performance.now() - t0) / 1000;
    t.equal(big.stdout.split(' ')[0], sha100m);
    t.comment(`100 MB over IPv6 through the gateway: ${secs.toFixed(2)} s (${((100 * 8) / secs / 1000).toFixed(2)} Gbit/s)`);
    const line = await gw.waitForLine((l) => l.includes(`"dst":"[${NGINX_IP6}]:80"`) && l.includes('"msg":"conn"'), 10_000);
    t.ok(JSON.parse(line).src.startsWith(`[${TUN_ULA}]:`), `the client is the TUN's ULA: ${JSON.parse(line).src}`);
  });

  t.test('iperf3 -6 for 5 s each direction', async (t) => {
    for (const reverse of [false, true]) {
      const r = await nsExec(topo.client, ['iperf3', '-6', '-c', IPERF_IP6, '-t', '5', '-J', ...(reverse ? ['-R'] : [])], { timeoutMs: 60_000, allowFail: true });
      const j = JSON.parse(r.stdout);
      t.notOk(j.error, `no iperf3 error: ${j.error ?? ''}`);
      const gbit = j.end?.sum_received?.bits_per_second / 1e9;
      t.ok(j.end?.sum_received?.bytes > 0, `iperf3 -6 ${reverse ? 'download' : 'upload'}: ${gbit.toFixed(2)} Gbit/s`);
    }
  });

  t.test('UDP over IPv6: 300 datagrams echoed through the gateway, logged as a udp flow', async (t) => {
    const r = await nsExec(topo.client, [process.execPath, '--import', 'tsx', join(ROOT, 'test/helpers/udp-peer.ts'), 'echo', NGINX_IP6, '5400', '300', '16'], {
      allowFail: true,
      timeoutMs: 90_000,
    });
    const res = JSON.parse(r.stdout.trim().split('\n').pop() || '{}');
    t.equal(res.ok, true, JSON.stringify(res));
    t.equal(res.lost, 0, 'none lost');
    const line = await gw.waitForLine((l) => l.includes('"proto":"udp"') && l.includes(`[${NGINX_IP6}]:5400`), 15_000);
    t.match(JSON.parse(line).src, new RegExp(`^\\[${TUN_ULA}\\]:`), "from the TUN's ULA");
  });

  t.test('DNS to any IPv6 address:53 is answered by the gateway (hijack), --dry-run shows the IPv6 plan', async (t) => {
    // 2001:db8:10::99 exists nowhere: only the gateway can answer
    const a = await nsExec(topo.client, ['dig', '+time=3', '+tries=1', '+short', '@2001:db8:10::99', 'A', 'other.example.com'], { allowFail: true });
    t.equal(a.stdout.trim(), '203.0.113.10', 'answered (forwarded to the resolver resolv.conf names)');
    const dry = await nsExec(topo.client, tunsteerArgv(['up', '--mode', 'route-all', '--dry-run', '--exclude', '2001:db8:99::/48', '--state-dir', join(topo.tmp, 'dry6')]));
    t.match(dry.stdout, /# IPv6 uplink \S+ via 2001:db8:1::2, gateway sockets bind 2001:db8:1::1/);
    t.match(dry.stdout, /ip -6 rule add to 2001:db8:99::\/48 lookup main priority 9003/);
    t.match(dry.stdout, /ip -6 rule add to 2001:db8:1::2\/128 lookup main priority 9002/, 'a global next hop stays direct');
    t.match(dry.stdout, /ip -6 rule add lookup 2022 priority 9005/);
  });

  t.test('the explicit proxy dials a name with only IPv6 addresses from the IPv6 uplink address', async (t) => {
    const r = await nsExec(topo.client, ['curl', '-sS', '--max-time', '10', '-x', 'http://127.0.0.1:18080', 'http://v6.example.com/hello'], { allowFail: true });
    t.equal(r.stdout, 'hello from nginx\n', r.stderr);
  });

  t.test('exit restores ip -6 route/rule byte for byte', async (t) => {
    gw.kill('SIGTERM');
    t.equal((await gw.exited()).code, 0);
    const after = await snapshotRouting(topo.client);
    t.equal(after.route6, before.route6, 'ip -6 route show table all');
    t.equal(after.rule6, before.rule6, 'ip -6 rule show');
    t.equal(after.text, before.text, 'and IPv4');
  });
});

t.test('route-all: kill -9 then `tunsteer down` restores IPv6 routes and rules', async (t) => {
  const dir = join(topo.tmp, 'state-k9');
  const gw = startGateway(t, topo.client, ['--mode', 'route-all', '--state-dir', dir, '--tun-name', 'tsv1', '--exclude', '2001:db8:99::/48']);
  await waitForGateway(topo.client, dir, gw);
  const during = await snapshotRouting(topo.client);
  t.match(during.rule6, /to 2001:db8:99::\/48 lookup main/, 'an IPv6 exclude is a rule');
  t.not(during.route6, before.route6);
  gw.kill('SIGKILL');
  await gw.exited();
  t.equal((await nsExec(topo.client, tunsteerArgv(['down', '--state-dir', dir]))).code, 0);
  const after = await snapshotRouting(topo.client);
  t.equal(after.route6, before.route6, 'ip -6 route show table all');
  t.equal(after.rule6, before.rule6, 'ip -6 rule show');
  t.equal(after.text, before.text);
});

t.test('route-all --ipv6 off: IPv6 connects fail fast, nothing reaches the servers, nothing leaks', async (t) => {
  const stateDir = join(topo.tmp, 'state-off');
  const gw = startGateway(t, topo.client, ['--mode', 'route-all', '--ipv6', 'off', '--state-dir', stateDir, '--tun-name', 'tsv2']);
  await waitForGateway(topo.client, stateDir, gw);
  t.match((await nsExec(topo.client, ['ip', '-6', 'route', 'get', NGINX_IP6])).stdout, /dev tsv2/, '::/0 still into the TUN');
  const count = await ipv6Counter();
  const c = await timedConnect(NGINX_IP6, 80);
  t.not(c.outcome, 'connected');
  t.not(c.outcome, 'timeout');
  t.ok(c.ms < 1000, `refused in ${c.ms.toFixed(1)} ms (${c.outcome})`);
  const curl = await nsExec(topo.client, ['curl', '-6', '-sS', '--max-time', '5', `http://[${NGINX_IP6}]/hello`], { allowFail: true });
  t.not(curl.code, 0, `curl -6 fails: ${curl.stderr.trim()}`);
  t.equal(await count(), 0, 'no IPv6 packet from the client reached the servers namespace');
  // IPv4 is untouched by the switch
  t.equal((await nsExec(topo.client, ['curl', '-sSf', '--max-time', '5', 'http://203.0.113.10/hello'])).stdout, 'hello from nginx\n');
  gw.kill('SIGTERM');
  t.equal((await gw.exited()).code, 0);
  t.equal((await snapshotRouting(topo.client)).text, before.text);
  await nsExec(topo.servers, ['nft', 'delete', 'table', 'inet', 'tsv6count']);
});

t.test('per-host: AAAA of a mapped name is an IPv6 fake, curl -6 to the name goes through the gateway', async (t) => {
  const stateDir = join(topo.tmp, 'state-ph');
  const gw = startGateway(t, topo.client, ['--mode', 'per-host', '--host', 'v6.example.com', '--host', 'api.example.com', '--state-dir', stateDir, '--tun-name', 'tsv3']);
  await waitForGateway(topo.client, stateDir, gw);
  const dig = async (...a: string[]) => (await nsExec(topo.client, ['dig', '+time=3', '+tries=1', '+short', ...a], { allowFail: true })).stdout.trim();
  const fake6 = await dig('AAAA', 'v6.example.com');
  t.match(fake6, /^fc00:(:[0-9a-f]{1,4}){1,2}$/, `AAAA in fc00::/18: ${fake6}`);
  const fake4 = await dig('A', 'v6.example.com');
  t.match(fake4, /^198\.1[89]\./, 'its A answer is a fake too (same index)');
  t.match((await nsExec(topo.client, ['ip', '-6', 'route', 'get', fake6])).stdout, /dev tsv3/, 'the IPv6 pool is routed into the TUN');
  const r = await nsExec(topo.client, ['curl', '-6', '-sSf', '--max-time', '10', 'http://v6.example.com/hello'], { allowFail: true });
  t.equal(r.stdout, 'hello from nginx\n', `curl -6: ${r.stderr}`);
  const line = JSON.parse(await gw.waitForLine((l) => l.includes('"msg":"conn"') && l.includes('"host":"v6.example.com"'), 10_000));
  t.equal(line.dst, `[${fake6}]:80`, 'the client connected to the IPv6 fake');
  t.equal(line.end, 'closed');
  t.equal(await dig('AAAA', 'other.example.com'), '', 'an unmapped name is forwarded (the test server has no AAAA for it)');
  t.equal(await dig('A', 'other.example.com'), '203.0.113.10');
  gw.kill('SIGTERM');
  t.equal((await gw.exited()).code, 0);
  t.equal(resolvNow(), original);
  t.equal((await snapshotRouting(topo.client)).text, before.text, 'routes byte for byte after per-host');
});

t.test('per-host --ipv6 off: AAAA of a mapped name is NODATA, the IPv6 pool is not routed', async (t) => {
  const stateDir = join(topo.tmp, 'state-ph-off');
  const gw = startGateway(t, topo.client, ['--mode', 'per-host', '--ipv6', 'off', '--host', 'v6.example.com', '--state-dir', stateDir, '--tun-name', 'tsv4']);
  await waitForGateway(topo.client, stateDir, gw);
  const full = (await nsExec(topo.client, ['dig', '+time=3', '+tries=1', 'AAAA', 'v6.example.com'])).stdout;
  t.match(full, /status: NOERROR/);
  t.match(full, /ANSWER: 0,/, 'no AAAA record');
  t.notMatch((await nsExec(topo.client, ['ip', '-6', 'route', 'show'])).stdout, /fc00::\/18/);
  gw.kill('SIGTERM');
  t.equal((await gw.exited()).code, 0);
  t.equal((await snapshotRouting(topo.client)).text, before.text);
});

t.test('route-all without an IPv6 default route: ::/0 still into the TUN, IPv6 connects fail fast, nothing leaks or loops', async (t) => {
  const via = (await nsExec(topo.client, ['ip', '-6', 'route', 'show', 'default'])).stdout.trim();
  await nsExec(topo.client, ['ip', '-6', 'route', 'del', 'default']);
  t.teardown(() => nsExec(topo.client, ['sh', '-c', `ip -6 route replace ${via}`], { allowFail: true }));
  const noV6 = await snapshotRouting(topo.client);
  const stateDir = join(topo.tmp, 'state-nov6');
  const gw = startGateway(t, topo.client, ['--mode', 'route-all', '--state-dir', stateDir, '--tun-name', 'tsv5', '--host', 'dual.example.com']);
  await waitForGateway(topo.client, stateDir, gw);
  const up = JSON.parse(await gw.waitForLine((l) => l.includes('"gateway up"'), 5000));
  t.equal(up.uplink6, null, 'no IPv6 uplink');
  t.match((await nsExec(topo.client, ['ip', '-6', 'route', 'get', NGINX_IP6])).stdout, /dev tsv5/, '::/0 into the TUN');
  t.notMatch((await nsExec(topo.client, ['ip', '-6', 'rule', 'show'])).stdout, /from 2001:db8:1::1/, 'no bypass rule');
  const count = await ipv6Counter();
  const c = await timedConnect(NGINX_IP6, 80);
  t.not(c.outcome, 'connected');
  t.ok(c.ms < 1000, `failed in ${c.ms.toFixed(1)} ms (${c.outcome})`);
  await new Promise((r) => setTimeout(r, 500));
  t.equal(await count(), 0, 'nothing reached the servers namespace');
  const st = JSON.parse((await nsExec(topo.client, tunsteerArgv(['status', '--state-dir', stateDir, '--json']))).stdout);
  t.ok((st.status.counters.proxy_total ?? 0) <= 2, `no loop: ${st.status.counters.proxy_total} proxied connection(s)`);
  // a mapped name's IPv6 fake still works: with no IPv6 path the gateway dials the name's IPv4 address
  const fake6 = (await nsExec(topo.client, ['dig', '+time=3', '+tries=1', '+short', 'AAAA', 'dual.example.com'])).stdout.trim();
  t.match(fake6, /^fc00:/, `AAAA of a --host name: ${fake6}`);
  const r = await nsExec(topo.client, ['curl', '-6', '-sS', '--max-time', '10', 'http://dual.example.com/hello'], { allowFail: true });
  t.equal(r.stdout, 'hello from nginx\n', `curl -6 to the IPv6 fake, dialled over IPv4: ${r.stderr}`);
  const line = JSON.parse(await gw.waitForLine((l) => l.includes('"msg":"conn"') && l.includes('"host":"dual.example.com"'), 10_000));
  t.equal(line.dst, `[${fake6}]:80`);
  gw.kill('SIGTERM');
  t.equal((await gw.exited()).code, 0);
  t.equal((await snapshotRouting(topo.client)).text, noV6.text, 'routes byte for byte');
  await nsExec(topo.servers, ['nft', 'delete', 'table', 'inet', 'tsv6count']);
});

t.test("tunsteer run: the program's IPv6 goes through the gateway too", async (t) => {
  const r = await nsExec(topo.client, tunsteerArgv(['run', '--', 'sh', '-c', `ip -6 route; curl -6 -sS --max-time 10 http://[${NGINX_IP6}]/1k.bin | sha256sum`]), {
    allowFail: true,
    timeoutMs: 60_000,
  });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^default dev tunsteer0/m, 'IPv6 default route into the TUN inside');
  t.match(r.stdout, new RegExp(sha1k), 'byte-exact over IPv6');
  const conn = r.stderr.split('\n').filter((l) => l.includes('"msg":"conn"') && l.includes(`[${NGINX_IP6}]:80`));
  t.equal(conn.length, 1, 'the gateway logged the IPv6 connection');
  t.equal((await snapshotRouting(topo.client)).text, before.text, 'the outside untouched');
});

t.test("route-all where new links get no IPv6 (a container's disable_ipv6): the gateway starts, ::/0 is prohibited, nothing leaks", async (t) => {
  await nsExec(topo.client, ['sysctl', '-q', '-w', 'net.ipv6.conf.default.disable_ipv6=1']);
  t.teardown(() => nsExec(topo.client, ['sysctl', '-q', '-w', 'net.ipv6.conf.default.disable_ipv6=0'], { allowFail: true }));
  const stateDir = join(topo.tmp, 'state-dis');
  const gw = startGateway(t, topo.client, ['--mode', 'route-all', '--state-dir', stateDir, '--tun-name', 'tsv6']);
  await waitForGateway(topo.client, stateDir, gw);
  t.match((await nsExec(topo.client, ['ip', '-6', 'route', 'show', 'table', '2022'])).stdout, /^prohibit default/m, 'table 2022 prohibits IPv6');
  const count = await ipv6Counter();
  const c = await timedConnect(NGINX_IP6, 80);
  t.not(c.outcome, 'connected');
  t.ok(c.ms < 1000, `failed in ${c.ms.toFixed(1)} ms (${c.outcome})`);
  t.equal(await count(), 0, 'nothing reached the servers namespace');
  t.equal((await nsExec(topo.client, ['curl', '-sSf', '--max-time', '5', 'http://203.0.113.10/hello'])).stdout, 'hello from nginx\n', 'IPv4 through the gateway');
  gw.kill('SIGTERM');
  t.equal((await gw.exited()).code, 0);
  t.equal((await snapshotRouting(topo.client)).text, before.text, 'routes byte for byte');
  await nsExec(topo.servers, ['nft', 'delete', 'table', 'inet', 'tsv6count']);
});

t.test("up --netns: a container's IPv6 is steered through the gateway in the host namespace", async (t) => {
  const box = await createNetns(t, 'tsE-');
  const { aIf, bIf } = await veth(box, topo.client, { aAddr: '198.51.100.2/24', bAddr: '198.51.100.1/24' });
  await nsExec(box, ['ip', 'route', 'add', 'default', 'via', '198.51.100.1']);
  await nsExec(box, ['ip', '-6', 'addr', 'add', '2001:db8:2::2/64', 'dev', aIf, 'nodad']);
  await nsExec(topo.client, ['ip', '-6', 'addr', 'add', '2001:db8:2::1/64', 'dev', bIf, 'nodad']);
  await nsExec(box, ['ip', '-6', 'route', 'add', 'default', 'via', '2001:db8:2::1']);
  const r0 = await nsExec(box, ['curl', '-6', '-sS', '--max-time', '2', `http://[${NGINX_IP6}]/hello`], { allowFail: true });
  t.not(r0.code, 0, 'without the gateway the container reaches nothing over IPv6 (the host does not forward)');
  const boxBefore = await snapshotRouting(box);
  const hostBefore = await snapshotRouting(topo.client);
  const dir = join(topo.tmp, 'state-box');
  const gw = startGateway(t, topo.client, ['--mode', 'route-all', '--netns', box, '--state-dir', dir, '--tun-name', 'tsv7']);
  await waitForGateway(topo.client, dir, gw);
  t.match((await nsExec(box, ['ip', '-6', 'rule'])).stdout, /from 2001:db8:2::2 lookup main/, "the container's IPv6 uplink found inside it");
  const r = await nsExec(box, ['sh', '-c', `curl -6 -sS --max-time 10 http://[${NGINX_IP6}]/1k.bin | sha256sum`]);
  const line = JSON.parse(await gw.waitForLine((l) => l.includes('"msg":"conn"') && l.includes(`[${NGINX_IP6}]:80`), 10_000));
  t.equal(r.stdout.split(' ')[0], sha1k, `byte-exact over IPv6 ${r.stderr.trim()}`);
  t.ok(line.src.startsWith(`[${TUN_ULA}]:`), `from the container's TUN: ${line.src}`);
  t.equal((await snapshotRouting(topo.client)).text, hostBefore.text, 'the host namespace untouched');
  gw.kill('SIGTERM');
  t.equal((await gw.exited()).code, 0);
  t.equal((await snapshotRouting(box)).text, boxBefore.text, "the container's ip -6 routes and rules are the originals");
});

t.test('route-all with a TUN MTU below 1280 (no IPv6 on the link): ::/0 prohibited, nothing leaks', async (t) => {
  const stateDir = join(topo.tmp, 'state-mtu');
  const gw = startGateway(t, topo.client, ['--mode', 'route-all', '--state-dir', stateDir, '--tun-name', 'tsv8', '--mtu', '1200']);
  await waitForGateway(topo.client, stateDir, gw);
  t.match((await nsExec(topo.client, ['ip', '-6', 'route', 'show', 'table', '2022'])).stdout, /^prohibit default/m);
  t.notMatch((await nsExec(topo.client, ['ip', '-6', 'rule'])).stdout, /from 2001:db8:1::1/, 'no bypass rule to leak through');
  const count = await ipv6Counter();
  const c = await timedConnect(NGINX_IP6, 80);
  t.not(c.outcome, 'connected');
  t.ok(c.ms < 1000, `failed in ${c.ms.toFixed(1)} ms (${c.outcome})`);
  t.equal(await count(), 0, 'nothing reached the servers namespace');
  t.equal((await nsExec(topo.client, ['curl', '-sSf', '--max-time', '5', 'http://203.0.113.10/hello'])).stdout, 'hello from nginx\n', 'IPv4 through the gateway');
  gw.kill('SIGTERM');
  t.equal((await gw.exited()).code, 0);
  t.equal((await snapshotRouting(topo.client)).text, before.text, 'routes byte for byte');
  await nsExec(topo.servers, ['nft', 'delete', 'table', 'inet', 'tsv6count']);
});
