// The whole gateway in route-all mode, end to end: real programs in a client
// namespace, real servers in a servers namespace, the gateway between them.
import t from 'tap';
import { join } from 'node:path';
import { nsExec, snapshotRouting } from '../helpers/netns.js';
import { IPERF_IP, NGINX_IP, PEER_IP, PEER_PORT, ROOT, makeTopology, startGateway, startIperf, startNginx, startPeer, tunsteerArgv, waitForGateway } from '../helpers/topology.js';

t.setTimeout(600_000);

const topo = await makeTopology(t);
const [, , peerServer] = await Promise.all([startNginx(t, topo), startIperf(t, topo), startPeer(t, topo)]);
await nsExec(topo.servers, [
  'sh',
  '-c',
  `head -c 1024 /dev/urandom > ${topo.www}/1k.bin && head -c 100M /dev/urandom > ${topo.www}/100m.bin && head -c 100M /dev/urandom > ${topo.tmp}/up.bin`,
]);
const sha = async (file: string) => (await nsExec(topo.servers, ['sha256sum', file])).stdout.split(' ')[0];
const sha1k = await sha(`${topo.www}/1k.bin`);
const sha100m = await sha(`${topo.www}/100m.bin`);

const before = await snapshotRouting(topo.client);

const stateDir = join(topo.tmp, 'state');
const gw = startGateway(t, topo.client, ['--mode', 'route-all', '--state-dir', stateDir, '--tun-name', 'tsg0', '--connect-timeout', '1500']);
await waitForGateway(topo.client, stateDir, gw);
const peer = (mode: string, ...args: string[]) =>
  nsExec(topo.client, [process.execPath, '--import', 'tsx', join(ROOT, 'test/helpers/tcp-peer.ts'), mode, PEER_IP, String(PEER_PORT), ...args], {
    timeoutMs: 120_000,
    allowFail: true,
  }).then((r) => JSON.parse(r.stdout.trim().split('\n').pop() || '{}'));

t.test('--dry-run prints the plan and changes nothing', async (t) => {
  const now = await snapshotRouting(topo.client);
  const r = await nsExec(topo.client, tunsteerArgv(['up', '--mode', 'route-all', '--dry-run', '--exclude', '203.0.113.99/32', '--state-dir', join(topo.tmp, 'dry')]));
  t.match(r.stdout, /ip (-4 )?rule add .*lookup 2022/);
  t.match(r.stdout, /203\.0\.113\.99/);
  t.equal((await snapshotRouting(topo.client)).text, now.text);
});

t.test('routes point into the TUN while the gateway runs', async (t) => {
  const r = await nsExec(topo.client, ['ip', 'route', 'get', NGINX_IP]);
  t.match(r.stdout, /dev tsg0/);
  const st = await nsExec(topo.client, tunsteerArgv(['status', '--state-dir', stateDir]));
  t.match(st.stdout, /route-all/);
  t.match(st.stdout, /tsg0/);
});

t.test('curl downloads 1 KB and 100 MB byte-exact through the gateway', async (t) => {
  const small = await nsExec(topo.client, ['sh', '-c', `curl -sSf http://${NGINX_IP}/1k.bin | sha256sum`]);
  t.equal(small.stdout.split(' ')[0], sha1k);
  const big = await nsExec(topo.client, ['sh', '-c', `curl -sSf http://${NGINX_IP}/100m.bin | sha256sum`], { timeoutMs: 120_000 });
  t.equal(big.stdout.split(' ')[0], sha100m);
  // the gateway saw it: one log line per connection at close
  const line = await gw.waitForLine((l) => l.includes(`"dst":"${NGINX_IP}:80"`) && l.includes('"down":1'), 10_000);
  const rec = JSON.parse(line);
  t.equal(rec.src.startsWith('198.18.0.1:'), true, 'the client is the TUN address');
  t.ok(rec.ms >= 0);
});

t.test('100 MB upload byte-exact', async (t) => {
  const r = await peer('upload', `${topo.tmp}/up.bin`);
  t.equal(r.ok, true, JSON.stringify(r));
  t.equal(r.local, await sha(`${topo.tmp}/up.bin`));
});

t.test('iperf3 5 s each direction', async (t) => {
  for (const reverse of [false, true]) {
    const args = ['iperf3', '-c', IPERF_IP, '-t', '5', '-J', ...(reverse ? ['-R'] : [])];
    const r = await nsExec(topo.client, args, { timeoutMs: 60_000 });
    const j = JSON.parse(r.stdout);
    t.notOk(j.error, `no iperf3 error (${reverse ? 'download' : 'upload'})`);
    t.ok(j.end.sum_received.bytes > 0, `bytes moved ${reverse ? 'down' : 'up'}: ${(j.end.sum_received.bits_per_second / 1e9).toFixed(2)} Gbit/s`);
  }
});

t.test('200 concurrent connections all complete', async (t) => {
  const r = await peer('concurrent', '200');
  t.equal(r.completed, 200, JSON.stringify(r));
});

t.test('client closes first and server closes first', async (t) => {
  t.equal((await peer('client-first')).ok, true, 'client FIN first: echo complete, then server FIN');
  t.equal((await peer('server-first', '500000')).ok, true, 'server FIN first: all bytes, then EOF');
  const reset = await peer('reset');
  t.equal(reset.ok, true, `server reset mid-stream reaches the client as a reset (${JSON.stringify(reset)})`);
  t.equal((await peer('client-reset')).ok, true);
  const seen = await peerServer.waitForLine((l) => l.includes('"watch"'), 10_000);
  t.equal(JSON.parse(seen).watch, 'reset', 'client reset mid-stream reaches the server as a reset');
});

t.test('a closed port gives "Connection refused"', async (t) => {
  const r = await nsExec(topo.client, ['curl', '-sS', '--max-time', '10', `http://${PEER_IP}:7999/`], { allowFail: true });
  t.equal(r.code, 7, 'curl: failed to connect');
  const n = await nsExec(topo.client, [process.execPath, '-e', `require('net').connect(7999,'${PEER_IP}').on('error',e=>{console.log(e.code);process.exit(0)})`], {
    timeoutMs: 15_000,
  });
  t.equal(n.stdout.trim(), 'ECONNREFUSED');
});

t.test('an upstream that never answers: the client gets ICMP host unreachable after the connect timeout', async (t) => {
  // 203.0.113.77 exists nowhere: the servers namespace drops the SYN.
  const n = await nsExec(
    topo.client,
    [
      process.execPath,
      '-e',
      `require('net').connect(80,'203.0.113.77').on('error',e=>{console.log(e.code);process.exit(0)}).on('connect',()=>{console.log('connected');process.exit(1)})`,
    ],
    { timeoutMs: 15_000, allowFail: true },
  );
  t.equal(n.stdout.trim(), 'EHOSTUNREACH', 'once the gateway gives up, its ICMP error about the SYN fails the connect');
  const line = await gw.waitForLine((l) => l.includes('203.0.113.77:80'), 5000);
  t.equal(JSON.parse(line).end, 'upstream-timeout');
});

t.test('normal exit restores routes and rules exactly', async (t) => {
  gw.kill('SIGTERM');
  const e = await gw.exited();
  t.equal(e.code, 0, 'exit 0 after a clean stop on SIGTERM');
  t.equal((await snapshotRouting(topo.client)).text, before.text);
  const st = await nsExec(topo.client, tunsteerArgv(['status', '--state-dir', stateDir]), { allowFail: true });
  t.not(st.code, 0, 'status says nothing runs');
});

t.test('kill -9 then `tunsteer down` restores routes and rules exactly', async (t) => {
  const dir = join(topo.tmp, 'state2');
  const gw2 = startGateway(t, topo.client, ['--mode', 'route-all', '--state-dir', dir, '--tun-name', 'tsg1']);
  await waitForGateway(topo.client, dir, gw2);
  t.not((await snapshotRouting(topo.client)).text, before.text, 'routes changed while up');
  gw2.kill('SIGKILL');
  await gw2.exited();
  const down = await nsExec(topo.client, tunsteerArgv(['down', '--state-dir', dir]));
  t.equal(down.code, 0);
  t.equal((await snapshotRouting(topo.client)).text, before.text);
  const again = await nsExec(topo.client, tunsteerArgv(['down', '--state-dir', dir]));
  t.equal(again.code, 0, 'down with nothing to restore exits 0');
});
