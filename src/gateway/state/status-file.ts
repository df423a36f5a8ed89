// The running gateway publishes its live counters to <state-dir>/status.json
// once a second; `tunsteer status` reads them. Written atomically (tmp + rename).
import { writeFileSync, renameSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NetworkState } from '../follow-network.js';

export interface StatusSnapshot {
  pid: number;
  mode: string;
  tun: { name: string; mtu: number; address: string };
  /** null: route-all has no uplink now (it follows the network: see network). */
  uplink: { dev: string; gateway?: string; source: string } | null;
  /** Route-all and the DNS modes follow the network: the uplinks now, the resolvers, each change with its time, the last wake. */
  network?: NetworkState;
  startedAt: string;
  updatedAt: string;
  counters: Record<string, number>;
  drops: Record<string, number>;
  /** The data-plane child, when the supervisor runs one. */
  dataPlane?: { pid: number; user: string; uid: number; gid: number; restarts: number };
}

export function statusPath(stateDir: string): string {
  return join(stateDir, 'status.json');
}

export function writeStatus(stateDir: string, s: StatusSnapshot): void {
  const p = statusPath(stateDir);
  writeFileSync(`${p}.tmp`, JSON.stringify(s, null, 2));
  renameSync(`${p}.tmp`, p);
}

export function readStatus(stateDir: string): StatusSnapshot | null {
  try {
    return JSON.parse(readFileSync(statusPath(stateDir), 'utf8')) as StatusSnapshot;
  } catch {
    return null;
  }
}
