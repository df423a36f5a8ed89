// The topologies of the differential harness, one gateway per mode, with two
// addresses per family on the servers' side: one reached through the gateway,
// one kept on the kernel path (--exclude, or outside per-host's pool), both
// answered by the same server agent.
import { join } from 'node:path';
import { nsExec, type TeardownHost } from '../netns.js';
import { DNS_IP, NGINX_IP, NGINX_IP6, addIpv6, clientResolvConf, makeTopology, routerWithLan, startDnsPeer, startGateway, waitForGateway } from '../topology.js';
import { Agent } from './agent.js';
import type { Paths } from './harness.js';
import type { Mode } from './known-differences.js';

/** Kernel-path addresses on the servers' loopback: excluded from the gateway. */
const KERNEL_IP = '203.0.113.40';
const KERNEL_IP6_TUN = '2001:db8:10::40';
const KERNEL_IP6_LAN = '2001:db8:3::40';
/** Per-host's mapped name (test/helpers/dns-peer.ts: A 203.0.113.10, AAAA 2001:db8:10::10). */
const MAPPED_NAME = 'dual.example.com';

export interface DiffSetup {
  v4: Paths;
  v6: Paths;
  mtu: number;
  /** the gateway's stdout lines (its connection log) */
  gatewayLog: () => readonly string[];
  /** packets the kernel dropped on the TUN's queue towards the gateway (its reader fell behind), or 0 without a TUN */
  tunQueueDrops: () => Promise<number>;
}

export async function setupMode(t: TeardownHost, mode: Mode, opts: { mtu?: number } = {}): Promise<DiffSetup> {
  return mode === 'redirect' || mode === 'tproxy' ? setupIntercept(t, mode) : setupTun(t, mode, opts.mtu ?? 1500);
}

/**
 * The servers' kernel limits ICMP errors per peer (1 a second after a burst of
 * 6), and every scenario comes from the same peer: closed-port answers would
 * depend on timing, on both paths.
 */
async function noIcmpRateLimit(ns: string): Promise<void> {
  await nsExec(ns, ['sysctl', '-qw', 'net.ipv4.icmp_ratelimit=0', 'net.ipv6.icmp.ratelimit=0']);
}

async function setupTun(t: TeardownHost, mode: 'route-all' | 'per-host', mtu: number): Promise<DiffSetup> {
  const topo = await makeTopology(t);
  await noIcmpRateLimit(topo.servers);
  await addIpv6(topo);
  await nsExec(topo.servers, ['ip', 'addr', 'add', `${KERNEL_IP}/32`, 'dev', 'lo']);
  await nsExec(topo.servers, ['ip', '-6', 'addr', 'add', `${KERNEL_IP6_TUN}/128`, 'dev', 'lo', 'nodad']);
  const dir = join(topo.tmp, 'state');
  const common = ['--state-dir', dir, '--tun-name', 'tsd0', '--mtu', String(mtu)];
  let args: string[];
  if (mode === 'per-host') {
    await startDnsPeer(t, topo);
    await clientResolvConf(t, topo.client, `nameserver ${DNS_IP}\noptions timeout:2\n`);
    args = ['--mode', 'per-host', '--host', MAPPED_NAME, ...common];
  } else {
    args = ['--mode', 'route-all', '--exclude', `${KERNEL_IP}/32`, '--exclude', `${KERNEL_IP6_TUN}/128`, ...common];
  }
  const gw = startGateway(t, topo.client, args);
  await waitForGateway(topo.client, dir, gw);
  // the TUN's queue as shipped (500) unless asked: TUNSTEER_DIFF_TXQLEN=10000 shows what its drops cost
  if (process.env.TUNSTEER_DIFF_TXQLEN) await nsExec(topo.client, ['ip', 'link', 'set', 'dev', 'tsd0', 'txqueuelen', process.env.TUNSTEER_DIFF_TXQLEN]);
  const [client, server] = await Promise.all([Agent.start(t, topo.client), Agent.start(t, topo.servers)]);
  const tunQueueDrops = async () => {
    const r = await nsExec(topo.client, ['ip', '-s', '-j', 'link', 'show', 'dev', 'tsd0']);
    return (JSON.parse(r.stdout) as { stats64: { tx: { dropped: number } } }[])[0].stats64.tx.dropped;
  };
  let gw4 = NGINX_IP;
  let gw6 = NGINX_IP6;
  let k4 = KERNEL_IP;
  let k6 = KERNEL_IP6_TUN;
  if (mode === 'per-host') {
    // the mapped name's fake addresses; the kernel path dials the real ones, which per-host does not route
    const lookup = async (db: string) => (await nsExec(topo.client, ['getent', db, MAPPED_NAME])).stdout.split(/\s+/)[0];
    gw4 = await lookup('ahostsv4');
    gw6 = await lookup('ahostsv6');
    if (!/^198\.1[89]\./.test(gw4) || !/^fc00:/.test(gw6)) throw new Error(`${MAPPED_NAME} did not map to fake IPs: ${gw4} ${gw6}`);
    k4 = NGINX_IP;
    k6 = NGINX_IP6;
  }
  return {
    v4: { client, server, kernelHost: k4, gatewayHost: gw4, serverAddrs: [NGINX_IP, KERNEL_IP], tunQueueDrops },
    v6: { client, server, kernelHost: k6, gatewayHost: gw6, serverAddrs: [NGINX_IP6, KERNEL_IP6_TUN], tunQueueDrops },
    mtu,
    gatewayLog: () => gw.stdoutLines(),
    tunQueueDrops,
  };
}

async function setupIntercept(t: TeardownHost, mode: 'redirect' | 'tproxy'): Promise<DiffSetup> {
  const topo = await makeTopology(t);
  const { router, lan } = await routerWithLan(t, topo);
  await noIcmpRateLimit(topo.servers);
  // the kernel path: addresses the gateway leaves alone, and a route back to the LAN for their
  // answers only (a rule by source), so the other addresses still answer only through the gateway
  await nsExec(topo.servers, ['sh', '-c', `ip addr add ${KERNEL_IP}/32 dev lo && ip -6 addr add ${KERNEL_IP6_LAN}/128 dev lo nodad`]);
  await nsExec(topo.servers, [
    'sh',
    '-c',
    `ip rule add from ${KERNEL_IP} lookup 100 && ip route add 198.51.100.0/24 via 192.0.2.1 table 100 && ` +
      `ip -6 rule add from ${KERNEL_IP6_LAN} lookup 100 && ip -6 route add 2001:db8:1::/64 via 2001:db8:2::1 table 100`,
  ]);
  const dir = join(topo.tmp, `state-${mode}`);
  const gw = startGateway(t, router, ['--mode', mode, '--state-dir', dir, '--exclude', `${KERNEL_IP}/32`, '--exclude', `${KERNEL_IP6_LAN}/128`]);
  await waitForGateway(router, dir, gw);
  const [client, server] = await Promise.all([Agent.start(t, lan), Agent.start(t, topo.servers)]);
  return {
    v4: { client, server, kernelHost: KERNEL_IP, gatewayHost: '203.0.113.30', serverAddrs: ['203.0.113.30', KERNEL_IP] },
    v6: { client, server, kernelHost: KERNEL_IP6_LAN, gatewayHost: '2001:db8:3::10', serverAddrs: ['2001:db8:3::10', KERNEL_IP6_LAN] },
    mtu: 1500,
    gatewayLog: () => gw.stdoutLines(),
    tunQueueDrops: async () => 0,
  };
}
