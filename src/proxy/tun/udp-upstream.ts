// A relayed UDP flow's way out: a socket of its own, bound to the uplink's
// address and connected to the real destination (a fake IP resolved first), or
// a SOCKS5 UDP association when a `proxy` rule chose an upstream. Replies go
// back through the relay; the destination or upstream refusing becomes the
// client's ICMP port or host unreachable.
import dgram from 'node:dgram';
import type { UdpPort } from '../../stack/contracts.js';
import { DialError } from '../upstream-dialer.js';
import type { UpstreamProxy } from '../upstream-proxies.js';
import { Socks5UdpAssociation } from '../socks5/udp-association.js';
import type { UdpFlow } from './udp-flow.js';
import type { UdpCounters, UdpSessionOptions } from './udp-session-types.js';

/** What opening a flow's way out needs of the relay (src/proxy/tun/udp-sessions.ts). */
export interface UpstreamRelay {
  readonly opts: UdpSessionOptions;
  readonly out: UdpPort;
  readonly counters: UdpCounters;
  /** A reply from the destination, for the client. */
  deliver(flow: UdpFlow, msg: Buffer): void;
  /** The way out is open: what the flow held is sent. */
  ready(flow: UdpFlow): void;
  close(flow: UdpFlow, end: string): void;
}

/** Where the flow's datagrams go: the real address behind the destination, or null (stale fake IP). */
async function realTarget(r: UpstreamRelay, flow: UdpFlow): Promise<string | null> {
  const dstText = r.out.addresses.text(flow.serverIp);
  if (!r.opts.resolveTarget) return dstText;
  try {
    return await r.opts.resolveTarget(flow.serverIp, dstText);
  } catch {
    return null;
  }
}

/** Opens the flow's socket, or its SOCKS5 association: bound, connected to the real destination, then what was held is sent. */
export function openUpstream(r: UpstreamRelay, flow: UdpFlow): void {
  if (flow.verdict?.upstream) return void associate(r, flow, flow.verdict.upstream, flow.verdict.host);
  const { serverPort: dport } = flow;
  const v6 = r.out.addresses.family(flow.clientIp) === 6;
  const sock = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4' });
  flow.socket = sock;
  sock.on('error', (err: NodeJS.ErrnoException) => {
    if (flow.closed) return;
    if (err.code === 'ECONNREFUSED') {
      // The destination answered ICMP port unreachable: tell the client the same.
      r.counters.udpUnreachable++;
      r.out.sendPortUnreachable(flow);
    } else if (err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH') {
      r.counters.udpUnreachable++;
      r.out.sendHostUnreachable(flow);
    } else {
      r.close(flow, `error ${err.code ?? err.message}`);
    }
  });
  sock.on('message', (msg) => r.deliver(flow, msg));
  // after the bind: the target (resolved by a rule, or not at all), then the connect
  const connectTarget = async (): Promise<void> => {
    if (flow.closed) return;
    const target = await realTarget(r, flow);
    if (flow.closed) return;
    if (target === null) {
      r.counters.udpUnreachable++;
      r.out.sendPortUnreachable(flow);
      return r.close(flow, 'no-target');
    }
    sock.connect(dport, target, () => {
      if (!flow.closed) r.ready(flow);
    });
  };
  sock.bind({ address: v6 ? r.opts.localAddress6 : r.opts.localAddress, port: 0 }, () => {
    // a throw here (the socket closed under it) would otherwise be an unhandled rejection: the process's end
    connectTarget().catch((err: Error) => {
      if (!flow.closed) r.close(flow, `error ${err.message}`);
    });
  });
}

/**
 * The flow through a SOCKS5 upstream (RFC 1928 §7): one association, to a
 * mapped name when the destination has one (the upstream resolves it, as
 * for TCP), else to the real address. The upstream refusing or unreachable
 * is the client's port or host unreachable, as a direct flow's would be.
 */
async function associate(r: UpstreamRelay, flow: UdpFlow, upstream: UpstreamProxy, host: string | undefined): Promise<void> {
  r.counters.udpSocksFlows++;
  const target = host ?? (await realTarget(r, flow));
  if (flow.closed) return;
  if (target === null) {
    r.counters.udpUnreachable++;
    r.out.sendPortUnreachable(flow);
    return r.close(flow, 'no-target');
  }
  let assoc: Socks5UdpAssociation;
  try {
    assoc = await Socks5UdpAssociation.open(
      upstream,
      { host: target, port: flow.serverPort },
      { localAddress: r.opts.localAddress, localAddress6: r.opts.localAddress6, timeoutMs: r.opts.connectTimeoutMs },
      {
        onMessage: (data) => r.deliver(flow, data),
        onDrop: () => void r.counters.udpSocksDropped++,
        onEnd: (why) => r.close(flow, why),
      },
    );
  } catch (e) {
    if (flow.closed) return;
    r.counters.udpUnreachable++;
    if (e instanceof DialError && e.kind === 'unreachable') r.out.sendHostUnreachable(flow);
    else r.out.sendPortUnreachable(flow);
    return r.close(flow, `upstream-failed: ${(e as Error).message}`);
  }
  if (flow.closed) return assoc.close();
  flow.assoc = assoc;
  r.ready(flow);
}
