// Many idle established connections for the memory figures (bench/lean.ts --only conns): the
// namespaces tuned for them (port ranges, backlog: inside the test's namespaces only), peers on
// several ports so more than one port range of connections fits between two addresses (or
// several source addresses toward the gateway's own DNS), the holders (bench/hold-conns.ts, as
// many processes as the fd limit needs), and the plain Node proxy that is the kernel path's baseline.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { TeardownHost } from '../test/helpers/netns.js';
import { nsExec, spawnInNs } from '../test/helpers/netns.js';
import { PEER_IP, PEER_PORT, ROOT, type Topology } from '../test/helpers/topology.js';
import { waitFor } from './bench-kit.js';

/** Where the plain proxy listens: an address of the servers' namespace. */
export const PLAIN_PROXY_IP = '203.0.113.14';
export const PLAIN_PROXY_PORT = 7100;
/** Connections per destination port: well under one port range (1024-65535). */
const PER_PORT = 40_000;
/** File descriptors for a process holding 100,000 connections (two sockets each for a proxy). */
const FDS = 400_000;
/**
 * Raises the fd limit to FDS, or as far as the hard limit goes: raising that takes
 * CAP_SYS_RESOURCE, which a container may not have (then every process, the data plane too,
 * stops near its hard limit: fdLimit() says where).
 */
export const RAISE_FDS = `ulimit -n ${FDS} 2>/dev/null || ulimit -n $(ulimit -Hn)`;

/** The fd limit the processes above end up with. */
export function fdLimit(): number {
  const r = spawnSync('sh', ['-c', `${RAISE_FDS}; ulimit -n`], { encoding: 'utf8' });
  return Number(r.stdout.trim());
}

/** Peer ports for n connections: PEER_PORT, PEER_PORT + 1, ... */
export function peerPorts(n: number): number[] {
  return Array.from({ length: Math.max(1, Math.ceil(n / PER_PORT)) }, (_, i) => PEER_PORT + i);
}

/**
 * Source addresses for connections to the gateway's own DNS (one destination, port 53), handed
 * out one per holder process and never twice in a bench run: the holder picks its source ports
 * itself, 1024 upward (hold-conns.ts says why), and an earlier run's ports may be in TIME-WAIT.
 */
export interface SourcePool {
  next(): string;
}

/** How many source addresses prepareForDnsConns puts on the client's lo: 198.51.100.101 upward. */
const DNS_HOLD_SOURCES = 60;

/**
 * The client namespace ready for connections to the gateway's DNS: DNS_HOLD_SOURCES addresses on
 * lo (route-all sends them into the TUN like any address that is not the uplink's), as a pool.
 */
export async function prepareForDnsConns(ns: string): Promise<SourcePool> {
  const all = Array.from({ length: DNS_HOLD_SOURCES }, (_, i) => `198.51.100.${101 + i}`);
  for (const a of all) await nsExec(ns, ['ip', 'addr', 'add', `${a}/32`, 'dev', 'lo']);
  let used = 0;
  return {
    next() {
      if (used === all.length) throw new Error(`all ${all.length} source addresses used: fewer sizes per run`);
      return all[used++];
    },
  };
}

/** Wider port ranges and backlogs in both namespaces, then tcp-peer servers on every port n needs. */
export async function prepareForConns(t: TeardownHost, topo: Topology, n: number): Promise<number[]> {
  for (const ns of [topo.client, topo.servers]) {
    await nsExec(ns, ['sysctl', '-qw', 'net.ipv4.ip_local_port_range=1024 65535', 'net.core.somaxconn=65535', 'net.ipv4.tcp_max_syn_backlog=65535']);
  }
  await nsExec(topo.servers, ['ip', 'addr', 'add', `${PLAIN_PROXY_IP}/32`, 'dev', 'lo']);
  const ports = peerPorts(n);
  // the first port's server is lean's own (started before); the others are started here
  for (const port of ports.slice(1)) {
    spawnInNs(t, topo.servers, ['sh', '-c', `${RAISE_FDS}; exec ${process.execPath} --import tsx ${join(ROOT, 'test/helpers/tcp-peer.ts')} server ${PEER_IP} ${port}`]);
    await waitFor(async () => (await nsExec(topo.servers, ['ss', '-Hltn', `src ${PEER_IP}:${port}`])).stdout.trim() !== '');
  }
  return ports;
}

/** Connections one holder process takes: its fds stay under this VM's hard limit of 20,000 (fdLimit()). */
const PER_HOLDER = 16_500;
/**
 * Connects in flight over all holders: under the gateway's default SYN backlog (1,024). Past it
 * the stack answers with SYN cookies, and a cookie's ACK lost on a busy TUN leaves the client
 * established and the gateway with nothing (7 holders x 256 in flight: 727 of 100,000 so).
 */
const IN_FLIGHT_ALL = 512;

type HolderLine = { held?: number; failed?: number; error?: string; connected?: number; firstError?: string };

/**
 * Holds n connections from the client namespace to ip:ports, split over as many holder
 * processes as the fd limit needs (each at most PER_HOLDER), each from its own source address
 * out of `sources` (none: the kernel's choice); resolves once every holder reports, with how
 * many are held and failed, and release() to close them all.
 */
export async function holdConns(t: TeardownHost, ns: string, ip: string, ports: number[], n: number, sources?: SourcePool, holderArgs: string[] = []) {
  const per = Math.max(1, Math.min(PER_HOLDER, fdLimit() - 500));
  const k = Math.ceil(n / per);
  const sizes = Array.from({ length: k }, (_, i) => Math.floor(n / k) + (i < n % k ? 1 : 0));
  const holders = sizes.map((size) => {
    const local = sources ? `--local ${sources.next()} ` : '';
    const inFlight = `--in-flight ${Math.max(8, Math.min(256, Math.floor(IN_FLIGHT_ALL / k)))} ${holderArgs.map((a) => `${a} `).join('')}`;
    return spawnInNs(t, ns, [
      'sh',
      '-c',
      `${RAISE_FDS}; exec ${process.execPath} --import tsx ${join(ROOT, 'bench/hold-conns.ts')} ${local}${inFlight}${ip} ${ports.join(',')} ${size} 600000`,
    ]);
  });
  const lines = await Promise.all(
    holders.map(async (h, i) => JSON.parse(await h.waitForLine((l) => l.includes('held') || l.includes('error'), 125_000 + 2 * sizes[i])) as HolderLine),
  );
  const held = lines.reduce((a, l) => a + (l.held ?? 0), 0);
  const failed = lines.reduce((a, l) => a + (l.failed ?? 0), 0);
  const line =
    lines.length === 1
      ? lines[0]
      : { held, failed, processes: lines.length, firstError: lines.find((l) => l.firstError)?.firstError ?? '', errors: lines.filter((l) => l.error).length };
  /** Closes them all; resolves with what the holders saw: closed gracefully, and lost (reset or ended by the other side) while held. */
  const release = async () => {
    for (const h of holders) h.kill('SIGTERM');
    const ends = await Promise.all(
      holders.map(async (h) => JSON.parse(await h.waitForLine((l) => l.includes('closed'), 130_000).catch(() => '{}')) as { gracefully?: number; lostWhileHeld?: number }),
    );
    await Promise.all(holders.map((h) => h.exited()));
    return { gracefully: ends.reduce((a, e) => a + (e.gracefully ?? 0), 0), lostWhileHeld: ends.reduce((a, e) => a + (e.lostWhileHeld ?? 0), 0) };
  };
  return { holders, held, failed, line, release };
}

/** The plain Node proxy in the servers' namespace, forwarding to the peers; resolves with its pid once it listens. */
export async function startPlainProxy(t: TeardownHost, topo: Topology, ports: number[], nodeArgs: string[] = []) {
  const p = spawnInNs(t, topo.servers, [
    'sh',
    '-c',
    `${RAISE_FDS}; exec ${process.execPath} ${nodeArgs.join(' ')} --import tsx ${join(ROOT, 'bench/plain-proxy.ts')} ${PLAIN_PROXY_IP} ${PLAIN_PROXY_PORT} ${PEER_IP} ${ports.join(',')}`,
  ]);
  await p.waitForLine((l) => l.includes('listening'));
  return p;
}
