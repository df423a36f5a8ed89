// A `user` rule on UDP in --mode tproxy. TPROXY takes routed traffic
// (prerouting); the router's own programs reach it the way tproxy setups for
// local traffic do: an nftables route chain of the test's own marks their
// datagrams to the echo with the gateway's fwmark, so they are routed to lo
// and come back in through prerouting, where the gateway's TPROXY rule takes
// them. The data plane's own sockets (uid nobody) are left alone.
//  - root's flow relayed byte for byte, daemon's refused (dropped: the client
//    hears nothing), IPv4 and IPv6, each line naming the uid;
//  - a LAN client's flow, forwarded, has no owner here: the user rule does
//    not match it (relayed), and its line says why.
//
//   lan ns 198.51.100.2 ── router ns (gateway, programs as root and daemon) ── servers ns 203.0.113.30, 2001:db8:3::10 :5300
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nsExec, spawnInNs } from '../helpers/netns.js';
import { udpFlowLine } from '../helpers/flow-lines.js';
import { ROOT, makeTopology, routerWithLan, startGateway, waitForGateway } from '../helpers/topology.js';

t.setTimeout(300_000);

const PEER = join(ROOT, 'test/helpers/udp-hash-peer.ts');
const ECHO4 = '203.0.113.30';
const ECHO6 = '2001:db8:3::10';
const PORT = 5300;
/** The gateway's tproxy fwmark and table (--table, default 2022). */
const MARK = 2022;

const topo = await makeTopology(t);
const { router, lan } = await routerWithLan(t, topo);
for (const ip of [ECHO4, ECHO6]) {
  const p = spawnInNs(t, topo.servers, [process.execPath, '--import', 'tsx', PEER, 'server', ip, String(PORT)]);
  await p.waitForLine((l) => l.includes('listening'));
}
const config = join(topo.tmp, 'tunsteer.yaml');
writeFileSync(config, `rules:\n  - { port: ${PORT}, user: daemon, action: reject }\n`);
const stateDir = join(topo.tmp, 'state');
const gw = startGateway(t, router, ['--mode', 'tproxy', '--config', config, '--state-dir', stateDir, '--udp-idle-timeout', '1000']);
await waitForGateway(router, stateDir, gw);
// the router's own datagrams to the echo, except the data plane's, go through TPROXY (in the router namespace only; it goes with it)
const nobody = (await nsExec(router, ['id', '-u', 'nobody'])).stdout.trim();
writeFileSync(
  join(topo.tmp, 'local.nft'),
  `table inet udpownertest {
  chain output {
    type route hook output priority mangle; policy accept;
    meta skuid ${nobody} return
    ip daddr ${ECHO4} udp dport ${PORT} meta mark set ${MARK}
    ip6 daddr ${ECHO6} udp dport ${PORT} meta mark set ${MARK}
  }
}
`,
);
await nsExec(router, ['nft', '-f', join(topo.tmp, 'local.nft')]);

interface PeerResult {
  ok: boolean;
  error?: string;
  sha256?: string;
  echoSha256?: string;
  server?: { sha256: string };
  localPort?: number;
}
const peer = (ns: string, host: string, user?: string): Promise<PeerResult> =>
  nsExec(
    ns,
    [...(user ? ['setpriv', `--reuid=${user}`, `--regid=${user}`, '--clear-groups'] : []), process.execPath, '--import', 'tsx', PEER, 'client', host, String(PORT), '40', '11'],
    { allowFail: true, timeoutMs: 90_000 },
  ).then((r) => JSON.parse(r.stdout.trim().split('\n').pop() || '{}') as PeerResult);

const hostPort = (host: string) => (host.includes(':') ? `[${host}]:${PORT}` : `${host}:${PORT}`);

for (const host of [ECHO4, ECHO6])
  t.test(`tproxy, ${host}: root's UDP relayed byte for byte, daemon's refused by the user rule`, async (t) => {
    const root = await peer(router, host);
    t.ok(root.ok, `root: ${JSON.stringify(root)}`);
    t.equal(root.echoSha256, root.sha256, 'every echo as sent, from the destination');
    t.equal(root.server?.sha256, root.sha256, 'the server got the same bytes');
    t.match(await udpFlowLine(gw, 'tproxy', hostPort(host), root.localPort), { action: 'direct', owner: { uid: 0 } }, "root's flow line names its uid");

    const daemon = await peer(router, host, 'daemon');
    t.notOk(daemon.ok, 'daemon: no echo');
    t.match(daemon.error, /no reply within 3 s/, 'tproxy drops a refused flow');
    t.match(
      await udpFlowLine(gw, 'tproxy', hostPort(host), daemon.localPort),
      { action: 'reject', end: 'rejected', owner: { uid: 1 } },
      "daemon's flow line: refused, its uid named",
    );
  });

t.test('a LAN client: forwarded, no owner here; the user rule does not match, the line says why', async (t) => {
  const r = await peer(lan, ECHO4);
  t.ok(r.ok, JSON.stringify(r));
  t.equal(r.server?.sha256, r.sha256);
  t.match(
    await udpFlowLine(gw, 'tproxy', hostPort(ECHO4), r.localPort),
    { src: `198.51.100.2:${r.localPort}`, action: 'direct', owner: null, owner_why: /forwarded from another host|no socket on this host/ },
    'no owner, and why',
  );
});
