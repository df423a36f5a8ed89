// USO on write: a server answers one request with a burst of datagrams (one
// UDP_SEGMENT send, so the whole burst waits in the gateway's upstream socket
// at once); the gateway relays them to the client through a route-all TUN.
// With offloads (the default; the TUN has USO: tx_uso) it writes the replies node's
// read loop hands over in one turn as UDP GSO packets for the kernel to split;
// without, one write each. Either way the client must receive every datagram,
// its size and sha256, in order. IPv4 and IPv6, at MTU 1500 and 65520.
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { nsExec, spawnInNs } from '../helpers/netns.js';
import { NGINX_IP6, PEER_IP, ROOT, addIpv6, liveStatus, makeTopology, routeAllGateway } from '../helpers/topology.js';

t.setTimeout(600_000);

const topo = await makeTopology(t);
await addIpv6(topo);
const PORT = 5420;
const BURST = join(ROOT, 'test/helpers/udp-burst.py');
const servers = [PEER_IP, NGINX_IP6].map((ip) => spawnInNs(t, topo.servers, ['python3', BURST, 'server', ip, String(PORT)]));
await Promise.all(servers.map((p) => p.waitForLine((l) => l.includes('listening'))));

interface Datagram {
  len: number;
  sha256: string;
}

/** One request answered with `count` datagrams of `size` bytes, the last `last`: all arrive intact, in order. */
async function burst(t: Test, host: string, count: number, size: number, last: number): Promise<void> {
  const name = `${host.includes(':') ? 'IPv6' : 'IPv4'} ${count} x ${size} (last ${last})`;
  const r = await nsExec(topo.client, ['python3', BURST, 'client', host, String(PORT), String(count), String(size), String(last)], { timeoutMs: 60_000 });
  const got = JSON.parse(r.stdout.trim().split('\n').pop() || '{}') as { attempts: number; expected: Datagram[]; received: Datagram[] };
  t.equal(got.received.length, count, `${name}: every datagram arrived`);
  t.same(got.received, got.expected, `${name}: each with its size and sha256, in order`);
  if (got.attempts > 1) t.comment(`${name}: ${got.attempts} attempts (a loss on the way)`);
}

let n = 0;
const CASES = [
  { mtu: 1500, offload: true },
  { mtu: 1500, offload: false },
  { mtu: 65520, offload: true },
  { mtu: 65520, offload: false },
];
for (const { mtu, offload } of CASES) {
  t.test(`MTU ${mtu}, offloads ${offload ? 'on (USO on write)' : 'off'}: a burst of replies arrives whole`, async (t) => {
    const stateDir = await routeAllGateway(t, topo, `usow${n++}`, mtu, offload);
    for (const host of [PEER_IP, NGINX_IP6]) {
      await burst(t, host, 40, 1200, 500);
      await burst(t, host, 40, 1200, 1200); // the last as long as the others
      if (mtu > 1500) await burst(t, host, 8, 8000, 3001);
    }
    const st = await liveStatus(topo.client, stateDir);
    const c = st.counters;
    t.equal(c.tun_offload_tx_uso === 1, offload, `status says USO on write ${offload ? 'is' : 'is not'} on`);
    if (offload) t.ok(c.udpUsoPackets > 0, `the gateway wrote UDP GSO packets: ${c.udpUsoPackets} holding ${c.udpUsoDatagrams} datagrams`);
    else t.equal(c.udpUsoPackets ?? 0, 0, 'no UDP GSO packet written');
    t.comment(`UDP GSO packets written ${c.udpUsoPackets}, datagrams in them ${c.udpUsoDatagrams}, packets out ${c.packetsOut}`);
  });
}
