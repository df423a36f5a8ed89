// 10,000 seeded malformed datagrams and segments written into the TUN of a
// running gateway (route-all, DNS hijack on): it stays up, counts them, and a
// normal connection and a DNS query still work afterwards.
import t from 'tap';
import { join } from 'node:path';
import { nsExec } from '../helpers/netns.js';
import { DNS_IP, NGINX_IP, ROOT, clientResolvConf, makeTopology, startDnsPeer, startGateway, startNginx, tunsteerArgv, waitForGateway } from '../helpers/topology.js';

t.setTimeout(300_000);
const topo = await makeTopology(t);
await startNginx(t, topo);
await startDnsPeer(t, topo);
await clientResolvConf(t, topo.client, `nameserver ${DNS_IP}\n`);
const stateDir = join(topo.tmp, 'state');
const gw = startGateway(t, topo.client, ['--mode', 'route-all', '--state-dir', stateDir, '--tun-name', 'tsf0', '--max-udp-flows', '512']);
await waitForGateway(topo.client, stateDir, gw);
const status = async () => JSON.parse((await nsExec(topo.client, tunsteerArgv(['status', '--state-dir', stateDir, '--json']))).stdout).status;

t.test('10,000 malformed packets: no crash, drops counted, service continues', async (t) => {
  const r = await nsExec(topo.client, ['python3', join(ROOT, 'test/helpers/raw-fuzz.py'), '7', '10000', '198.18.0.1'], { timeoutMs: 120_000 });
  t.equal(JSON.parse(r.stdout).sent, 10000);
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(gw.exitCode, null, 'the gateway still runs');
  const s = await status();
  const drops = Object.values(s.drops as Record<string, number>).reduce((a, b) => a + b, 0);
  t.ok(drops > 1000, `drops counted: ${JSON.stringify(Object.fromEntries(Object.entries(s.drops).filter(([, v]) => (v as number) > 0)))}`);
  t.ok(s.counters.dns_formerr + s.counters.dns_dropped > 0, `malformed DNS answered FORMERR or dropped (${s.counters.dns_formerr} / ${s.counters.dns_dropped})`);
  t.equal(s.drops.internal_error, 0, 'no internal error');
  const c = await nsExec(topo.client, ['curl', '-sSf', '--max-time', '10', `http://${NGINX_IP}/hello`]);
  t.equal(c.stdout, 'hello from nginx\n');
  const d = await nsExec(topo.client, ['dig', '+short', '+time=3', 'other.example.com']);
  t.equal(d.stdout.trim(), NGINX_IP);
});
