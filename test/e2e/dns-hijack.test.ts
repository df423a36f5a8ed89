// Route-all mode answers DNS itself (--dns-hijack, the default): queries to
// any resolver address on port 53, over UDP and TCP, are answered by the
// gateway; names matching --host get fake IPs so their connections carry the
// name; the rest is forwarded to the system's resolvers.
import t from 'tap';
import { join } from 'node:path';
import { nsExec } from '../helpers/netns.js';
import { DNS_IP, NGINX_IP, clientResolvConf, fakeDsts, makeTopology, startDnsPeer, startGateway, startNginx, tunsteerArgv, waitForGateway } from '../helpers/topology.js';

t.setTimeout(300_000);
const topo = await makeTopology(t);
await startNginx(t, topo);
await startDnsPeer(t, topo);
await clientResolvConf(t, topo.client, `nameserver ${DNS_IP}\n`);
const stateDir = join(topo.tmp, 'state');
const gw = startGateway(t, topo.client, ['--mode', 'route-all', '--host', 'api.example.com', '--state-dir', stateDir, '--tun-name', 'tsd0']);
await waitForGateway(topo.client, stateDir, gw);
const dig = async (...a: string[]) => (await nsExec(topo.client, ['dig', '+time=3', '+tries=1', ...a], { allowFail: true })).stdout;
const counters = async () => JSON.parse((await nsExec(topo.client, tunsteerArgv(['status', '--state-dir', stateDir, '--json']))).stdout).status.counters;

t.test('other names are forwarded and answered by the gateway, not relayed', async (t) => {
  t.equal((await dig('+short', 'other.example.com')).trim(), NGINX_IP);
  t.match(await dig('nowhere.example.com'), /status: NXDOMAIN/);
  await new Promise((r) => setTimeout(r, 1200));
  const c = await counters();
  t.ok(c.dnsQueries >= 2, `the stack answered ${c.dnsQueries} queries`);
  t.ok(c.dns_forwarded >= 2);
  t.equal(c.udpFlowsTotal, 0, 'no UDP flow was relayed for DNS');
});

t.test('any resolver address is answered, over UDP and TCP', async (t) => {
  t.equal((await dig('+short', '@203.0.113.99', 'other.example.com')).trim(), NGINX_IP, 'a resolver that does not exist still answers');
  t.equal((await dig('+short', '+tcp', 'other.example.com')).trim(), NGINX_IP, 'DNS over TCP');
});

t.test('a --host name gets a fake IP and its connection carries the name', async (t) => {
  const ip = (await dig('+short', 'api.example.com')).trim();
  t.match(ip, /^198\.1[89]\./);
  const r = await nsExec(topo.client, ['curl', '-sSf', '--max-time', '10', 'http://api.example.com/hello']);
  t.equal(r.stdout, 'hello from nginx\n');
  const line = JSON.parse(await gw.waitForLine((l) => l.includes('"msg":"conn"') && l.includes('"host":"api.example.com"'), 10_000));
  t.ok(fakeDsts(ip, 80).includes(line.dst), `to the fake IP or its IPv6 twin (curl may prefer IPv6): ${line.dst}`);
});
