// Rules on who sent a UDP flow, end to end, route-all in the client
// namespace: a UDP echo on 198.51.100.7 and 2001:db8:10::7 (the servers
// namespace), reached through the TUN.
//  - user: the same client program as root (relayed, byte for byte) and as
//    daemon (refused: its connected socket hears the port unreachable as
//    ECONNREFUSED, its unconnected one hears nothing), IPv4 and IPv6, from a
//    connected and from an unconnected socket (both bound to the wildcard
//    address, as node binds them);
//  - process: node's flow relayed byte for byte, socat's refused, both root;
//  - each flow's line names its owner (uid; exe for the process rule).
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nsExec, spawnInNs } from '../helpers/netns.js';
import { udpFlowLine, waitForJsonLine } from '../helpers/flow-lines.js';
import { ROOT, addIpv6, makeTopology, startGateway, waitForGateway } from '../helpers/topology.js';

t.setTimeout(300_000);

const PEER = join(ROOT, 'test/helpers/udp-hash-peer.ts');
const ECHO4 = '198.51.100.7';
const ECHO6 = '2001:db8:10::7';
const USER_PORT = 5300;
const PROCESS_PORT = 5301;

const topo = await makeTopology(t);
await addIpv6(topo);
await nsExec(topo.servers, ['ip', 'addr', 'add', `${ECHO4}/32`, 'dev', 'lo']);
await nsExec(topo.servers, ['ip', '-6', 'addr', 'add', `${ECHO6}/128`, 'dev', 'lo', 'nodad']);
for (const ip of [ECHO4, ECHO6])
  for (const port of [USER_PORT, PROCESS_PORT]) {
    const p = spawnInNs(t, topo.servers, [process.execPath, '--import', 'tsx', PEER, 'server', ip, String(port)]);
    await p.waitForLine((l) => l.includes('listening'));
  }

const config = join(topo.tmp, 'tunsteer.yaml');
writeFileSync(
  config,
  `rules:
  - { port: ${USER_PORT}, user: daemon, action: reject }
  - { port: ${PROCESS_PORT}, process: socat, action: reject }
`,
);
const stateDir = join(topo.tmp, 'state');
const gw = startGateway(t, topo.client, ['--mode', 'route-all', '--config', config, '--state-dir', stateDir, '--tun-name', 'tsu0', '--udp-idle-timeout', '1000']);
await waitForGateway(topo.client, stateDir, gw);

interface PeerResult {
  ok: boolean;
  error?: string;
  sha256?: string;
  echoSha256?: string;
  server?: { sha256: string; n: number };
  localPort?: number;
}
const asUser = (user: string | undefined) => (user ? ['setpriv', `--reuid=${user}`, `--regid=${user}`, '--clear-groups'] : []);
const peer = (host: string, port: number, mode: 'client' | 'client-unconnected', user?: string): Promise<PeerResult> =>
  nsExec(topo.client, [...asUser(user), process.execPath, '--import', 'tsx', PEER, mode, host, String(port), '40', '7'], { allowFail: true, timeoutMs: 90_000 }).then(
    (r) => JSON.parse(r.stdout.trim().split('\n').pop() || '{}') as PeerResult,
  );

const hostPort = (host: string, port: number) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

for (const host of [ECHO4, ECHO6])
  for (const mode of ['client', 'client-unconnected'] as const)
    t.test(`user, ${host}, ${mode === 'client' ? 'connected' : 'unconnected'} socket: root relayed byte for byte, daemon refused`, async (t) => {
      const root = await peer(host, USER_PORT, mode);
      t.ok(root.ok, `root: ${JSON.stringify(root)}`);
      t.equal(root.echoSha256, root.sha256, 'every echo as sent');
      t.equal(root.server?.sha256, root.sha256, 'the server got the same bytes');
      t.match(await udpFlowLine(gw, 'tun', hostPort(host, USER_PORT), root.localPort), { action: 'direct', owner: { uid: 0 } }, "root's flow line names its uid");

      const daemon = await peer(host, USER_PORT, mode, 'daemon');
      t.notOk(daemon.ok, 'daemon: no echo');
      // a connected socket takes the gateway's port unreachable as ECONNREFUSED: the server would have echoed
      t.match(daemon.error, mode === 'client' ? /ECONNREFUSED/ : /no reply within 3 s/);
      t.match(
        await udpFlowLine(gw, 'tun', hostPort(host, USER_PORT), daemon.localPort),
        { action: 'reject', end: 'rejected', owner: { uid: 1 } },
        "daemon's flow line: refused, its uid named",
      );
    });

t.test('process: node relayed byte for byte, socat refused', async (t) => {
  const node = await peer(ECHO4, PROCESS_PORT, 'client');
  t.ok(node.ok, `node: ${JSON.stringify(node)}`);
  t.equal(node.echoSha256, node.sha256);
  t.equal(node.server?.sha256, node.sha256);
  t.match(await udpFlowLine(gw, 'tun', hostPort(ECHO4, PROCESS_PORT), node.localPort), { action: 'direct', owner: { uid: 0, exe: /\/node$/ } }, "node's line names the program");

  // socat's connected socket: the port unreachable ends it with an error
  const s = await nsExec(topo.client, ['sh', '-c', `echo ping | socat -t 3 -T 3 - UDP:${ECHO4}:${PROCESS_PORT}`], { allowFail: true, timeoutMs: 30_000 });
  t.not(s.code, 0, `socat failed: ${s.stderr.trim()}`);
  t.match(s.stderr, /Connection refused/);
  t.notMatch(s.stdout, /ping/, 'no echo');
  const line = await waitForJsonLine(gw, (l) => l.msg === 'conn' && l.dst === hostPort(ECHO4, PROCESS_PORT) && l.action === 'reject');
  t.match(line, { end: 'rejected', owner: { uid: 0, exe: /\/socat1?$/ } }, "socat's line names the program");
});
