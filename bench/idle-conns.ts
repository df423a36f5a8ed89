// Many idle established connections for the memory figures (bench/lean.ts --only conns): the
// namespaces tuned for them (port ranges, backlog: inside the test's namespaces only), peers on
// several ports so more than one port range of connections fits between two addresses, the
// holder (bench/hold-conns.ts), and the plain Node proxy that is the kernel path's baseline.
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

/** Holds n connections from the client namespace to ip:ports; resolves once they are up, with the holder to kill. */
export async function holdConns(t: TeardownHost, ns: string, ip: string, ports: number[], n: number) {
  const holder = spawnInNs(t, ns, ['sh', '-c', `${RAISE_FDS}; exec ${process.execPath} --import tsx ${join(ROOT, 'bench/hold-conns.ts')} ${ip} ${ports.join(',')} ${n} 600000`]);
  const line = JSON.parse(await holder.waitForLine((l) => l.includes('held') || l.includes('error'), 125_000 + 2 * n)) as {
    held?: number;
    failed?: number;
    error?: string;
    connected?: number;
    firstError?: string;
  };
  return { holder, held: line.held ?? 0, line };
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
