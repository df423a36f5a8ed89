// UDP sent with the UDP_SEGMENT socket option (what QUIC stacks do) through a
// route-all gateway: the client's one send stands for N datagrams. With
// offloads (the default) the TUN has USO, so the local kernel hands the gateway one
// packet (gso_type UDP_L4) for all N, which the gateway must split at
// gso_size; without, the kernel splits before the TUN. Either way the server
// in the servers namespace must receive exactly the N datagrams, each with
// its own size and bytes (sha256 each, in order), and echo them back one by
// one. IPv4 and IPv6, at MTU 1500 and 65520.
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { nsExec, spawnNodeInNs } from '../helpers/netns.js';
import { NGINX_IP6, PEER_IP, ROOT, addIpv6, liveStatus, makeTopology, routeAllGateway } from '../helpers/topology.js';

t.setTimeout(600_000);

const topo = await makeTopology(t);
await addIpv6(topo);
const UDP_PORT = 5410;
const peers = [PEER_IP, NGINX_IP6].map((ip) => spawnNodeInNs(t, topo.servers, join(ROOT, 'test/helpers/udp-hash-peer.ts'), ['server', ip, String(UDP_PORT)]));
await Promise.all(peers.map((p) => p.waitForLine((l) => l.includes('listening'))));

interface Sent {
  len: number;
  sha256: string;
}
interface Result {
  sent: Sent[];
  echoes: Sent[];
  server?: { n: number; bytes: number; sha256: string };
  sha256: string;
  bytes: number;
  sendError?: string;
}

/** One UDP_SEGMENT send of `count` datagrams (gso bytes each, the last `last`), checked at the server and in the echoes. */
async function burst(t: Test, host: string, gso: number, count: number, last: number): Promise<void> {
  const name = `${host.includes(':') ? 'IPv6' : 'IPv4'} ${count} x ${gso} (last ${last})`;
  const r = await nsExec(topo.client, ['python3', join(ROOT, 'test/helpers/udp-gso-client.py'), host, String(UDP_PORT), String(gso), String(count), String(last)], {
    timeoutMs: 60_000,
  });
  const got = JSON.parse(r.stdout.trim().split('\n').pop() || '{}') as Result;
  t.equal(got.sendError, undefined, `${name}: the send with UDP_SEGMENT succeeded`);
  t.same(
    { n: got.server?.n, bytes: got.server?.bytes, sha256: got.server?.sha256 },
    { n: count + 1, bytes: got.bytes, sha256: got.sha256 },
    `${name}: the server received exactly the ${count} datagrams (after the plain first one), their bytes in order`,
  );
  t.same(got.echoes, got.sent, `${name}: each datagram echoed back on its own, its size and sha256 intact`);
}

let n = 0;
const CASES = [
  { mtu: 1500, offload: true },
  { mtu: 1500, offload: false },
  { mtu: 65520, offload: true },
];
for (const { mtu, offload } of CASES) {
  t.test(`MTU ${mtu}, offloads ${offload ? 'on (USO: the gateway splits)' : 'off (the kernel splits)'}: UDP_SEGMENT bursts arrive as their datagrams`, async (t) => {
    const stateDir = await routeAllGateway(t, topo, `uso${n++}`, mtu, offload);
    for (const host of [PEER_IP, NGINX_IP6]) {
      await burst(t, host, 1200, 20, 500);
      await burst(t, host, 1000, 8, 1000); // the last as long as the others
      if (mtu > 1500) await burst(t, host, 8000, 7, 3001);
    }
    const st = await liveStatus(topo.client, stateDir);
    const uso = st.counters.tun_offload_uso === 1;
    t.equal(uso, offload, `status says USO ${offload ? 'is' : 'is not'} on (the read side)`);
    t.equal(st.counters.tun_offload_tx_uso === 1, offload, `and ${offload ? 'on' : 'not on'} write (test/e2e/udp-uso-write.test.ts)`);
    if (offload) t.ok(st.counters.udpGsoPackets >= 4, `the gateway split UDP GSO packets: ${st.counters.udpGsoPackets} into ${st.counters.udpGsoDatagrams} datagrams`);
    else t.equal(st.counters.udpGsoPackets ?? 0, 0, 'no UDP GSO packet reached the gateway');
    t.equal(st.drops?.udp_bad_gso ?? 0, 0, 'none dropped as malformed');
    t.comment(`udp datagrams ${st.counters.udpDatagrams}, GSO packets ${st.counters.udpGsoPackets}, packets in ${st.counters.packetsIn}`);
  });
}
