// The data plane's side of following the network: the supervisor saw the
// uplink, the resolvers or the clock change (gateway/follow-network.ts) and
// says so in one IPC message (ipc.ts NetworkUpdate); this applies it.
//
// - uplink: new upstream sockets (TCP dials, UDP flows, the DNS forwarder and
//   its resolver) bind the new address; null refuses that family (network
//   unreachable). TCP connections on the old address are left to the kernel,
//   which ends them as it would without the gateway. UDP flows bound to an
//   address that another one replaced are closed: their socket cannot change
//   its source, and the client's next datagram opens a flow on the new path
//   (as an unconnected socket would pick the new source).
// - resolvers: the DNS forwarder asks the new ones.
// - wake: after a suspend the upstream TCP sockets may be dead (the peer or a
//   NAT on the path forgot them while we slept). Each gets a short keepalive
//   for PROBE_WINDOW_MS: a dead one fails within about 11 s (1 s idle, then
//   libuv's 10 probes 1 s apart) and its client gets a reset; live ones answer
//   and go on. Then keepalive is off again.
import type { Logger } from '../logging/log.js';
import type { UdpSessions } from '../proxy/tun/udp-sessions.js';
import { liveUpstreams } from '../proxy/upstream-dialer.js';
import type { NetworkUpdate } from './ipc.js';
import type { GatewayDns } from './gateway-dns.js';

export const PROBE_IDLE_MS = 1000;
export const PROBE_WINDOW_MS = 15_000;

/** Where new upstream sockets bind now; null: no uplink of that family. */
export interface LiveUplink {
  localAddress?: string | null;
  localAddress6?: string | null;
  /** The last address each family bound (kept through a spell of null): UDP flows on it are closed only when another replaces it. */
  lastBound?: { v4?: string; v6?: string };
}

export interface UpdateTargets {
  uplink: LiveUplink;
  udp: Pick<UdpSessions, 'opts' | 'closeBoundTo'> | null;
  dns: Pick<GatewayDns, 'update'> | null;
  log: Logger;
}

export function applyNetworkUpdate(u: NetworkUpdate, t: UpdateTargets): void {
  if (u.type === 'uplink') {
    const last = (t.uplink.lastBound ??= { v4: t.uplink.localAddress ?? undefined, v6: t.uplink.localAddress6 ?? undefined });
    // a flow's socket keeps its source: close those on an address another one replaced; through a spell
    // of no uplink (null) they stay, failing as the kernel's would, and work again if the same address comes back
    const gone = new Set<string>();
    if (u.localAddress && last.v4 && u.localAddress !== last.v4) gone.add(last.v4);
    if (u.localAddress6 && last.v6 && u.localAddress6 !== last.v6) gone.add(last.v6);
    if (u.localAddress) last.v4 = u.localAddress;
    if (u.localAddress6) last.v6 = u.localAddress6;
    t.uplink.localAddress = u.localAddress;
    t.uplink.localAddress6 = u.localAddress6;
    if (t.udp) {
      t.udp.opts.localAddress = u.localAddress ?? undefined;
      t.udp.opts.localAddress6 = u.localAddress6 ?? undefined;
      if (gone.size) t.udp.closeBoundTo(gone, 'uplink-changed');
    }
    t.dns?.update({ localAddress: u.localAddress, localAddress6: u.localAddress6 });
    t.log.info({ localAddress: u.localAddress, localAddress6: u.localAddress6 }, 'data plane: upstream sockets bind the new uplink');
  } else if (u.type === 'resolvers') {
    t.dns?.update({ upstreams: u.upstreams });
    t.log.info({ upstreams: u.upstreams }, 'data plane: DNS forwarded to the new resolvers');
  } else {
    const n = probeUpstreams();
    t.log.info({ sleptMs: u.sleptMs, probed: n }, 'data plane: woke; probing upstream connections');
  }
}

/** Short keepalives on every open upstream socket, off again after the window. Returns how many. */
export function probeUpstreams(sockets: Iterable<import('node:net').Socket> = liveUpstreams, windowMs = PROBE_WINDOW_MS): number {
  const probed = [...sockets].filter((s) => !s.destroyed);
  for (const s of probed) s.setKeepAlive(true, PROBE_IDLE_MS);
  setTimeout(() => {
    for (const s of probed) if (!s.destroyed) s.setKeepAlive(false);
  }, windowMs).unref();
  return probed.length;
}
