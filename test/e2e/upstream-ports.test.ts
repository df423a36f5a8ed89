// The gateway's upstream sockets take their source port per destination, as an
// unbound socket's would (src/proxy/upstream-socket.ts): route-all binds each to
// the uplink address, and a plain bind(address, 0) gave every upstream socket a
// port of its own out of one range for all destinations together. Here the
// client namespace (where route-all's gateway dials from) has a range of 16
// ports, and 24 connections are held through the gateway, 12 to each of two
// server ports: every one must be established end to end, and the gateway's
// upstream sockets must share local ports between the two destinations. Over
// IPv4 and IPv6 (the addon binds either family; the range is net.ipv4's, which
// Linux applies to both).
import t from 'tap';
import { join } from 'node:path';
import { nsExec, spawnNodeInNs } from '../helpers/netns.js';
import { NGINX_IP6, PEER_IP, PEER_PORT, ROOT, addIpv6, makeTopology, startGateway, tunsteerArgv, waitForGateway, waitForPort } from '../helpers/topology.js';

t.setTimeout(180_000);

const RANGE = [40000, 40015] as const;
const PORTS = [PEER_PORT, PEER_PORT + 1];
const PER_PORT = 12;
const N = PER_PORT * PORTS.length;

const topo = await makeTopology(t);
await addIpv6(topo);
for (const host of [PEER_IP, NGINX_IP6])
  for (const port of PORTS) {
    spawnNodeInNs(t, topo.servers, join(ROOT, 'test/helpers/tcp-peer.ts'), ['server', host, String(port)]);
    await waitForPort(topo.servers, host.includes(':') ? `[${host}]` : host, port);
  }
await nsExec(topo.client, ['sysctl', '-qw', `net.ipv4.ip_local_port_range=${RANGE[0]} ${RANGE[1]}`]);

const stateDir = join(topo.tmp, 'state');
const gw = startGateway(t, topo.client, ['--mode', 'route-all', '--state-dir', stateDir, '--tun-name', 'tsp0']);
await waitForGateway(topo.client, stateDir, gw);
const status = async () => JSON.parse((await nsExec(topo.client, tunsteerArgv(['status', '--state-dir', stateDir, '--json']))).stdout).status;

for (const host of [PEER_IP, NGINX_IP6])
  t.test(`${host.includes(':') ? 'IPv6' : 'IPv4'}: ${N} connections to two destinations over a range of ${RANGE[1] - RANGE[0] + 1} source ports`, async (t) => {
    // the first family's connections stay open in the gateway: their clients closed, the server never does (half-close)
    const before = (await status()).counters.proxy_active ?? 0;
    const holder = spawnNodeInNs(t, topo.client, join(ROOT, 'bench/hold-conns.ts'), ['--close-burst', host, PORTS.join(','), String(N), '60000']);
    const line = JSON.parse(await holder.waitForLine((l) => l.includes('held') || l.includes('error'), 60_000)) as { held?: number; failed?: number; firstError?: string };
    t.equal(line.failed, 0, `no connection failed (first error: ${line.firstError || 'none'})`);
    t.equal(line.held, N, `all ${N} connected`);

    // the upstream side, the gateway's own sockets to the servers (the client's go into the TUN): established, and how many ports they use
    const upstream = async (pids: number[]) =>
      (await nsExec(topo.client, ['ss', '-Htnp', 'state', 'established', `dst ${host.includes(':') ? `[${host}]` : host}`])).stdout
        .split('\n')
        .filter((l) => pids.some((p) => l.includes(`pid=${p},`)))
        .map((l) => l.trim().split(/\s+/))
        .map((f) => ({ local: f[2], peer: f[3] }));
    // status is published once a second: wait for the gateway to count them all
    const until = Date.now() + 10_000;
    let s = await status();
    while ((s.counters.proxy_active ?? 0) - before !== N && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 300));
      s = await status();
    }
    t.equal((s.counters.proxy_active ?? 0) - before, N, 'the gateway holds every connection upstream');
    t.equal(s.counters.proxy_failed ?? 0, 0, 'no upstream dial failed');
    const socks = await upstream([gw.pid!, s.dataPlane?.pid].filter((p): p is number => typeof p === 'number'));
    t.equal(socks.length, N, `${N} upstream sockets established`);
    const localPorts = new Set(socks.map((x) => x.local.split(':').pop()));
    t.ok(localPorts.size <= RANGE[1] - RANGE[0] + 1, `the upstream sockets use ${localPorts.size} local ports, within the range`);
    t.ok(localPorts.size < N, `ports are shared between the destinations (${localPorts.size} ports for ${N} sockets)`);
    holder.kill('SIGTERM');
    await holder.exited();
  });
