// The data plane's side of the channel to its supervisor: what the child is
// sent once at start and what it reports back. The data plane defines it; the
// supervisor (gateway/supervisor.ts) speaks it.
import type { DataPlaneConfig } from './config.js';
import type { LiveStatus } from './data-plane.js';
import type { Identity } from './drop-root.js';

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

export type ChildMessage =
  | { type: 'ready'; identity: { user: string; uid: number; gid: number; groups: number[]; capEff: string } }
  | { type: 'status'; live: LiveStatus }
  | { type: 'fakeips'; data: unknown }
  /** closed: the connections the stop closed (each logged with end gateway-stop). */
  | { type: 'bye'; closed?: number };
