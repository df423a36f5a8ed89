// The data plane's side of the channel to its supervisor: what the child is
// sent once at start and what it reports back. The data plane defines it; the
// supervisor (gateway/supervisor.ts) speaks it.
import type { DataPlaneConfig, LiveConfig } from './config.js';
import type { LiveStatus } from './data-plane.js';
import type { Identity } from './drop-root.js';
import type { ProcessInfo } from '../owner/proc-sockets.js';
import type { ReloadResult } from '../control/contracts.js';

export type { ReloadResult };

/** The child's fd for the TUN: stdio 0-2, then the IPC channel at 3. */
export const CHILD_TUN_FD = 4;

/** The one message the child waits for after start. */
export interface ChildInit {
  config: DataPlaneConfig;
  /** null in redirect and tproxy modes (no TUN). */
  tun: { fd: number; name: string; mtu: number; /** Every queue's fd (fds[0] === fd) when it has more than one: a stack worker each. */ fds?: number[] } | null;
  /** Who to become once the TUN is adopted and the listeners bound; null keeps the identity it has. */
  user: Identity | null;
}

/**
 * What the supervisor tells a running data plane when the network changes
 * (gateway/follow-network.ts): the addresses new upstream sockets bind to
 * (null: no uplink of that family now, so those destinations are refused
 * with "network unreachable"), the resolvers to forward DNS to, or that the
 * machine woke from a suspend (sleptMs: how long it was away, as far as
 * the clocks tell).
 */
export type NetworkUpdate =
  { type: 'uplink'; localAddress: string | null; localAddress6: string | null } | { type: 'resolvers'; upstreams: string[] } | { type: 'wake'; sleptMs: number };

/** The supervisor's answer to find-process: the data plane, without root, cannot read other users' /proc/PID/fd. */
export interface ProcessFound {
  type: 'process-found';
  id: number;
  process: ProcessInfo | null;
}

/** What the supervisor tells a running data plane about reloads. */
export type ReloadMessage =
  /** Swap these in (new connections, new HTTP requests); answer with 'applied' and the same seq. */
  | { type: 'apply'; seq: number; live: LiveConfig }
  /** The outcome of a reload the data plane asked for (its control API), by the id it gave. */
  | { type: 'reloaded'; id: number; result: ReloadResult };

export type ChildMessage =
  | { type: 'ready'; identity: { user: string; uid: number; gid: number; groups: number[]; capEff: string } }
  | { type: 'status'; live: LiveStatus }
  | { type: 'fakeips'; data: unknown }
  /** Which process holds this socket (a rule on `process`): answered with ProcessFound. */
  | { type: 'find-process'; id: number; inode: number; uid: number }
  /** closed: the connections the stop closed (each logged with end gateway-stop). */
  | { type: 'bye'; closed?: number }
  /** The control API asks for a reload (PUT /configs): the supervisor owns the config file and the secrets. */
  | { type: 'reload'; id: number; force: boolean }
  | { type: 'applied'; seq: number; error?: string };
