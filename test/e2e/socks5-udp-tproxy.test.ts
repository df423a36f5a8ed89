// tproxy mode on a router: a LAN client's UDP under a `proxy` rule goes
// through the rule's SOCKS5 upstream (dante-server, UDP ASSOCIATE), IPv4 and
// IPv6 destinations, byte for byte; the client's socket is connected, so its
// replies come from the original destination; the server saw dante's address
// (it has no route back to the LAN, so nothing else could have reached it).
//
//   lan ns ── router ns (gateway, tproxy) ── servers ns: dante 203.0.113.20 :1080,
//                                            echo 203.0.113.30, 2001:db8:3::10 :5300
import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nsExec, spawnInNs } from '../helpers/netns.js';
import { ROOT, makeTopology, routerWithLan, startGateway, waitForGateway } from '../helpers/topology.js';
import { startDante } from '../helpers/dante.js';

t.setTimeout(300_000);
const SOCKS_IP = '203.0.113.20';
const PEER = join(ROOT, 'test/helpers/udp-hash-peer.ts');
const topo = await makeTopology(t);
const { router, lan } = await routerWithLan(t, topo);
await nsExec(topo.servers, ['ip', 'addr', 'add', `${SOCKS_IP}/32`, 'dev', 'lo']);
for (const ip of ['203.0.113.30', '2001:db8:3::10']) {
  const p = spawnInNs(t, topo.servers, [process.execPath, '--import', 'tsx', PEER, 'server', ip, '5300']);
  await p.waitForLine((l) => l.includes('listening'));
}
const danteDir = join(topo.tmp, 'dante');
mkdirSync(danteDir);
await startDante(t, topo.servers, { addresses: [SOCKS_IP, '2001:db8:3::10'], dir: danteDir });
const config = join(topo.tmp, 'rules.yaml');
writeFileSync(config, `upstreams:\n  dante: { type: socks5, address: "${SOCKS_IP}:1080" }\nrules:\n  - { port: 5300, action: proxy, upstream: dante }\n`);
const dir = join(topo.tmp, 'state');
const gw = startGateway(t, router, ['--mode', 'tproxy', '--state-dir', dir, '--config', config, '--udp-idle-timeout', '1000']);
await waitForGateway(router, dir, gw);

for (const [host, from] of [
  ['203.0.113.30', SOCKS_IP],
  ['2001:db8:3::10', '2001:db8:3::10'],
] as const) {
  t.test(`to ${host} through dante: byte for byte, replies from the destination, sent from dante`, async (t) => {
    const r = await nsExec(lan, [process.execPath, '--import', 'tsx', PEER, 'client', host, '5300', '100', '9'], { allowFail: true, timeoutMs: 90_000 }).then((x) =>
      JSON.parse(x.stdout.trim().split('\n').pop() || '{}'),
    );
    t.ok(r.ok, JSON.stringify(r));
    t.equal(r.echoSha256, r.sha256, 'every echo as sent, from the destination (connected socket)');
    t.equal(r.server.sha256, r.sha256, 'the server got the same bytes');
    t.match(r.server.from, new RegExp(`^${from.replaceAll('.', '\\.')}:\\d+$`), `sent by dante (${r.server.from})`);
    const line = JSON.parse(await gw.waitForLine((l) => l.includes('"proto":"udp"') && l.includes(`:${r.localPort}"`), 15_000));
    t.match(line, { inbound: 'tproxy', action: 'proxy', via: 'dante', end: 'idle' });
  });
}
