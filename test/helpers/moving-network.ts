// The topology for a network that changes under the gateway (test/e2e/follow-network*.test.ts,
// bench/uplink-change.ts): the standard one (topology.ts), plus a second link from the client to
// the servers (198.51.100.1/24 ↔ 198.51.100.2/24) that no route uses at first, IPv6 on the servers'
// side of the first link (2001:db8:1::2/64) for the client to take when a test adds it, and
// net-change-peer.ts servers on PEER and PEER6.
import { join } from 'node:path';
import { nsExec, spawnNodeInNs, veth, type NsChild, type TeardownHost } from './netns.js';
import { PEER_IP, ROOT, makeTopology, startGateway, tunsteerArgv, waitForGateway, type Topology } from './topology.js';

export const PEER = PEER_IP;
export const PEER6 = '2001:db8:10::12';
export const PEER_PORT = 7100;
export const CHANGE_PEER = join(ROOT, 'test/helpers/net-change-peer.ts');

export interface MovingNetwork {
  topo: Topology;
  /** The client's first uplink (192.0.2.1/24, default via 192.0.2.2). */
  if1: string;
  /** The second link: 198.51.100.1/24, the servers at 198.51.100.2. */
  if2: string;
}

export async function movingNetwork(t: TeardownHost): Promise<MovingNetwork> {
  const topo = await makeTopology(t);
  const dev = async (ns: string) => (await nsExec(ns, ['ip', '-o', 'link', 'show', 'type', 'veth'])).stdout.split(':')[1].trim().split('@')[0];
  const [if1, serversIf1] = [await dev(topo.client), await dev(topo.servers)];
  const { aIf: if2 } = await veth(topo.client, topo.servers, { aAddr: '198.51.100.1/24', bAddr: '198.51.100.2/24' });
  await nsExec(topo.servers, ['ip', '-6', 'addr', 'add', `${PEER6}/128`, 'dev', 'lo', 'nodad']);
  await nsExec(topo.servers, ['ip', '-6', 'addr', 'add', '2001:db8:1::2/64', 'dev', serversIf1, 'nodad']);
  for (const host of [PEER, PEER6]) {
    const srv = spawnNodeInNs(t, topo.servers, CHANGE_PEER, ['server', host, String(PEER_PORT)]);
    await srv.waitForLine((l) => l.includes('listening'));
  }
  return { topo, if1, if2 };
}

/**
 * A gateway for one subtest: up (a cold start of the data plane, node and tsx, took over 20 s
 * at a load average of 20 on this shared 2-vCPU machine, so it gets 60 s), and restored by
 * `tunsteer down` if the subtest ends with it still there (its teardown kills it with -9), so a
 * failure leaves no rules for the next subtest in the same namespace.
 */
export async function upFor(t: TeardownHost, ns: string, stateDir: string, args: string[]): Promise<NsChild> {
  const gw = startGateway(t, ns, args);
  t.teardown(() => nsExec(ns, tunsteerArgv(['down', '--state-dir', stateDir]), { allowFail: true }));
  await waitForGateway(ns, stateDir, gw, 60_000);
  return gw;
}
